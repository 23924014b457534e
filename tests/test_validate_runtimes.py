"""validate on rows of other runtimes (README of the validation data, "Other runtimes"): the `runtime`
column and its profile, the scenarios single_stream / disagg_prefill / disagg_decode, total tokens/s,
the error by runtime, and weight-only int8 in the estimate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import roofline as rl
from roofline.cli.app import app
from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.validation import read_cases, validate_file
from roofline.validation.predict_runtimes import runtime_label, runtime_profile

HEADER = (
    "case_id,source,model,hardware,num_gpus,tp,pp,ep,weight_dtype,kv_dtype,isl,osl,scenario,load,metric,value,"
    "runtime,runtime_version,notes"
)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "validation"


def _runtime(profile: str) -> dict[str, str]:
    """The runtime argument the predictor gives rl.estimate and rl.memory: the row's runtime profile."""
    return {"runtime": profile}


def _file(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "runtimes.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


# ---- the runtime column -----------------------------------------------------------------------


def test_runtime_column_is_read_and_mapped_to_a_profile(tmp_path: Path) -> None:
    names = ["gpt-fast", "SGLang", "vllm", "trtllm", "", "hf-transformers", "llama.cpp"]
    row = "r{},s,llama-3.1-8b,a100-sxm-80gb,1,1,1,,bf16,bf16,5,100,single_stream,,output_tokens_per_s,90,{},,"
    cases = read_cases(_file(tmp_path, *(row.format(i, name) for i, name in enumerate(names))))
    assert [c.runtime for c in cases] == names
    assert [runtime_profile(c) for c in cases] == [
        "torch-cuda-graph", "sglang", "vllm", "trtllm", "trtllm-cpp", "hf-transformers", None,
    ]  # fmt: skip
    # empty: the public tables' engine flow (TensorRT-LLM v0.17 engines, C++ executor); trtllm: 1.0
    assert [runtime_label(c, True) for c in cases][3:5] == ["trtllm", "trtllm-cpp"]


def test_a_runtime_without_a_profile_is_skipped_with_the_reason(tmp_path: Path) -> None:
    path = _file(tmp_path, "x1,s,llama-3.1-8b,h100-sxm,1,1,1,,bf16,,5,100,single_stream,,output_tokens_per_s,90,"
                           "llama.cpp,b4000,")  # fmt: skip
    report = validate_file(path)
    (skipped,) = report.skipped
    assert skipped.reason.startswith("runtime 'llama.cpp' has no runtime profile (known: ")
    assert "gpt-fast" in skipped.reason


def test_a_hugging_face_id_outside_the_catalog_is_skipped(tmp_path: Path) -> None:
    path = _file(tmp_path, "x1,s,someone/Unknown-Model-7B,h100-sxm,1,1,1,,bf16,,5,100,single_stream,,"
                           "output_tokens_per_s,90,vllm,,")  # fmt: skip
    (skipped,) = validate_file(path).skipped
    assert "Hugging Face id with no catalog entry" in skipped.reason


# ---- weight-only int8 / int4 in the estimate ------------------------------------------------------


def test_int8_weights_run_weight_only_in_bf16_math() -> None:
    assert DType.INT8.compute_dtype is DType.BF16 and DType.INT4.compute_dtype is DType.BF16
    kw = {"tp": 1, "batch": 1, "isl": 5, "osl": 100, "kv_dtype": "bf16"}
    bf16 = rl.estimate("llama-3.1-8b", "a100-sxm-80gb", weight_dtype="bf16", **kw)
    int8 = rl.estimate("llama-3.1-8b", "a100-sxm-80gb", weight_dtype="int8", **kw)
    int4 = rl.estimate("llama-3.1-8b", "a100-sxm-80gb", weight_dtype="int4", **kw)
    # same math (bf16 tensor cores: the int8 peak is not used), fewer weight bytes
    assert int8.detail.decode.compute_s == pytest.approx(bf16.detail.decode.compute_s)
    assert int4.detail.decode.compute_s == pytest.approx(bf16.detail.decode.compute_s)
    # block matmul weights: 2 bytes -> 1 byte (int8) -> 4.25 bits (int4 with group scales); embeddings stay bf16
    ratio8 = int8.weights_bytes / bf16.weights_bytes
    ratio4 = int4.weights_bytes / bf16.weights_bytes
    assert 0.5 < ratio8 < 0.6 and 0.25 < ratio4 < 0.4


# ---- the new scenarios, each against its formula -------------------------------------------------


def test_single_stream_is_osl_over_ttft_plus_decode_steps(tmp_path: Path) -> None:
    """gpt-fast's generate.py: tokens_generated / time of generate() = osl / (TTFT + (osl - 1) TPOT)."""
    path = _file(tmp_path, "g1,s,llama-3.1-8b,a100-sxm-80gb,2,2,1,,int8,bf16,5,100,single_stream,,"
                           "output_tokens_per_s,150,gpt-fast,,")  # fmt: skip
    (row,) = validate_file(path).rows
    e = rl.estimate("llama-3.1-8b", "a100-sxm-80gb", gpus=2, tp=2, batch=1, isl=5, osl=100, weight_dtype="int8",
                    kv_dtype="bf16", **_runtime("torch-cuda-graph"))  # fmt: skip
    assert row.predicted == pytest.approx(100 / (e.ttft_s + 99 * e.tpot_s), rel=1e-9)
    assert 1 / e.tpot_s > row.predicted  # the prefill makes a user's rate lower than the decode rate


def test_disagg_prefill_is_prompt_tokens_per_gpu_times_the_published_unit(tmp_path: Path) -> None:
    """16384 tokens per GPU per batch of 4096-token prompts: 4 prompts on each of the 32 DP-attention
    ranks; the figure is per node (num_gpus 8) of the 32-GPU EP group."""
    path = _file(tmp_path, "p1,s,deepseek-v3,h100-sxm,8,,1,32,fp8,fp8,4096,,disagg_prefill,16384,"
                           "input_tokens_per_s,50000,sglang,,")  # fmt: skip
    (row,) = validate_file(path).rows
    e = rl.estimate("deepseek-v3", "h100-sxm", gpus=32, tp=1, ep=32, attn_dp=32, batch=128, isl=4096, osl=1,
                    weight_dtype="fp8", kv_dtype="fp8", max_num_tokens=16384, ignore_memory=True,
                    **_runtime("sglang"))  # fmt: skip
    assert row.predicted == pytest.approx(128 * 4096 / e.ttft_batch_s / 32 * 8, rel=1e-9)
    assert "DP attention 32 x tp 1, EP 32" in row.note and "4 prompt(s) of 4096 tokens" in row.note


def test_disagg_decode_at_a_published_load_is_batch_over_tpot(tmp_path: Path) -> None:
    path = _file(tmp_path, "d1,s,deepseek-r1,gb200,1,1,1,8,fp4,fp8,2048,2048,disagg_decode,64,"
                           "output_tokens_per_s,5000,vllm,,")  # fmt: skip
    (row,) = validate_file(path).rows
    e = rl.estimate("deepseek-r1", "gb200", gpus=8, tp=1, ep=8, attn_dp=8, batch=64 * 8, isl=2048, osl=2048,
                    weight_dtype="fp4", kv_dtype="fp8", ignore_memory=True, **_runtime("vllm"))  # fmt: skip
    assert row.predicted == pytest.approx(64 * 8 / e.tpot_s / 8, rel=1e-9)  # per GPU, num_gpus 1


def test_disagg_decode_without_load_takes_the_largest_batch_that_fits(tmp_path: Path) -> None:
    path = _file(tmp_path, "d2,s,deepseek-r1,gb200,1,1,1,8,fp4,fp8,2048,2048,disagg_decode,,"
                           "output_tokens_per_s,10000,vllm,,")  # fmt: skip
    (row,) = validate_file(path).rows
    per_gpu = int(row.note.split("running sequences per GPU not published: ")[1].split(" ")[0])
    kw = {"gpus": 8, "tp": 1, "ep": 8, "attn_dp": 8, "isl": 2048, "osl": 2048, "weight_dtype": "fp4",
          "kv_dtype": "fp8", "runtime": "vllm"}  # fmt: skip

    def holds(batch: int) -> bool:  # fits, KV within vLLM's gpu_memory_utilization share
        report = rl.memory("deepseek-r1", "gb200", batch=batch, **kw)
        return report.fits and batch <= report.memory.max_batch

    assert holds(per_gpu * 8) and not holds((per_gpu + 1) * 8)
    e = rl.estimate("deepseek-r1", "gb200", batch=per_gpu * 8, **kw)
    assert row.predicted == pytest.approx(per_gpu / e.tpot_s, rel=1e-9)


def test_total_tokens_per_s_counts_prompt_and_output_tokens(tmp_path: Path) -> None:
    """A closed-loop vLLM run on a 2-GPU DP2 + EP2 group, published per GPU: total = output x (isl + osl) / osl."""
    base = "c{},s,deepseek-r1,gb300,1,1,1,2,fp4,,2048,1,concurrency,64,{},1000,vllm,v0.14.1,"
    path = _file(tmp_path, base.format(1, "total_tokens_per_s"), base.format(2, "output_tokens_per_s"))
    total, output = validate_file(path, max_requests=128).rows
    assert total.predicted == pytest.approx(output.predicted * (2048 + 1) / 1, rel=1e-9)
    assert "2-GPU deployment, published per 1 GPU(s)" in total.note and "vllm profile" in total.note


# ---- the summary by runtime -------------------------------------------------------------------------


def test_json_splits_the_error_by_runtime(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "a1,s,llama-3.1-8b,a100-sxm-80gb,1,1,1,,bf16,bf16,5,100,single_stream,,output_tokens_per_s,93.89,gpt-fast,,",
        "a2,s,llama-3.1-8b,a100-sxm-80gb,2,2,1,,bf16,bf16,5,100,single_stream,,output_tokens_per_s,149.1,gpt-fast,,",
        "a3,s,llama-3.1-8b,h100-sxm,1,1,1,,fp8,,5,100,single_stream,,output_tokens_per_s,150,,,",
        "a4,s,,h100-sxm,1,,,,bf16,,,,gemm,4096x4096x4096,tflops,700,,,",
    )
    result = CliRunner().invoke(app, ["validate", "--data", str(path), "--format", "json", "--quiet", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    groups = {(g["runtime"], g["scenario"]): g for g in data["by_runtime"]}
    assert set(groups) == {("gpt-fast", "single_stream"), ("trtllm-cpp", "single_stream"), ("-", "gemm")}
    gpt_fast = [abs(r["error"]) for r in data["rows"] if r["runtime"] == "gpt-fast"]
    assert groups["gpt-fast", "single_stream"]["count"] == 2
    assert groups["gpt-fast", "single_stream"]["mape"] == pytest.approx(sum(gpt_fast) / 2)
    table = CliRunner().invoke(app, ["validate", "--data", str(path), "--quiet", "--jobs", "1"])
    assert "Error by runtime" in table.stdout


# ---- files without the column ---------------------------------------------------------------------


def test_a_file_without_the_runtime_column_predicts_as_trtllm(tmp_path: Path) -> None:
    """published.csv has no runtime column: its rows replay the public tables' setup (v0.17 TensorRT
    engine, trtllm-cpp), exactly as a row that leaves the column empty; a row naming trtllm ran the
    1.0 PyTorch backend (its own profile, the 1.0 tables' trtllm-bench settings)."""
    row = "t1,s,llama-3.1-8b,h100-sxm,1,1,1,,fp8,,128,128,max_throughput,,output_tokens_per_s,20000"
    plain = validate_file(_file(tmp_path, row, header=HEADER.rsplit(",runtime", 1)[0]), max_requests=200)
    named = validate_file(_file(tmp_path, row + ",trtllm-cpp,,"), max_requests=200)
    empty = validate_file(_file(tmp_path, row + ",,,"), max_requests=200)
    assert plain.rows[0].predicted == named.rows[0].predicted == empty.rows[0].predicted
    assert plain.rows[0].note == empty.rows[0].note  # no runtime-profile note: the benchmark setup
    assert "profile" not in plain.rows[0].note
    pytorch = validate_file(_file(tmp_path, row + ",trtllm,,"), max_requests=200)
    assert "trtllm profile with the benchmark defaults" in pytorch.rows[0].note
    assert pytorch.rows[0].predicted != plain.rows[0].predicted


def test_runtimes_file_is_predicted_whole() -> None:
    """Every row, r0030's Hugging Face id too (an alias of deepseek-v3.2)."""
    path = SHARED / "runtimes.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    report = validate_file(path)
    assert not report.skipped
    assert "r0030" in {r.case.case_id for r in report.rows}
    assert {s.runtime for s in report.by_runtime} == {"gpt-fast", "sglang", "vllm"}


def test_a_bad_phase_load_is_one_clear_error(tmp_path: Path) -> None:
    row = "b1,s,deepseek-r1,gb200,1,1,1,8,fp4,,2048,2048,disagg_decode,1.5,output_tokens_per_s,1,vllm,,"
    path = _file(tmp_path, row)
    result = CliRunner().invoke(app, ["validate", "--data", str(path), "--quiet", "--jobs", "1"])
    assert result.exit_code == 2
    assert "line 2, column 'load': '1.5' is not a disagg_decode load" in result.stderr
    assert "Traceback" not in result.output


# ---- validate --runtime: the runtime of rows whose column is empty ---------------------------


def test_runtime_option_sets_only_empty_model_level_rows(tmp_path: Path) -> None:
    from roofline.validation.predict_runtimes import with_default_runtime

    row = "r{},s,llama-3.1-8b,h100-sxm,1,1,1,,bf16,bf16,5,100,{},{},{},90,{},,"
    cases = read_cases(_file(
        tmp_path,
        row.format(1, "single_stream", "", "output_tokens_per_s", ""),
        row.format(2, "single_stream", "", "output_tokens_per_s", "sglang"),
        row.format(3, "gemm", "1024x1024x1024", "tflops", ""),
    ))  # fmt: skip
    out = with_default_runtime(cases, "torch-eager")
    assert [c.runtime for c in out] == ["torch-eager", "sglang", ""]  # the named row and the kernel row keep theirs
    assert runtime_profile(out[0]) == "torch-eager"
    assert with_default_runtime(cases, None) is cases


def test_runtime_option_changes_the_prediction_and_the_summary(tmp_path: Path) -> None:
    path = _file(tmp_path, "r1,s,llama-3.1-8b,h100-sxm,1,1,1,,bf16,bf16,5,100,single_stream,,output_tokens_per_s,"
                           "90,,,")  # fmt: skip
    default = rl.validate(path)
    eager = rl.validate(path, runtime="torch-eager")
    assert [s.runtime for s in default.by_runtime] == ["trtllm-cpp"]
    assert [s.runtime for s in eager.by_runtime] == ["torch-eager"]
    # an eager PyTorch decode launches every op from Python: slower than TensorRT-LLM's CUDA graphs
    assert eager.rows[0].predicted < default.rows[0].predicted


def test_unknown_runtime_option_is_one_line_exit_2() -> None:
    result = CliRunner().invoke(app, ["validate", "--runtime", "nope", "-q"])
    assert result.exit_code == 2
    assert "unknown runtime 'nope'" in result.output


def test_moe_row_with_tp_and_no_ep_runs_plain_tensor_parallelism(tmp_path: Path) -> None:
    """r0030's setup: TP 2, no EP published: the experts split over the two GPUs, no DP attention;
    with EP published (or neither), DP attention over the EP group as before."""
    from roofline.validation.predict_runtimes import layout
    from roofline.workloads import get_workload

    row = "m{},s,deepseek-v3,gb300,1,{},1,{},fp4,,2048,1024,max_throughput,,output_tokens_per_s,1,vllm,,"
    cases = read_cases(_file(tmp_path, row.format(1, 2, ""), row.format(2, 1, 2), row.format(3, "", "")))
    workload = get_workload("deepseek-v3")
    notes: list[str] = []
    plain, dp_ep, default = (layout(c, workload, notes) for c in cases)
    assert (plain.gpus, plain.tp, plain.ep, plain.attn_dp) == (2, 2, 1, 1)
    assert (dp_ep.gpus, dp_ep.tp, dp_ep.ep, dp_ep.attn_dp) == (2, 1, 2, 2)
    assert default.ep == default.attn_dp == default.gpus > 1 and default.tp == 1
    assert any("plain tensor parallelism" in n for n in notes)


def test_trtllm_attention_dp_row_runs_its_tp_ranks_as_attention_replicas(tmp_path: Path) -> None:
    """TensorRT-LLM's enable_attention_dp (named in the notes): the tp_size ranks are attention-DP
    replicas with whole experts per GPU (the 1.0 page's MoE llm_options); ep other than tp is refused;
    without the note the same row runs plain tensor parallelism."""
    from roofline.validation.predict_runtimes import layout
    from roofline.workloads import get_workload

    row = "a{},s,qwen3-235b-a22b,b200,8,8,1,{},fp4,fp8,1000,1000,max_throughput,,output_tokens_per_s,1,trtllm,,{}"
    cases = read_cases(_file(tmp_path, row.format(1, "", "enable_attention_dp: true"),
                             row.format(2, 8, "enable_attention_dp: true"), row.format(3, "", ""),
                             row.format(4, 4, "enable_attention_dp: true")))  # fmt: skip
    workload = get_workload("qwen3-235b-a22b")
    notes: list[str] = []
    adp, adp_ep, plain = (layout(c, workload, notes) for c in cases[:3])
    assert (adp.gpus, adp.tp, adp.ep, adp.attn_dp) == (8, 1, 8, 8)
    assert (adp_ep.gpus, adp_ep.tp, adp_ep.ep, adp_ep.attn_dp) == (8, 1, 8, 8)
    assert (plain.gpus, plain.tp, plain.ep, plain.attn_dp) == (8, 8, 1, 1)
    assert any("attention DP 8 (enable_attention_dp)" in n for n in notes)
    with pytest.raises(RooflineError, match="only ep = tp"):
        layout(cases[3], workload, notes)


def test_rows_without_a_runtime_are_labelled_with_the_engine_that_replays_them() -> None:
    from roofline.validation.predict import load_setups
    from roofline.validation.predict_runtimes import DEFAULT_RUNTIME

    assert DEFAULT_RUNTIME == load_setups().engine == "trtllm-cpp"  # the public v0.17 tables' engine flow

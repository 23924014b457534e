"""What the web page asks, answered by the Python API (roofline.api): no server code here, so the
answers are the library's and tests can call these functions directly.

A page's state is a flat mapping of text fields (the URL's query string); `query_from_state` turns
it into `rl.estimate` keyword arguments, checking every field the way the CLI's options do. Models,
accelerators and systems are catalog ids (or an uploaded model's token): the page never names a
file on the server."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roofline.api import Estimate, estimate, hardware_ids, model_ids, system_ids
from roofline.errors import RooflineError, UnknownIdError
from roofline.units import format_bytes, format_time
from roofline.workloads import Workload

UPLOAD_LIMIT_BYTES = 1 << 20  # an HF config.json or a model YAML is a few KiB
UPLOAD_PREFIX = "upload:"
SWEEP_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
INT_FIELDS = {"gpus": None, "tp": 1, "pp": 1, "ep": 1, "batch": 1, "isl": 1024, "osl": 128}
TEXT_FIELDS = ("weight_dtype", "kv_dtype", "runtime")
# what-if fields of the page -> the accelerator field `--set` changes (values with units: 4TB/s)
OVERRIDES = {"bandwidth": "memory.bandwidth", "flops": "compute.bf16", "memory": "memory.capacity"}
# what-if link fields of the page (GB/s per GPU per direction, a plain number) -> the `--set` key
LINK_OVERRIDES = {
    "scale_up_gb_per_s": "scale_up.bandwidth_per_gpu",
    "scale_out_gb_per_s": "scale_out.bandwidth_per_gpu",
}
DEFAULT_MODEL = "llama-3.1-70b"
DEFAULT_HARDWARE = "h100-sxm"
DEFAULT_TRAIN_MODEL = "llama-3.1-8b"  # the training tab opens on a model whose default layout fits 8 GPUs


@dataclass
class Uploads:
    """Models uploaded in this server's lifetime, by token (kept in memory, not on disk)."""

    models: dict[str, Workload] = field(default_factory=dict)

    def add(self, workload: Workload) -> str:
        token = f"{UPLOAD_PREFIX}{len(self.models) + 1}-{workload.id}"
        self.models[token] = workload
        return token


def catalog() -> dict[str, Any]:
    from roofline.dtypes import DType
    from roofline.simulator.serving.engine_config import engine_ids
    from roofline.training.config import RECOMPUTE, TASKS
    from roofline.training.constants import constants

    return {
        "models": model_ids(),
        "hardware": hardware_ids(),
        "systems": system_ids(),
        "runtimes": engine_ids(),
        "dtypes": [d.value for d in DType],
        "defaults": {"model": DEFAULT_MODEL, "hardware": DEFAULT_HARDWARE},
        "train": {
            "precisions": list(constants().precisions),
            "recomputes": list(RECOMPUTE),
            "tasks": list(TASKS),
            "defaults": {"model": DEFAULT_TRAIN_MODEL, "hardware": DEFAULT_HARDWARE},
        },
    }


def _int_field(state: Mapping[str, str], name: str, default: int | None) -> int | None:
    text = state.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise RooflineError(f"--{name.replace('_', '-')}: '{text}' is not a whole number") from None


def _catalog_id(what: str, given: str, known: list[str]) -> str:
    if given not in known:
        raise UnknownIdError(what, given, known)
    return given


def _model(state: Mapping[str, str], uploads: Uploads) -> str | Workload:
    given = state.get("model", "").strip() or DEFAULT_MODEL
    if given.startswith(UPLOAD_PREFIX):
        if given not in uploads.models:
            raise RooflineError(f"uploaded model '{given}' is not on this server (uploads last until it stops); "
                                "upload the file again")  # fmt: skip
        return uploads.models[given]
    return _catalog_id("model", given, model_ids())


def _settings(state: Mapping[str, str]) -> list[str]:
    """The `--set` items of the page's what-if fields (the link fields are numbers of GB/s)."""
    given = {name: state.get(name, "").strip() for name in (*OVERRIDES, *LINK_OVERRIDES)}
    items = [f"{key}={given[name]}" for name, key in OVERRIDES.items() if given[name]]
    return items + [f"{key}={_gb_per_s(given[name])}" for name, key in LINK_OVERRIDES.items() if given[name]]


def _gb_per_s(text: str) -> str:
    """A link field: a bare number is GB/s; a value with its own unit ("1.6TB/s") is kept as typed."""
    return text if any(ch.isalpha() for ch in text) else f"{text}GB/s"


def _where(state: Mapping[str, str]) -> dict[str, str | None]:
    """The accelerator and system ids of a state (the default accelerator when neither is given)."""
    system = state.get("system", "").strip()
    hardware = state.get("hardware", "").strip()
    if system:
        system = _catalog_id("system", system, system_ids())
    if hardware or not system:
        hardware = _catalog_id("hardware", hardware or DEFAULT_HARDWARE, hardware_ids())
    return {"hardware": hardware or None, "system": system or None}


def query_from_state(state: Mapping[str, str], uploads: Uploads) -> dict[str, Any]:
    """`rl.estimate` keyword arguments for a page state (text fields as in the URL)."""
    kwargs: dict[str, Any] = {"model": _model(state, uploads), **_where(state)}
    kwargs.update({name: _int_field(state, name, default) for name, default in INT_FIELDS.items()})
    kwargs.update({name: state.get(name, "").strip() or None for name in TEXT_FIELDS})
    kwargs["set"] = _settings(state)
    kwargs["ignore_memory"] = state.get("ignore_memory", "") in ("1", "true", "on")
    return kwargs


def run_estimate(state: Mapping[str, str], uploads: Uploads) -> Estimate:
    kwargs = query_from_state(state, uploads)
    return estimate(kwargs.pop("model"), kwargs.pop("hardware"), **kwargs)


# ---------------------------------------------------------------- what the page draws


def headline(result: Estimate) -> dict[str, Any]:
    """The answers the page shows as text, formatted as the CLI's table formats them."""
    shown: dict[str, Any] = {"fits": result.fits, "timed": result.timed, "hypothetical": result.hypothetical,
                             "fit": "yes" if result.fits else result.does_not_fit_message(),
                             "memory_total": format_bytes(result.total_bytes, binary=True),
                             "memory_capacity": format_bytes(result.memory.capacity_bytes, binary=True)}  # fmt: skip
    if result.timed:
        shown.update(ttft=format_time(result.ttft_s), tpot=format_time(result.tpot_s),
                     throughput=f"{result.output_tokens_per_s:,.0f} tok/s",
                     throughput_per_gpu=f"{result.output_tokens_per_s_per_gpu:,.0f} tok/s/GPU")  # fmt: skip
    return shown


def links_view(result: Estimate) -> dict[str, Any]:
    """The fabrics the estimate ran on: link name and GB/s per GPU per direction (what-ifs applied)."""
    assert result.query is not None
    cluster = result.query.cluster
    fabrics = {"scale_up": cluster.scale_up, "scale_out": cluster.scale_out}
    return {name: None if f is None else {"link": f.link.name, "gb_per_s": f.bandwidth_per_gpu_bytes_per_s / 1e9}
            for name, f in fabrics.items()}  # fmt: skip


def roofline_view(result: Estimate) -> dict[str, Any]:
    """The accelerator's roofs and every timed operator (prefill and a decode step) with its hover text."""
    from roofline.reports.plot_data import ceilings, memory_slopes

    assert result.query is not None
    acc = result.query.cluster.accelerator
    roofs = [{"dtype": c.dtype, "flops_per_s": c.flops_per_s, "peak_flops_per_s": c.peak_flops_per_s}
             for c in ceilings(acc)]  # fmt: skip
    slopes = [{"name": s.name, "bytes_per_s": s.bytes_per_s, "peak_bytes_per_s": s.peak_bytes_per_s}
              for s in memory_slopes(acc)]  # fmt: skip
    points = [_point(row) for row in result.records() if row["flops"] > 0 and row["bytes"] > 0 and row["time_s"] > 0]
    return {"ceilings": roofs, "slopes": slopes, "points": points}


def _point(row: dict[str, Any]) -> dict[str, Any]:
    return {"phase": row["phase"], "name": row["name"], "op_class": row["op_class"], "bound": row["bound"],
            "intensity_flops_per_byte": row["flops"] / row["bytes"],
            "achieved_flops_per_s": row["flops"] / row["time_s"],
            "flops": row["flops"], "bytes": row["bytes"], "time_s": row["time_s"], "time": format_time(row["time_s"]),
            "detail": row["detail"] or row["kind"]}  # fmt: skip


def breakdown_view(result: Estimate) -> dict[str, Any]:
    """Time by operator class (scaled to TTFT of the batch and TPOT) and memory per GPU by part."""
    from roofline.reports.plot_data import group_times, memory_parts

    out: dict[str, Any] = {"memory_bytes": memory_parts(result.memory), "capacity_bytes": result.memory.capacity_bytes}
    if result.detail is not None:
        d = result.detail
        out["time_s"] = {"prefill": group_times(d.prefill.ops, d.ttft_batch_s),
                         "decode": group_times(d.decode.ops, d.tpot_s)}  # fmt: skip
    return out


def estimate_view(state: Mapping[str, str], uploads: Uploads) -> dict[str, Any]:
    """Everything the page shows for one state: the headline, the CLI's JSON document, the figures' data."""
    result = run_estimate(state, uploads)
    view: dict[str, Any] = {"headline": headline(result), "result": result.to_dict(ops=True),
                            "breakdown": breakdown_view(result), "links": links_view(result),
                            "warnings": list(result.warnings)}  # fmt: skip
    view["roofline"] = roofline_view(result) if result.timed else None
    return view


def sweep_batch(state: Mapping[str, str], uploads: Uploads) -> list[dict[str, Any]]:
    """Throughput against TPOT over batch sizes (the ones that fit), one `rl.estimate` each."""
    kwargs = query_from_state(state, uploads)
    model, hardware = kwargs.pop("model"), kwargs.pop("hardware")
    kwargs.pop("ignore_memory")
    rows = []
    for batch in SWEEP_BATCHES:
        kwargs["batch"] = batch
        found = estimate(model, hardware, **kwargs)
        if not found.timed:
            break
        rows.append({"batch": batch, "tpot_s": found.tpot_s, "ttft_s": found.ttft_s,
                     "output_tokens_per_s": found.output_tokens_per_s})  # fmt: skip
    return rows


# ---------------------------------------------------------------- uploads and exports


def load_upload(filename: str, content: bytes, uploads: Uploads) -> dict[str, str]:
    """A model from an uploaded HF config.json or model YAML, loaded from a private temporary
    directory (the client's file name only picks the format); returns its token for the state."""
    if len(content) > UPLOAD_LIMIT_BYTES:
        raise RooflineError(f"'{filename}' is {len(content):,} bytes; uploads are limited to "
                            f"{UPLOAD_LIMIT_BYTES:,} bytes (a config.json or model YAML)")  # fmt: skip
    suffix = Path(filename).suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise RooflineError(f"'{filename}': upload a Hugging Face config.json or a model YAML (.yaml)")
    from roofline.workloads.catalog import load_workload_path

    with tempfile.TemporaryDirectory(prefix="roofline-ui-") as folder:
        path = Path(folder) / ("config.json" if suffix == ".json" else "model.yaml")
        path.write_bytes(content)
        try:
            workload = load_workload_path(path)
        except RooflineError as exc:  # name the user's file, not the temporary one
            raise RooflineError(str(exc).replace(str(path), filename)) from None
    return {"model": uploads.add(workload), "id": workload.id, "name": workload.name}


def _xlsx(result: Estimate) -> bytes:
    from roofline.reports.assumptions import estimate_inputs
    from roofline.reports.report_page import timed
    from roofline.reports.xlsx_views import write_estimate

    q, detail = timed(result)
    with tempfile.TemporaryDirectory(prefix="roofline-ui-") as folder:
        path = Path(folder) / "estimate.xlsx"
        write_estimate(path, detail, estimate_inputs(q.workload, q.cluster, q.scenario, result.ideal))
        return path.read_bytes()


def _html(result: Estimate) -> bytes:
    """The page `roofline report` writes (the same library function)."""
    from roofline.reports.report_page import estimate_report

    return estimate_report(result).html.encode("utf-8")


def _json(result: Estimate) -> bytes:
    from roofline.reports.formats import to_json

    return to_json(result.to_dict(ops=True)).encode("utf-8")


def _csv(result: Estimate) -> bytes:
    from roofline.reports.formats import flatten, to_csv

    return to_csv(result.records() if result.timed else [flatten(result.to_dict(ops=False))]).encode("utf-8")


EXPORTS: dict[str, tuple[str, Callable[[Estimate], bytes]]] = {
    "json": ("application/json", _json),
    "csv": ("text/csv", _csv),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _xlsx),
    "html": ("text/html", _html),
}


def export(state: Mapping[str, str], uploads: Uploads, fmt: str) -> tuple[bytes, str, str]:
    """(content, media type, file name) of the report `roofline estimate --format FMT` / `roofline report` writes."""
    if fmt not in EXPORTS:
        raise RooflineError(f"--format {fmt!r}: export json, csv, xlsx or html")
    media, write = EXPORTS[fmt]
    result = run_estimate(state, uploads)
    name = f"roofline-{result.model}-{result.hardware}.{fmt}".replace("/", "-")
    return write(result), media, name


# ---------------------------------------------------------------- the training tab

# the training tab's whole-number fields and their defaults (those of `roofline train`)
TRAIN_INT_FIELDS = {"gpus": 8, "tp": 1, "pp": 1, "cp": 1, "ep": 1, "global_batch": 256, "micro_batch": 1,
                    "seq_len": 4096}  # fmt: skip
TRAIN_TEXT_FIELDS = {"precision": "bf16", "recompute": "none", "task": "pretrain"}
# the memory parts of a training step, as TrainReport.to_dict()["memory"] names them, bottom to top
TRAIN_MEMORY_PARTS = {"parameters": "params_bytes", "gradients": "grads_bytes", "optimizer states": "optimizer_bytes",
                      "activations": "activations_bytes", "reserve": "reserve_bytes"}  # fmt: skip


def _tokens(state: Mapping[str, str]) -> float | None:
    text = state.get("tokens", "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise RooflineError(f"--tokens: '{text}' is not a number") from None


def train_kwargs(state: Mapping[str, str], uploads: Uploads) -> dict[str, Any]:
    """`rl.train` keyword arguments for the training tab's state (text fields as in the URL)."""
    given = {**state, "model": state.get("model", "").strip() or DEFAULT_TRAIN_MODEL}
    kwargs: dict[str, Any] = {"model": _model(given, uploads), **_where(state)}
    kwargs.update({name: _int_field(state, name, default) for name, default in TRAIN_INT_FIELDS.items()})
    kwargs.update({name: state.get(name, "").strip() or default for name, default in TRAIN_TEXT_FIELDS.items()})
    kwargs["tokens"] = _tokens(state)
    return kwargs


def train_view(state: Mapping[str, str], uploads: Uploads) -> dict[str, Any]:
    """What the training tab shows: `roofline train`'s table rows (formatted as the CLI's), its JSON
    document, and the memory and step-time parts for the figures."""
    from roofline.api import train

    kwargs = train_kwargs(state, uploads)
    report = train(kwargs.pop("model"), kwargs.pop("hardware"), **kwargs)
    document = report.to_dict()
    memory = document["memory"]
    overview = [[name, str(value)] for name, value in report.overview()]
    return {"overview": overview, "headline": {name: value for name, value in overview if not name.startswith(" ")},
            "result": document, "memory_bytes": {part: memory[key] for part, key in TRAIN_MEMORY_PARTS.items()},
            "capacity_bytes": memory["capacity_bytes"], "parts_s": document["parts_s"]}  # fmt: skip

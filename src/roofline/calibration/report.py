"""The calibration's files: the calibrated profile YAML, report.md and report.csv (the plot is
`roofline.reports.calibration_plot`). Rows and summaries are built here once and shared by the
Markdown, the CSV and the CLI's tables."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roofline.calibration.cases import FITTED_FAMILIES, Family
from roofline.calibration.fit import ErrorSummary
from roofline.calibration.host import HostFit
from roofline.calibration.profile import to_yaml
from roofline.calibration.runner import CalibrationResult, TrainComparison
from roofline.calibration.runtime_profiles import write_profiles
from roofline.calibration.train_run import TrainEstimate, TrainRunResult
from roofline.errors import RooflineError
from roofline.hardware_specs.schema import EfficiencySpec
from roofline.units import format_bytes, format_time

REPORT_MD, REPORT_CSV, PLOT_PNG = "report.md", "report.csv", "predicted_vs_measured.png"


def profile_filename(result: CalibrationResult) -> str:
    return f"{result.hardware_id}-calibrated.yaml"


def output_paths(result: CalibrationResult, out_dir: Path) -> dict[str, Path]:
    names = {"profile": profile_filename(result), "report": REPORT_MD, "csv": REPORT_CSV, "plot": PLOT_PNG}
    return {key: out_dir / name for key, name in names.items()}


def check_outputs(out_dir: Path, force: bool, names: Sequence[str]) -> None:
    """Refuse to overwrite earlier outputs without --force; create the directory."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RooflineError(f"-o {out_dir}: exists and is not a directory")
    existing = [n for n in names if (out_dir / n).exists()]
    if existing and not force:
        raise RooflineError(f"'{out_dir / existing[0]}' already exists; pass --force to overwrite it")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RooflineError(f"cannot create '{out_dir}': {exc.strerror}") from None


# ---- rows ---------------------------------------------------------------------------------------------


def case_rows(result: CalibrationResult) -> list[dict[str, Any]]:
    """One row per measured kernel (fitted, held out, or skipped), per collective and per model run."""
    fit = result.fit
    rows: list[dict[str, Any]] = []
    index = {case: i for i, case in enumerate(result.fit_cases)}
    for m in result.measurements:
        case = m.case
        row: dict[str, Any] = {"family": case.family.value, "variant": case.variant, "dtype": case.dtype.value,
                               "name": case.name, "role": "", "measured_s": m.time_s, "predicted_before_s": math.nan,
                               "predicted_after_s": math.nan, "error_before": math.nan, "error_after": math.nan,
                               "flops": case.op.flops, "bytes": case.op.bytes, "note": m.note}  # fmt: skip
        if case in index:
            i = index[case]
            row["role"] = "held_out" if fit.held_out[i] else ("fitted" if fit.fitted[i] else "")
            row |= _errors(fit.predicted_before_s[i], fit.predicted_after_s[i], m.time_s)
        elif m.timing is None:
            row["role"] = "skipped"
        rows.append(row)
    for c in result.collectives:
        for row in rows:
            if row["name"] == c.measurement.case.name:
                row |= {"role": "checked", "note": c.detail,
                        **_errors(math.nan, c.predicted_s, c.measurement.time_s)}  # fmt: skip
    for run in result.model_runs:
        spec = run.run.spec
        for phase, measured, before, after in (
            ("prefill (TTFT)", run.run.measured_ttft_s, run.ttft_before_s, run.ttft_after_s),
            ("decode step (TPOT)", run.run.measured_tpot_s, run.tpot_before_s, run.tpot_after_s),
        ):
            rows.append({"family": "model", "variant": phase, "dtype": spec.dtype.value,
                         "name": f"{spec.workload.id} {phase} batch={spec.batch} isl={spec.isl} osl={spec.osl}",
                         "role": "checked", "measured_s": measured, "flops": math.nan, "bytes": math.nan,
                         "note": spec.describe(), **_errors(before, after, measured)})  # fmt: skip
    rows += [train_case_row(c) for c in result.train_runs]
    for mode in result.modes:
        rows.append({"family": "runtime", "variant": f"{mode.phase}, {mode.mode}", "dtype": "",
                     "name": f"{mode.model} {mode.phase} {mode.mode}", "role": "checked",
                     "measured_s": mode.measured_s, "flops": math.nan, "bytes": math.nan,
                     "note": f"before: packaged {_runtime_id(mode.mode)}; after: {_runtime_id(mode.mode)}-calibrated",
                     **_errors(mode.before_s, mode.after_s, mode.measured_s)})  # fmt: skip
    return rows


def train_case_row(c: TrainComparison) -> dict[str, Any]:
    """report.csv's row of a training-step run: predicted seconds NaN where there is no estimate."""
    spec, run = c.run.spec, c.run
    before = c.before.step_s if c.before.step_s is not None else math.nan
    after = c.after.step_s if c.after.step_s is not None else math.nan
    note = spec.describe() + (f"; {c.after.note}" if c.after.note else "")
    return {"family": "train", "variant": "train_step", "dtype": spec.dtype.value,
            "name": f"{spec.workload.id} train_step batch={spec.batch} seq={spec.seq_len}", "role": "checked",
            "measured_s": run.measured_step_s, "flops": math.nan, "bytes": math.nan, "note": note,
            **_errors(before, after, run.measured_step_s)}  # fmt: skip


def train_markdown(result: CalibrationResult) -> list[str]:
    """The training-step runs: measured step and peak memory against the estimate ("no estimate" without one)."""
    if not result.train_runs:
        return []
    lines = ["", "## Training step (estimator vs PyTorch)", ""]
    rows = []
    for c in result.train_runs:
        run = c.run
        lines += [f"- `{run.spec.workload.id}`: {run.spec.describe()}."]
        lines += [f"- {c.after.note}."] if c.after.note else []
        rows.append((run.spec.workload.id, format_time(run.measured_step_s), *_estimate_cells(c.before, run),
                     *_estimate_cells(c.after, run), _bytes(run.peak_memory_bytes),
                     _bytes(c.after.memory_bytes)))  # fmt: skip
    lines += [""]
    return lines + _md_table(("run", "measured step", "predicted before", "error", "predicted after", "error",
                              "peak memory", "predicted memory"), rows)  # fmt: skip


def _estimate_cells(estimate: TrainEstimate, run: TrainRunResult) -> tuple[str, str]:
    if estimate.step_s is None:
        return "no estimate", "n/a"
    return format_time(estimate.step_s), pct(estimate.step_s / run.measured_step_s - 1)


def _bytes(value: float | None) -> str:
    return "n/a" if value is None else format_bytes(value)


def _runtime_id(mode: str) -> str:
    return "torch-eager" if mode == "eager" else "torch-cuda-graph"


def _errors(before: float, after: float, measured: float) -> dict[str, float]:
    return {"predicted_before_s": before, "predicted_after_s": after,
            "error_before": before / measured - 1.0, "error_after": after / measured - 1.0}  # fmt: skip


@dataclass(frozen=True)
class SummaryRow:
    scope: str  # "matmul", "all kernels", a family ...
    shapes: str  # fitted | held_out
    before: ErrorSummary
    after: ErrorSummary


def summary_rows(result: CalibrationResult) -> list[SummaryRow]:
    """|error| before and after fitting, on the fitted and the held-out shapes, per family and overall."""
    fit, out = result.fit, []
    scopes: list[tuple[str, list[bool] | None]] = [("all kernels", None)]
    scopes += [(f.value, result.family_mask(f)) for f in FITTED_FAMILIES if any(result.family_mask(f))]
    for scope, mask in scopes:
        for shapes in ("fitted", "held_out"):
            after = fit.summary(shapes, True, mask)
            if after.count:
                out.append(SummaryRow(scope, shapes, fit.summary(shapes, False, mask), after))
    return out


def matmul_held_out(result: CalibrationResult) -> ErrorSummary:
    return result.fit.summary("held_out", True, result.family_mask(Family.MATMUL))


def efficiency_changes(before: EfficiencySpec, after: EfficiencySpec) -> list[tuple[str, str, str]]:
    rows = [(f"matmul_fraction.{k}", _num(before.matmul_fraction.get(k, before.matmul_fraction["default"])),
             _num(v)) for k, v in sorted(after.matmul_fraction.items())]  # fmt: skip
    rows += [
        ("memory_bandwidth_fraction", _num(before.memory_bandwidth_fraction), _num(after.memory_bandwidth_fraction)),
        ("attention_fraction", _num(before.attention_fraction), _num(after.attention_fraction)),
        ("kernel_overhead", format_time(before.kernel_overhead), format_time(after.kernel_overhead)),
        ("overlap_exponent", _num(before.overlap_exponent), _num(after.overlap_exponent)),
        ("matmul_tiles", _tiles(before), _tiles(after)),
    ]
    return rows + _host_changes(before, after)


def _host_changes(before: EfficiencySpec, after: EfficiencySpec) -> list[tuple[str, str, str]]:
    """The knobs only a host's fit sets, where either side has them."""
    rows = []
    if before.decode_attention_memory_fraction is not None or after.decode_attention_memory_fraction is not None:
        rows.append(("decode_attention_memory_fraction", _optional(before.decode_attention_memory_fraction),
                     _optional(after.decode_attention_memory_fraction)))  # fmt: skip
    if before.gemv_below_m or after.gemv_below_m:
        rows += [("gemv_below_m", str(before.gemv_below_m), str(after.gemv_below_m)),
                 ("gemv_output_overhead", format_time(before.gemv_output_overhead),
                  format_time(after.gemv_output_overhead))]  # fmt: skip
    return rows


def _optional(value: float | None) -> str:
    return "-" if value is None else _num(value)


def _tiles(eff: EfficiencySpec) -> str:
    return ", ".join(f"{t.m}x{t.n}" for t in eff.matmul_tiles)


def _num(value: float) -> str:
    return f"{value:.3g}"


def pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:+.1f}%"


def abs_pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}%"


# ---- files --------------------------------------------------------------------------------------------


def to_csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["family"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def markdown(result: CalibrationResult, paths: dict[str, Path]) -> str:
    d, fit = result.device, result.fit
    lines = [f"# Calibration of {d.name} ({result.date})", ""]
    if result.refit_of:
        lines += [f"`roofline calibrate --from {result.refit_of}` refit the measurements of a `roofline calibrate "
                  f"--device {d.kind} --{result.mode}` run of {result.date} with this version's cost model (no "
                  f"device) and wrote `{paths['profile'].name}` (accelerator id `{result.calibrated.id}`). Use it "
                  f"with `roofline estimate --hardware {paths['profile']} ...`.", ""]  # fmt: skip
    else:
        lines += [f"`roofline calibrate --device {d.kind} --{result.mode}` wrote `{paths['profile'].name}` "
                  f"(accelerator id `{result.calibrated.id}`) in {result.elapsed_s:.0f} s. Use it with "
                  f"`roofline estimate --hardware {paths['profile']} ...`.", ""]  # fmt: skip
    if result.interrupted:
        lines += ["**Interrupted**: the fit and the tables use only what was measured before Ctrl-C.", ""]
    identity = d.identity() + [("timing", f"{result.clock}; median of repetitions, {result.mode} grid")]
    lines += ["## Device", ""] + _md_table(("item", "value"), identity) + [""]
    base_kind = "catalog entry" if d.kind == "cuda" else "host profile (measured peaks)"
    lines += [f"Profile before fitting: {base_kind} `{result.base.id}`."]
    lines += [f"- differs from the catalog: {x}" for x in result.catalog_differences]
    lines += [""]
    held = matmul_held_out(result)
    lines += ["## Error before and after fitting", "",
              f"Held-out matmul shapes after fitting: median |error| {abs_pct(held.median_abs)}, "
              f"mean {abs_pct(held.mean_abs)}, worst {abs_pct(held.max_abs)} over {held.count} shapes "
              "(every third shape of each family is held out of the fit).", ""]  # fmt: skip
    lines += _md_table(
        ("kernels", "shapes", "n", "median before", "median after", "mean before", "mean after", "max after"),
        [(s.scope, s.shapes.replace("_", "-"), str(s.after.count), abs_pct(s.before.median_abs),
          abs_pct(s.after.median_abs), abs_pct(s.before.mean_abs), abs_pct(s.after.mean_abs),
          abs_pct(s.after.max_abs)) for s in summary_rows(result)],
    )  # fmt: skip
    lines += ["", "## Fitted efficiencies", ""]
    lines += _md_table(("knob", "before", "after"), efficiency_changes(fit.before, fit.after))
    if not math.isnan(fit.stream_memory_fraction):
        lines += ["", f"Copy, read and elementwise kernels alone give a memory fraction of "
                  f"{fit.stream_memory_fraction:.3g} (and the kernel overhead); the profile keeps the fraction "
                  "the matmul shapes give, since weight streaming in skinny GEMMs is what decode time is "
                  "made of."]  # fmt: skip
    if result.model_runs:
        lines += ["", "## Model-level runs (estimator vs PyTorch)", ""]
        rows = []
        for run in result.model_runs:
            r = run.run
            rows.append((r.spec.workload.id, "prefill (TTFT)", format_time(r.measured_ttft_s),
                         format_time(run.ttft_before_s), pct(run.ttft_before_s / r.measured_ttft_s - 1),
                         format_time(run.ttft_after_s), pct(run.ttft_after_s / r.measured_ttft_s - 1)))  # fmt: skip
            rows.append((r.spec.workload.id, "decode step (TPOT)", format_time(r.measured_tpot_s),
                         format_time(run.tpot_before_s), pct(run.tpot_before_s / r.measured_tpot_s - 1),
                         format_time(run.tpot_after_s), pct(run.tpot_after_s / r.measured_tpot_s - 1)))  # fmt: skip
            lines += [f"- `{r.spec.workload.id}`: {r.spec.describe()}."]
        lines += [""]
        lines += _md_table(("run", "phase", "measured", "predicted before", "error", "predicted after", "error"),
                           rows)  # fmt: skip
    lines += train_markdown(result)
    lines += host_markdown(result)
    if result.collectives:
        lines += ["", "## Collectives (not fitted)", ""]
        comm_rows = [(c.measurement.case.name, format_time(c.measurement.time_s), format_time(c.predicted_s),
                 pct(c.predicted_s / c.measurement.time_s - 1), c.detail) for c in result.collectives]  # fmt: skip
        lines += _md_table(("collective", "measured", "predicted", "error", "algorithm"), comm_rows)
    lines += ["", "## Every kernel", ""]
    lines += _md_table(
        ("kernel", "role", "measured", "before", "after"),
        [(r["name"], r["role"], format_time(r["measured_s"]) if not math.isnan(r["measured_s"]) else r["note"],
          pct(r["error_before"]), pct(r["error_after"])) for r in case_rows(result)
         if r["family"] not in ("model", "train")],
    )  # fmt: skip
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in result.notes]
    lines += ["", f"Files: `{paths['profile'].name}`, `{paths['csv'].name}` (every row with predicted and measured "
              f"seconds), `{paths['plot'].name}`; the raw measurements in `measurements.csv` and `run.json` "
              "(`roofline calibrate --from DIR` refits from them).", ""]  # fmt: skip
    return "\n".join(lines)


def _us(seconds: float) -> str:
    return "n/a" if not math.isfinite(seconds) else f"{seconds * 1e6:.3g} us"


def modes_markdown(result: CalibrationResult) -> list[str]:
    """The model-level runs per launch mode with the runtime's host time: packaged vs calibrated profile."""
    if not result.modes:
        return []
    lines = ["", "## Model-level runs with host time, per launch mode", "",
             "Predicted with `--runtime torch-eager` / `torch-cuda-graph` as packaged, then with this run's "
             "calibrated profiles (`torch-eager-calibrated.yaml`, `torch-cuda-graph-calibrated.yaml`); device only "
             "= the fitted kernels without a runtime.", ""]  # fmt: skip
    rows = [(m.model, m.mode, m.phase, format_time(m.measured_s), pct(m.error(m.device_only_s)),
             pct(m.error(m.before_s)), pct(m.error(m.after_s))) for m in result.modes]  # fmt: skip
    lines += _md_table(("run", "mode", "phase", "measured", "device only", "packaged profile",
                        "calibrated profile"), rows)  # fmt: skip
    return lines + [f"\n{note}" for note in _fitted_notes({m.mode for m in result.modes})]


def _fitted_notes(modes: set[str]) -> list[str]:
    """A packaged profile fitted on measurement rows says so: on its own row it matches by construction."""
    from roofline.simulator.serving.engine_config import load_engine

    notes = []
    for mode in sorted(modes):
        fitted = load_engine(_runtime_id(mode)).fitted_on
        if fitted:
            notes.append(f"The packaged `{_runtime_id(mode)}` has constants fitted on measured rows "
                         f"(`fitted_on`: {fitted}); on those rows its error is not a check.")  # fmt: skip
    return notes


def _op_cell(fit: HostFit, model: str, op: str) -> str:
    calls = fit.calls_per_op(model).get(op, math.nan)
    return f"{fit.kernels[model].get(op, 0)} / {fit.views.get(model, {}).get(op, 0)} / {calls:.2f}"


def host_markdown(result: CalibrationResult) -> list[str]:
    """The host costs (calibration.host): dispatch, CUDA-graph replay, kernels per operator."""
    fit = result.host
    if fit is None:
        return modes_markdown(result)
    lines = modes_markdown(result) + ["", "## Host costs", ""]
    rows = [("eager: **dispatch_per_call** = one x.add_(1) (loop, slope over N)", _us(fit.kernel_dispatch_s)),
            ("eager: dispatch of one view op (slice / transpose loop)", _us(fit.view_dispatch_s)),
            ("eager decode step: view ops per kernel", f"{fit.views_per_kernel:.2f}"),
            ("CUDA graph: launch of a graph of tiny kernels (host time of replay())", _us(fit.graph_launch_s)),
            ("CUDA graph: **graph_launch** of the decode step's graph (host time of replay())",
             _us(fit.decode_graph_launch_s)),
            ("CUDA graph: the loop around a replay (position fill_, token copy_)", _us(fit.decode_graph_loop_s)),
            ("CUDA graph: **graph_kernel_gap** (device time per tiny kernel in a replay, slope over N)",
             _us(fit.graph_kernel_gap_s))]  # fmt: skip
    lines += _md_table(("host cost", "value"), rows)
    if result.device.kind != "cuda":
        lines += ["", "No CUDA graphs on a CPU device: the graph rows and the graph decode run are not measured; "
                  "host and device are the same thread (host time adds to the kernels' time)."]  # fmt: skip
    for dims, seconds in fit.decode_graph_s.items():
        lines += ["", f"Decode step replayed as one CUDA graph ({dims}): {format_time(seconds)} measured."]
    if fit.kernels:
        models = sorted(fit.kernels)
        ops = sorted({op for m in models for op in fit.kernels[m]})
        header = ("operator", *(f"{m} kernels / views / calls" for m in models))
        table = [(op, *(_op_cell(fit, m, op) if op in fit.kernels[m] else "" for m in models)) for op in ops]
        lines += ["", "Per IR operator instance of an eager decode step: kernels (aten ops that launch work) and "
                  "views (TorchDispatchMode count), and weighted framework calls (its traced host time in units of "
                  "one x.add_(1); the calibrated `calls_per_op`):", ""]  # fmt: skip
        lines += _md_table(header, table)
        for model, count in fit.profiled.items():
            lines += ["", f"torch.profiler: {count} CUDA kernels in one decode step of {model}."]
    return lines


def write_outputs(result: CalibrationResult, out_dir: Path) -> dict[str, Path]:
    """Write the profile YAML, report.md and report.csv; returns every output path (plot included)."""
    paths = output_paths(result, out_dir)
    held = matmul_held_out(result)
    header = (f"Calibrated profile written by `roofline calibrate` on {result.date} ({result.device.name}).\n"
              f"Held-out matmul |error| after fitting: median {abs_pct(held.median_abs)}, mean "
              f"{abs_pct(held.mean_abs)}; see {REPORT_MD}.")  # fmt: skip
    texts = {
        "profile": to_yaml(result.calibrated, header),
        "report": markdown(result, paths),
        "csv": to_csv_text(case_rows(result)),
    }
    for key, text in texts.items():
        try:
            paths[key].write_text(text, encoding="utf-8")
        except OSError as exc:
            raise RooflineError(f"cannot write '{paths[key]}': {exc.strerror}") from None
    runtime_header = (f"Runtime profile calibrated by `roofline calibrate` on {result.date} ({result.device.name}); "
                      f"use it as --runtime {out_dir}/<this file>; see {REPORT_MD}.")  # fmt: skip
    paths.update(write_profiles(result.runtime_profiles, out_dir, runtime_header))
    return paths

"""`rl.calibrate`: measure this GPU (or the host CPU) with PyTorch, fit the cost model's
efficiencies, and (with `output`) write the calibrated profile, reports and plot. Needs PyTorch."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roofline.calibration import require_torch
from roofline.errors import RooflineError
from roofline.result import Result, html_table

if TYPE_CHECKING:
    from roofline.calibration.runner import CalibrationResult

Progress = Callable[[str, int, int], None]  # (what, done, total)


def _summary(s: Any) -> dict[str, Any]:
    return {"count": s.count, "median_abs": s.median_abs, "mean_abs": s.mean_abs, "max_abs": s.max_abs}


def _host_dict(fit: Any) -> dict[str, Any] | None:
    if fit is None:
        return None
    return {"dispatch_per_kernel_s": fit.dispatch_per_kernel_s, "kernel_dispatch_s": fit.kernel_dispatch_s,
            "view_dispatch_s": fit.view_dispatch_s, "views_per_kernel": fit.views_per_kernel,
            "graph_launch_s": fit.graph_launch_s, "graph_kernel_gap_s": fit.graph_kernel_gap_s,
            "kernels_per_op": fit.kernels, "views_per_op": fit.views, "profiled_kernels": fit.profiled,
            "decode_graph_s": fit.decode_graph_s}  # fmt: skip


@dataclass(frozen=True, repr=False)
class CalibrationReport(Result):
    """The measurements, the fit (|error| before and after on fitted and held-out shapes, the
    efficiencies), the model-level runs and the files written (`paths`; empty without `output`)."""

    result: CalibrationResult
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def calibrated(self) -> Any:
        """The calibrated Accelerator (use it as `hardware=` in estimate, serve ...)."""
        return self.result.calibrated

    def to_dict(self) -> dict[str, Any]:
        from roofline.calibration.report import efficiency_changes, summary_rows

        r = self.result
        return {
            "device": r.device.name, "device_kind": r.device.kind, "hardware": r.hardware_id, "date": r.date,
            "mode": r.mode, "clock": r.clock, "elapsed_s": r.elapsed_s, "interrupted": r.interrupted,
            "errors": [{"kernels": s.scope, "shapes": s.shapes, "before": _summary(s.before),
                        "after": _summary(s.after)} for s in summary_rows(r)],
            "efficiency": [{"knob": k, "before": b, "after": a} for k, b, a in efficiency_changes(r.fit.before,
                                                                                                   r.fit.after)],
            "model_runs": [{"model": c.run.spec.workload.id, "measured_ttft_s": c.run.measured_ttft_s,
                            "measured_tpot_s": c.run.measured_tpot_s, "ttft_before_s": c.ttft_before_s,
                            "ttft_after_s": c.ttft_after_s, "tpot_before_s": c.tpot_before_s,
                            "tpot_after_s": c.tpot_after_s} for c in r.model_runs],
            "train_runs": [{"model": c.run.spec.workload.id, "batch": c.run.spec.batch, "seq_len": c.run.spec.seq_len,
                            "measured_step_s": c.run.measured_step_s, "step_before_s": c.before.step_s,
                            "step_after_s": c.after.step_s, "peak_memory_bytes": c.run.peak_memory_bytes,
                            "predicted_memory_bytes": c.after.memory_bytes, "note": c.after.note}
                           for c in r.train_runs],
            "host": _host_dict(r.host),
            "modes": [{"model": m.model, "mode": m.mode, "phase": m.phase, "measured_s": m.measured_s,
                       "device_only_s": m.device_only_s, "packaged_s": m.before_s, "calibrated_s": m.after_s}
                      for m in r.modes],  # fmt: skip
            "catalog_differences": list(r.catalog_differences), "notes": list(r.notes),
            "files": {k: str(p) for k, p in self.paths.items()},
        }  # fmt: skip

    def records(self) -> list[dict[str, Any]]:
        """Every measured case with its predictions before and after fitting (report.csv)."""
        from roofline.calibration.report import case_rows

        return case_rows(self.result)

    def _repr_html_(self) -> str:
        d = self.to_dict()
        pairs = [("device", d["device"]), ("hardware", d["hardware"]), ("mode", d["mode"])]
        pairs += [
            (
                f"{e['kernels']} {e['shapes']} median |error|",
                f"{e['before']['median_abs']:.1%} -> {e['after']['median_abs']:.1%}",
            )
            for e in d["errors"]
        ]
        return html_table("CalibrationReport", pairs)


def calibrate(
    output: str | os.PathLike[str] | None = None, *, device: str = "auto", quick: bool = True,
    hardware: str | None = None, threads: int | None = None, model: str = "llama-3.1-8b", model_runs: bool = True,
    memory_fraction: float | None = None, passes: int | None = None, force: bool = False,
    progress: Progress | None = None, kernel_table: str | os.PathLike[str] | None = None, host_costs: bool = True,
    moe_model: str | None = "qwen3-30b-a3b", from_dir: str | os.PathLike[str] | None = None, train_run: bool = True,
    runtime: str | Sequence[str] = (),
) -> CalibrationReport | KernelTableReport:  # fmt: skip
    """Measure the device with PyTorch and fit the efficiencies (`roofline calibrate`); with `output`
    (a directory) also write `<hardware>-calibrated.yaml`, report.md, report.csv and the plot, never
    over earlier outputs without `force`. `kernel_table`: also fit GEMM curves from a measured
    table (calibrate_kernel_table) into the calibrated profile; with device="none", only that
    (no PyTorch needed). `host_costs`: also time eager dispatch, CUDA-graph replay and the kernels
    per operator (calibration.host); `moe_model`: the MoE model-level run (None: none); `train_run`:
    also time a training step (forward, backward, AdamW) of the reduced `model` (calibration.train_run).
    `from_dir`: refit that saved run instead of measuring (`refit`; no device, no PyTorch).
    `runtime`: the PyTorch launch modes measured and recalibrated, `torch-eager` and/or
    `torch-cuda-graph` (aliases gpt-fast, torch-compile; empty: both)."""
    from roofline.calibration.runtime_profiles import calibration_runtimes

    runtimes = calibration_runtimes([runtime] if isinstance(runtime, str) else list(runtime))
    if from_dir is not None:
        if output is None:
            raise RooflineError("--from needs --out DIR for the refit's files")
        return refit(from_dir, output, force=force, runtime=runtimes)
    if device == "none":
        if kernel_table is None:
            raise RooflineError("--device none measures nothing; give --kernel-table FILE to fit from a table")
        return calibrate_kernel_table(kernel_table, output, force=force)
    require_torch()
    from roofline.calibration.report import PLOT_PNG, REPORT_CSV, REPORT_MD, check_outputs, profile_filename
    from roofline.calibration.runner import CalibrationOptions, run_calibration
    from roofline.calibration.saved import MEASUREMENTS_CSV, RUN_JSON

    out = Path(output) if output is not None else None
    known = [f"{hardware or 'host'}-calibrated.yaml"] if hardware or device == "cpu" else []
    if out is not None:
        check_outputs(out, force, [REPORT_MD, REPORT_CSV, PLOT_PNG, MEASUREMENTS_CSV, RUN_JSON, *known])
    if passes is not None and passes < 1:
        raise RooflineError(f"--passes must be at least 1, got {passes}")
    options = CalibrationOptions(device=device, full=not quick, hardware=hardware, threads=threads, model=model,
                                 memory_fraction=memory_fraction, model_runs=model_runs, passes=passes,
                                 host_costs=host_costs, moe_model=moe_model, train_run=train_run,
                                 runtimes=runtimes)  # fmt: skip
    result = run_calibration(options, progress)
    if out is None:
        return CalibrationReport(result)
    check_outputs(out, force, [profile_filename(result), *result.runtime_profiles])
    paths = write_calibration(result, out)
    if kernel_table is not None:
        table = calibrate_kernel_table(kernel_table, out, force=force, profiles={result.hardware_id: paths["profile"]})
        paths.update(table.paths)
    return CalibrationReport(result, paths)


def write_calibration(result: CalibrationResult, output: Path) -> dict[str, Path]:
    """The profile, report.md/csv, the raw measurements (measurements.csv, run.json) and the plot
    (when matplotlib is installed)."""
    from roofline.calibration.report import write_outputs
    from roofline.calibration.saved import write_run

    paths = write_outputs(result, output)
    if result.saved is not None:
        paths.update(write_run(result.saved, output))
    try:
        from roofline.reports.calibration_plot import write_calibration_plot
    except ImportError:  # matplotlib missing: no plot
        del paths["plot"]
        return paths
    write_calibration_plot(result, paths["plot"])
    return paths


def refit(run_dir: str | os.PathLike[str], output: str | os.PathLike[str], *, force: bool = False,
          runtime: Sequence[str] = ()) -> CalibrationReport:  # fmt: skip
    """Refit a saved calibration run (`roofline calibrate --from DIR`) with today's cost model, no
    device or PyTorch needed: the measurements of DIR (measurements.csv, or the names in report.csv
    of an older run), the fit, the model-level runs predicted again; the same files as `calibrate`
    written into `output`, never over earlier outputs without `force`. `runtime`: the launch modes
    recalibrated (as `calibrate`; empty: both)."""
    import time

    from roofline.calibration.report import PLOT_PNG, REPORT_CSV, REPORT_MD, check_outputs, profile_filename
    from roofline.calibration.runner import analyse
    from roofline.calibration.runtime_profiles import calibration_runtimes
    from roofline.calibration.saved import MEASUREMENTS_CSV, RUN_JSON, read_run

    started = time.perf_counter()
    saved = read_run(run_dir)
    out = Path(output)
    result = analyse(saved, 0.0, refit_of=str(run_dir), runtimes=calibration_runtimes(list(runtime)))
    check_outputs(out, force, [REPORT_MD, REPORT_CSV, PLOT_PNG, MEASUREMENTS_CSV, RUN_JSON, profile_filename(result),
                               *result.runtime_profiles])  # fmt: skip
    result = dataclasses.replace(result, elapsed_s=time.perf_counter() - started)
    return CalibrationReport(result, write_calibration(result, out))


@dataclass(frozen=True, repr=False)
class KernelTableReport(Result):
    """GEMM curves fitted from a measured kernel table (`roofline calibrate --kernel-table`): per
    accelerator of the table, each format's curve and the profile written (`paths`)."""

    table: Path
    curves: dict[str, dict[str, dict[str, Any]]]
    paths: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kernel_table": str(self.table), "curves": self.curves,
                "files": {k: str(p) for k, p in self.paths.items()}}  # fmt: skip

    def records(self) -> list[dict[str, Any]]:
        skip = ("fitted_on", "held_out")
        return [{"hardware": part, "format": key, **{k: v for k, v in curve.items() if k not in skip}}
                for part, formats in self.curves.items() for key, curve in formats.items()]  # fmt: skip


def calibrate_kernel_table(
    table: str | os.PathLike[str], output: str | os.PathLike[str] | None = None, *, force: bool = False,
    profiles: dict[str, Path] | None = None,
) -> KernelTableReport:  # fmt: skip
    """Fit each accelerator's GEMM curves from a measured kernel table (a file in the validation
    schema: gemm rows with latency_us or tflops -- a vendor database export or your own timings).
    With `output`, write `<hardware>-kernel-table.yaml` (the catalog part plus its own curves) for
    each part, or, where `profiles` names a calibrated profile of that part (the device runs of
    the same `calibrate`), write the curves into it instead. No PyTorch needed."""
    from roofline.calibration import kernel_table as kt
    from roofline.calibration.report import check_outputs
    from roofline.hardware_specs import get_accelerator

    path = Path(table)
    curves = kt.fit_by_accelerator(kt.read_table(path))
    if output is None:
        return KernelTableReport(path, curves)
    out, profiles = Path(output), profiles or {}
    written: dict[str, Path] = {}
    check_outputs(out, force, [f"{part}-kernel-table.yaml" for part in curves if part not in profiles])
    for part, part_curves in curves.items():
        if part in profiles:
            kt.add_curves_to_profile(profiles[part], part_curves)
            written[f"{part} curves"] = profiles[part]
            continue
        target = out / f"{part}-kernel-table.yaml"
        kt.write_curve_file(target, kt.kernel_table_profile(get_accelerator(part), part_curves, path))
        written[f"{part} profile"] = target
    return KernelTableReport(path, curves, written)

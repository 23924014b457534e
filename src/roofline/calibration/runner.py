"""`roofline calibrate` end to end, minus the files: detect the device, measure the benchmark
list and the model-level runs, fit the efficiencies, build the calibrated profile, and predict
the same runs before and after. Ctrl-C stops the measurements and keeps what was measured.

Needs torch (`require_torch()` first); the CLI writes the outputs (report.py, reports/).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from roofline.calibration import require_torch
from roofline.calibration.bench import BenchRunner, Measurement, torch_dtype
from roofline.calibration.cases import KERNEL_FAMILIES, BenchCase, Family, grid_for, plan_cases
from roofline.calibration.collectives import run_collectives
from roofline.calibration.device import DeviceInfo, catalog_differences, detect, match_catalog
from roofline.calibration.fit import HOST_GEMV_CANDIDATES, FitResult, fit_efficiency, single_tiles
from roofline.calibration.host import HostFit, fit_host
from roofline.calibration.model_run import (
    CPU_MOE_KERNELS,
    ModelRunResult,
    ModelRunSpec,
    TorchDecoder,
    model_bytes,
    moe_spec_for,
    run_model,
    spec_for,
)
from roofline.calibration.profile import calibrated_accelerator, host_accelerator, measured_by, single_fractions
from roofline.calibration.runtime_profiles import (
    CALIBRATED_RUNTIMES,
    GRAPH,
    ModeComparison,
    mode_comparisons,
    runtime_profiles,
)
from roofline.calibration.timing import FULL_POLICY, QUICK_POLICY, Clock
from roofline.calibration.train_run import (
    TrainEstimate,
    TrainRunResult,
    TrainRunSpec,
    estimate_train_step,
    run_train_step,
    train_bytes,
    train_spec_for,
)
from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs import Cluster, load_catalog, resolve_cluster
from roofline.hardware_specs.schema import Accelerator
from roofline.simulator import estimate
from roofline.simulator.collectives import CollectiveModel, group_topology
from roofline.workloads import get_autoregressive
from roofline.workloads.moe import MoETransformer

Progress = Callable[[str, int, int], None]  # (what is being measured, index, total)


@dataclass(frozen=True)
class CalibrationOptions:
    device: str = "auto"
    full: bool = False
    hardware: str | None = None
    threads: int | None = None
    model: str = "llama-3.1-8b"
    memory_fraction: float | None = None  # of free device memory (GPU: 0.5) or available RAM (host: 0.25)
    model_runs: bool = True
    passes: int | None = None  # passes over the kernels (lowest median kept); default 1 (2 for a host --full)
    host_costs: bool = True  # dispatch / CUDA-graph loops, kernel counts, graph decode (calibration.host)
    moe_model: str | None = "qwen3-30b-a3b"  # the MoE model-level run (None: none)
    runtimes: tuple[str, ...] = CALIBRATED_RUNTIMES  # launch modes measured and recalibrated (--runtime)
    train_run: bool = True  # the training-step run (forward, backward, AdamW) of the dense model


@dataclass(frozen=True)
class ModelComparison:
    run: ModelRunResult
    ttft_before_s: float
    tpot_before_s: float
    ttft_after_s: float
    tpot_after_s: float


@dataclass(frozen=True)
class TrainComparison:
    """A training-step run and the estimate of it before and after fitting (step_s None: no estimate)."""

    run: TrainRunResult
    before: TrainEstimate
    after: TrainEstimate


@dataclass(frozen=True)
class CollectiveComparison:
    measurement: Measurement
    predicted_s: float
    detail: str


@dataclass(frozen=True)
class CalibrationResult:
    device: DeviceInfo
    date: str
    mode: str  # quick | full
    base: Accelerator  # the profile before fitting (the catalog entry, or the host's measured roofline)
    calibrated: Accelerator
    measurements: tuple[Measurement, ...]
    fit_cases: tuple[BenchCase, ...]  # the measured cases of the fitted families, in fit order
    fit: FitResult
    model_runs: tuple[ModelComparison, ...]
    collectives: tuple[CollectiveComparison, ...]
    catalog_differences: tuple[str, ...]
    interrupted: bool
    elapsed_s: float
    notes: tuple[str, ...] = field(default=())
    clock: str = ""  # how kernels were timed
    saved: SavedRun | None = None  # the raw measurements (measurements.csv, run.json)
    host: HostFit | None = None  # host costs fitted from saved.host_rows
    runtime_profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name -> calibrated profile
    modes: tuple[ModeComparison, ...] = ()  # model-level runs per launch mode, packaged vs calibrated profile
    refit_of: str = ""  # `calibrate --from`: the run directory refit
    train_runs: tuple[TrainComparison, ...] = ()  # training-step runs with their estimates

    @property
    def hardware_id(self) -> str:
        return self.base.id

    def family_mask(self, family: Family) -> list[bool]:
        return [c.family is family for c in self.fit_cases]


def _memory_cap_bytes(torch: Any, device: DeviceInfo, fraction: float | None) -> float:
    share = fraction if fraction is not None else (0.5 if device.kind == "cuda" else 0.25)
    if not 0.0 < share <= 0.9:
        raise RooflineError(f"--memory-fraction must be in (0, 0.9], got {share}")
    cap = share * device.free_memory_bytes
    if device.kind == "cuda":  # the allocator refuses beyond the cap: calibration never takes the whole GPU
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap / device.memory_bytes), 0)
    return cap


def _base_gpu(device: DeviceInfo, hardware: str | None) -> tuple[Accelerator, list[str]]:
    catalog = load_catalog()
    chosen = hardware or match_catalog(device.name, device.memory_bytes, catalog.accelerators)
    if chosen is None:
        raise RooflineError(
            f"no catalog entry matches '{device.name}'; name the closest with --hardware ID (roofline hardware list)"
        )
    catalog_entry = resolve_cluster(hardware=chosen).accelerator
    differences = catalog_differences(catalog_entry, device)
    # the catalog's numbers on this device's SM count: what the fit starts from and what the profile keeps
    sram = catalog_entry.sram.model_copy(update={"sm_count": device.compute_units})
    return catalog_entry.model_copy(update={"sram": sram}), differences


def _host_id(hardware: str | None) -> str:
    profile_id = hardware or "host"
    if profile_id in load_catalog().accelerators:
        raise RooflineError(f"--hardware on a CPU names the host profile; '{profile_id}' is a catalog accelerator")
    return profile_id


def _host_base(device: DeviceInfo, profile_id: str, measured: Sequence[Measurement], date: str) -> Accelerator:
    """Peaks of the host profile: the best measured matmul FLOP/s per format, the best stream bandwidth."""
    peaks: dict[DType, float] = {}
    for m in measured:
        if m.case.family is Family.MATMUL and m.timing:
            peaks[m.case.dtype] = max(peaks.get(m.case.dtype, 0.0), m.case.op.flops / m.time_s)
    if DType.FP32 not in peaks:
        raise RooflineError("no fp32 matmul was measured (interrupted too early?); nothing to build a profile from")
    streams = [(m.case.op.bytes / m.time_s, m.case.family.value) for m in measured
               if m.case.family in (Family.COPY, Family.READ) and m.timing]  # fmt: skip
    bandwidth, kernel = max(streams) if streams else (_gemv_bandwidth(measured), "matmul weight stream")
    kernel_text = f"{kernel} bandwidth over the buffer sizes (bytes read + written per second)"
    return host_accelerator(device, profile_id, peaks, bandwidth, kernel_text, date)


def _gemv_bandwidth(measured: Sequence[Measurement]) -> float:
    rates = [m.case.op.bytes / m.time_s for m in measured if m.case.family is Family.MATMUL and m.timing]
    return max(rates)


def cluster_of(accelerator: Accelerator, num_gpus: int = 1) -> Cluster:
    """The catalog with `accelerator` added, resolved for `num_gpus` of it (its default system, if any)."""
    catalog = load_catalog().copy()
    catalog.add(accelerator)
    return resolve_cluster(hardware=accelerator.id, num_gpus=num_gpus, catalog=catalog)


def _predict_model(run: ModelRunResult, before: Accelerator, after: Accelerator) -> ModelComparison:
    spec = run.spec
    old = estimate(spec.workload, cluster_of(before), spec.scenario)
    new = estimate(spec.workload, cluster_of(after), spec.scenario)
    return ModelComparison(run, old.ttft_batch_s, old.tpot_s, new.ttft_batch_s, new.tpot_s)


def _predict_collectives(measured: Sequence[Measurement], accelerator: Accelerator) -> list[CollectiveComparison]:
    out = []
    model = CollectiveModel()
    for m in measured:
        collective = m.case.op.collective
        if collective is None or accelerator.default_system is None:
            continue
        gpus = m.case.dim("gpus")
        topology = group_topology(cluster_of(accelerator, gpus), gpus)
        cost = model.cost(collective.kind, collective.message_bytes, topology)
        out.append(CollectiveComparison(m, cost.time_s, f"{cost.algorithm}/{cost.protocol}"))
    return out


def _faster(old: Measurement | None, new: Measurement) -> Measurement:
    """Of two passes over a kernel, the one with the lower median: a process sharing the machine
    can only slow a kernel down, so the faster pass is the less disturbed one."""
    if old is None or old.timing is None:
        return new
    return new if new.timing is not None and new.time_s < old.time_s else old


class _Measurer:
    """Runs the work list in order; Ctrl-C ends it early and keeps what was measured."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress, self.total, self.done, self.interrupted = progress, total, 0, False

    def step(self, what: str) -> None:
        if self.progress:
            self.progress(what, self.done, self.total)
        self.done += 1


def run_calibration(options: CalibrationOptions, progress: Progress | None = None) -> CalibrationResult:
    torch = require_torch()
    started = time.perf_counter()
    date = dt.date.today().isoformat()
    device = detect(torch, options.device, options.threads)
    notes: list[str] = []
    differences: list[str] = []
    if device.kind == "cuda":
        gpu, differences = _base_gpu(device, options.hardware)
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 cases measure fp32, not TF32
        profile_id = gpu.id
    else:
        profile_id = _host_id(options.hardware)
    cap = _memory_cap_bytes(torch, device, options.memory_fraction)
    policy = FULL_POLICY if options.full else QUICK_POLICY
    cases = plan_cases(grid_for(device.kind, options.full), device.matmul_dtypes, device.model_dtype,
                       device.device_count)  # fmt: skip
    kernels = [c for c in cases if c.family in KERNEL_FAMILIES]
    collectives = [c for c in cases if c.family not in KERNEL_FAMILIES]
    specs = _model_specs(options, device.kind)
    for skipped in [s for s in specs if model_bytes(s) > cap]:
        notes.append(f"model-level run skipped: {skipped.describe()} needs more than the memory cap")
    specs = [s for s in specs if model_bytes(s) <= cap]
    train_specs = _train_specs(options, device.kind, notes)
    for skipped_train in [s for s in train_specs if train_bytes(s) > cap]:
        notes.append(f"training-step run skipped: {skipped_train.describe()} needs more than the memory cap")
    train_specs = [s for s in train_specs if train_bytes(s) <= cap]
    passes = options.passes or (2 if device.kind == "cpu" and options.full else 1)
    work = _Measurer(progress, passes * len(kernels) + (1 if collectives else 0) + len(specs) + len(train_specs)
                     + (1 if options.host_costs else 0))  # fmt: skip
    runner = BenchRunner(torch, device, policy, cap)
    best: dict[BenchCase, Measurement] = {}
    runs: list[ModelRunResult] = []
    train_runs: list[TrainRunResult] = []
    measured: list[Measurement] = []
    host_rows: list[dict[str, Any]] = []
    try:
        for number in range(passes):
            for case in kernels:
                work.step(case.name if passes == 1 else f"{case.name} (pass {number + 1}/{passes})")
                best[case] = _faster(best.get(case), runner.run(case))
        measured = list(best.values())
        if collectives:
            work.step(f"all-reduce / all-to-all over {device.device_count} GPUs")
            measured += run_collectives(collectives, device.device_count, policy)
        target = "cuda" if device.kind == "cuda" else "cpu"
        repetitions = 5 if options.full else 3
        models: list[TorchDecoder] = []
        for spec in specs:
            work.step(f"model run: {spec.workload.id}")
            try:
                model = TorchDecoder(torch, spec, target, torch_dtype(torch, spec.dtype))
                if model.moe and not model.grouped_mm:  # the experts run as a loop of mm
                    spec = model.spec = replace(spec, moe_kernels=CPU_MOE_KERNELS)
                runs.append(run_model(torch, spec, target, model.dtype, repetitions, runner.clock, model))
            except (RuntimeError, TypeError, ValueError, NotImplementedError) as exc:
                if spec is specs[0]:
                    raise
                notes.append(f"model run {spec.workload.id} failed: {_first_line(exc)}")
                continue
            if options.host_costs:
                models.append(model)
        for train_spec in train_specs:
            work.step(f"training step: {train_spec.workload.id}")
            train_runs += _train_run(torch, train_spec, target, repetitions, runner.clock, notes)
        if options.host_costs:
            work.step("host costs: dispatch loops, CUDA graphs, kernels per operator")
            host_rows += measure_host(torch, target, models, repetitions, notes, graphs=GRAPH in options.runtimes)
    except KeyboardInterrupt:
        work.interrupted = True
        measured = list(best.values()) + [m for m in measured if m.case.op.collective is not None]
        notes.append(f"interrupted by Ctrl-C after {work.done - 1} of {work.total} items; the rest is not measured")
    notes += [f"{m.case.name}: {m.note}" for m in measured if m.timing is None]
    saved = SavedRun(device=device, date=date, mode="full" if options.full else "quick", clock=runner.clock.name,
                     measurements=tuple(measured), model_runs=tuple(runs), base_id=profile_id,
                     catalog_differences=tuple(differences), notes=tuple(notes),
                     interrupted=work.interrupted, host_rows=tuple(host_rows),
                     train_runs=tuple(train_runs))  # fmt: skip
    return analyse(saved, time.perf_counter() - started, runtimes=options.runtimes)


@dataclass(frozen=True)
class SavedRun:
    """What a calibration measured: everything the fit and the reports are computed from
    (saved as measurements.csv + run.json, so `calibrate --from DIR` refits without a device)."""

    device: DeviceInfo
    date: str
    mode: str  # quick | full
    clock: str
    measurements: tuple[Measurement, ...]
    model_runs: tuple[ModelRunResult, ...]
    base_id: str  # the catalog entry (GPU) or the host profile id (CPU)
    catalog_differences: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    interrupted: bool = False
    host_rows: tuple[dict[str, Any], ...] = ()  # host-cost measurements (calibration.host), raw
    train_runs: tuple[TrainRunResult, ...] = ()  # training-step runs (calibration.train_run)


def _train_specs(options: CalibrationOptions, device_kind: str, notes: list[str]) -> list[TrainRunSpec]:
    """The training-step run of the dense model-level run's model (none without model runs, and
    none with a note when --model is not a dense transformer)."""
    if not (options.model_runs and options.train_run):
        return []
    try:
        return [train_spec_for(get_autoregressive(options.model), device_kind, options.full)]
    except RooflineError as exc:
        notes.append(f"training-step run skipped: {exc}")
        return []


def _train_run(torch: Any, spec: TrainRunSpec, target: str, repetitions: int, clock: Clock,
               notes: list[str]) -> list[TrainRunResult]:  # fmt: skip
    """The timed training step, or none with a note when this build or device refuses it."""
    try:
        return [run_train_step(torch, spec, target, repetitions, clock)]
    except (RuntimeError, TypeError, ValueError, NotImplementedError) as exc:
        notes.append(f"training-step run {spec.workload.id} failed: {_first_line(exc)}")
        return []


def _model_specs(options: CalibrationOptions, device_kind: str) -> list[ModelRunSpec]:
    if not options.model_runs:
        return []
    specs = [spec_for(get_autoregressive(options.model), device_kind, options.full)]
    if options.moe_model:
        specs.append(moe_spec_for(get_autoregressive(options.moe_model), device_kind, options.full))
    return specs


def measure_host(torch: Any, target: str, models: Sequence[TorchDecoder], repetitions: int,
                 notes: list[str], graphs: bool = True) -> list[dict[str, Any]]:  # fmt: skip
    """The host-cost rows (calibration.host): dispatch loops; on CUDA graph replays; kernels per
    operator and host time per operator of each model's eager decode step; on CUDA the dense
    model's decode as a CUDA graph (the MoE step syncs on the expert counts, so it is not
    captured; `graphs` False: no CUDA-graph measurement). A measurement this build or device refuses
    is skipped with a note."""
    from roofline.calibration import host
    from roofline.calibration.saved import dims_text, model_dims

    plan = host.plan_for(target)
    steps: list[tuple[str, Callable[[], list[dict[str, Any]]]]] = [
        ("dispatch loops", partial(host.loop_rows, torch, target, plan))
    ]
    graphs = graphs and target == "cuda"
    if graphs:
        steps.append(("CUDA-graph replay of tiny kernels", partial(host.graph_rows, torch, plan)))
    for model in models:
        steps.append((f"kernel count of {model.spec.workload.id}", partial(host.count_rows, torch, model, target)))
        steps.append((f"host trace of {model.spec.workload.id}",
                      partial(host.trace_rows, torch, model.spec, target, model.dtype)))  # fmt: skip
    dense = [m for m in models if not m.moe]
    if graphs and dense:
        model, dims = dense[0], dims_text(model_dims(dense[0].spec))
        steps.append(("decode as a CUDA graph", partial(host.graph_decode_rows, torch, model, repetitions, dims)))
    rows: list[dict[str, Any]] = []
    for what, measure in steps:
        try:
            rows += measure()
        except (RuntimeError, TypeError, ValueError, NotImplementedError, AttributeError) as exc:
            notes.append(f"host costs: {what} skipped: {_first_line(exc)}")
    return rows


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:160]


def base_profile(saved: SavedRun) -> Accelerator:
    """The profile before fitting: the catalog entry on the device's SM count (GPU), or the
    host's measured peaks (CPU)."""
    if saved.device.kind == "cuda":
        base, _ = _base_gpu(saved.device, saved.base_id)
        return single_fractions(base)  # the fit tunes matmul_fraction: the family's GEMM curves stand aside
    return _host_base(saved.device, saved.base_id, saved.measurements, saved.date)


def analyse(saved: SavedRun, elapsed_s: float, refit_of: str = "",
            runtimes: Sequence[str] = CALIBRATED_RUNTIMES) -> CalibrationResult:  # fmt: skip
    """Fit the efficiencies to the kernels of `saved`, build the calibrated profile and predict the
    model-level runs before and after (the same for a fresh run and for `calibrate --from`); the
    runtime profiles of `runtimes` only."""
    device, measured = saved.device, list(saved.measurements)
    base = base_profile(saved)
    fit_measured = [m for m in measured if m.case.family in KERNEL_FAMILIES and m.timing]
    fit_cases = [m.case for m in fit_measured]
    tiles = single_tiles() if device.kind == "cpu" else None
    gemv = HOST_GEMV_CANDIDATES if device.kind == "cpu" else (0,)
    shared = device.model_dtype if device.kind == "cpu" else None
    fit = fit_efficiency(fit_cases, [m.time_s for m in fit_measured], base, tiles, gemv_candidates=gemv,
                         shared_from=shared, split_decode_attention=device.kind == "cpu")  # fmt: skip
    held = fit.summary("held_out", True, [c.family is Family.MATMUL for c in fit_cases])
    fit_note = (
        f"{sum(fit.fitted)} fitted kernels, {sum(fit.held_out)} held out (every third of each family); held-out "
        f"matmul |error| median {_pct(held.median_abs)}, mean {_pct(held.mean_abs)}, max {_pct(held.max_abs)}"
    )
    if refit_of:
        fit_note += f"; refit by `roofline calibrate --from` of {refit_of}"
    calibrated = calibrated_accelerator(base, fit.after, device, saved.date, fit_note,
                                        list(saved.catalog_differences))  # fmt: skip
    comparisons = tuple(_predict_model(run, base, calibrated) for run in saved.model_runs)
    host = fit_host(saved.host_rows)
    moe = [r.spec.moe_kernels for r in saved.model_runs if isinstance(r.spec.workload, MoETransformer)]
    profiles = runtime_profiles(host, device, saved.date, measured_by(device, saved.date), moe[0] if moe else None,
                                runtimes)  # fmt: skip
    modes = tuple(mode_comparisons(saved.model_runs, partial(cluster_of, calibrated), host, profiles, runtimes))
    checked = [m for m in measured if m.timing and m.case.op.collective]
    train = tuple(TrainComparison(run, estimate_train_step(run.spec, base), estimate_train_step(run.spec, calibrated))
                  for run in saved.train_runs)  # fmt: skip
    return CalibrationResult(
        device=device, date=saved.date, mode=saved.mode, base=base, calibrated=calibrated,
        measurements=tuple(measured), fit_cases=tuple(fit_cases), fit=fit, model_runs=comparisons,
        collectives=tuple(_predict_collectives(checked, calibrated)),
        catalog_differences=saved.catalog_differences, interrupted=saved.interrupted, clock=saved.clock,
        elapsed_s=elapsed_s, notes=saved.notes, saved=saved, refit_of=refit_of, host=host,
        runtime_profiles=profiles, modes=modes, train_runs=train,
    )  # fmt: skip


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}%"

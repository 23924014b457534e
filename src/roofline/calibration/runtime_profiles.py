"""Calibrated runtime profiles: the packaged `torch-eager` / `torch-cuda-graph` profiles with the host
costs this calibration measured (calibration.host), usable as `--runtime DIR/torch-eager-calibrated.yaml`;
and the model-level runs predicted with the packaged and the calibrated profile, per launch mode.

- torch-eager-calibrated: `dispatch_per_call` = one x.add_(1) dispatch (the unit of the weighted
  calls); `calls_per_op` = each operator's traced host time in that unit, with the kernels counted
  for it; `overlaps_device` false on a CPU (the host is the device: host time adds).
- torch-cuda-graph-calibrated (CUDA only): `graph_launch` = host time of the decode graph's replay();
  `step_overhead` = the loop around it (position and token updates).

Both: `reference_cpu: null` (the costs hold for the host they were measured on) and a `source`
naming this run. Torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from roofline.calibration.host import HostFit
from roofline.errors import RooflineError

EAGER, GRAPH = "torch-eager", "torch-cuda-graph"
CALIBRATED_RUNTIMES = (EAGER, GRAPH)  # the launch modes a plain PyTorch run can measure


def calibration_runtimes(names: Sequence[str]) -> tuple[str, ...]:
    """`calibrate --runtime`: the runtime profiles to measure and recalibrate (ids or aliases; empty:
    both PyTorch launch modes). Serving engines are not run by calibrate: RooflineError."""
    from roofline.simulator.serving.engine_config import runtime_id

    if not names:
        return CALIBRATED_RUNTIMES
    out: list[str] = []
    for name in names:
        known = runtime_id(name)
        if known not in CALIBRATED_RUNTIMES:
            raise RooflineError(f"calibrate runs PyTorch and measures the runtimes {', '.join(CALIBRATED_RUNTIMES)} "
                                f"(aliases gpt-fast, torch-compile), not '{name}'; validate an engine's published "
                                "runs with `roofline validate --data FILE`")  # fmt: skip
        if known not in out:
            out.append(known)
    return tuple(out)


def _packaged(runtime_id: str) -> dict[str, Any] | None:
    """The packaged profile's YAML as data (None when this version has none)."""
    from roofline.simulator.serving.engine_config import DATA_DIR

    path = DATA_DIR / f"{runtime_id}.yaml"
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.4g} us"


def _header(data: dict[str, Any], runtime_id: str, date: str, by: str) -> dict[str, Any]:
    data = dict(data)
    data["id"] = f"{runtime_id}-calibrated"
    data["name"] = f"{data.get('name', runtime_id)} (calibrated {date})"
    data.pop("aliases", None)
    data.pop("fitted_on", None)  # measured here, not fitted to end-to-end rows
    data["source"] = f"host costs measured by `roofline calibrate` ({by}); the rest as the packaged {runtime_id}"
    return data


def eager_profile(fit: HostFit, device_kind: str, date: str, by: str, moe_kernels: str | None = None,
                  torch_version: str = "") -> dict[str, Any] | None:  # fmt: skip
    """torch-eager with this host's measured dispatch cost and calls per operator."""
    packaged = _packaged(EAGER)
    if packaged is None or not math.isfinite(fit.kernel_dispatch_s):
        return None
    data = _header(packaged, EAGER, date, by)
    host = dict(data.get("host") or {})
    calls = dict(host.get("calls_per_op") or {})
    measured: set[str] = set()
    for model in fit.host_op_s:  # in run order: the dense model first; the MoE run adds its own operators
        for op, weighted in fit.calls_per_op(model).items():
            if op in measured:
                continue
            kernels = fit.kernels.get(model, {}).get(op, (calls.get(op) or {}).get("kernels", 1))
            calls[op] = {"calls": round(weighted, 2), "kernels": kernels}
            measured.add(op)
    host |= {"dispatch_per_call": _us(fit.kernel_dispatch_s), "launch_per_kernel": "0 us",
             "overlaps_device": device_kind == "cuda", "reference_cpu": None, "calls_per_op": calls,
             "source": f"measured by `roofline calibrate` ({by}): dispatch_per_call = slope of an x.add_(1) "
                       "loop (calibration/host.py eager_loop); calls_per_op = host time of each operator of a "
                       "traced eager decode step (host_op) over that unit, kernels by a TorchDispatchMode"}  # fmt: skip
    data["host"] = host
    if moe_kernels:
        data["moe_kernels"] = moe_kernels  # the MoE kernels the calibration's decoder ran
    if torch_version:
        data["version"] = f"torch {torch_version}"
    return data


def graph_profile(fit: HostFit, date: str, by: str, torch_version: str = "") -> dict[str, Any] | None:
    """torch-cuda-graph with this host's measured graph launch and loop time (CUDA runs only)."""
    packaged = _packaged(GRAPH)
    launch = fit.decode_graph_launch_s if math.isfinite(fit.decode_graph_launch_s) else fit.graph_launch_s
    if packaged is None or not math.isfinite(launch):
        return None
    data = _header(packaged, GRAPH, date, by)
    host = dict(data.get("host") or {})
    host |= {"graph_launch": _us(launch), "reference_cpu": None,
             "source": f"measured by `roofline calibrate` ({by}): graph_launch = host time of the decode graph's "
                       f"replay() (decode_graph_launch); per-kernel gap inside a replay "
                       f"{_us(fit.graph_kernel_gap_s)} (graph_replay slope)"}  # fmt: skip
    if "graph_kernel_gap" in host:
        host["graph_kernel_gap"] = _us(fit.graph_kernel_gap_s)
    data["host"] = host
    if math.isfinite(fit.decode_graph_loop_s):
        data["step_overhead"] = _us(fit.decode_graph_loop_s)
    if torch_version:
        data["version"] = f"torch {torch_version} (captured with torch.cuda.graph, not torch.compile)"
    return data


def runtime_profiles(fit: HostFit | None, device: Any, date: str, by: str, moe_kernels: str | None = None,
                     runtimes: Sequence[str] = CALIBRATED_RUNTIMES) -> dict[str, dict[str, Any]]:  # fmt: skip
    """File name -> profile data of the calibrated runtime profiles this run supports (`device`:
    the DeviceInfo; `moe_kernels`: the variant its MoE run ran), of `runtimes` only."""
    if fit is None:
        return {}
    out = {}
    eager = eager_profile(fit, device.kind, date, by, moe_kernels, device.torch_version) if EAGER in runtimes else None
    if eager is not None:
        out[f"{EAGER}-calibrated.yaml"] = eager
    graph = graph_profile(fit, date, by, device.torch_version) if device.kind == "cuda" and GRAPH in runtimes else None
    if graph is not None:
        out[f"{GRAPH}-calibrated.yaml"] = graph
    return out


def engine(data: dict[str, Any]) -> Any:
    """A profile's data as the EngineConfig the estimator takes."""
    from roofline.simulator.serving.engine_config import EngineConfig
    from roofline.yaml_io import validate_into

    return validate_into(EngineConfig, data, f"calibrated runtime '{data.get('id')}'")


def write_profiles(profiles: dict[str, dict[str, Any]], out_dir: Path, header: str) -> dict[str, Path]:
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    paths = {}
    for name, data in profiles.items():
        path = out_dir / name
        try:
            path.write_text(comment + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120),
                            encoding="utf-8")  # fmt: skip
        except OSError as exc:
            raise RooflineError(f"cannot write '{path}': {exc.strerror}") from None
        paths[name.removesuffix(".yaml")] = path
    return paths


@dataclass(frozen=True)
class ModeComparison:
    """A model-level phase measured in one launch mode, predicted with the packaged profile
    (before) and the calibrated one (after)."""

    model: str
    mode: str  # eager | cuda_graph
    phase: str  # prefill (TTFT) | decode step (TPOT)
    measured_s: float
    device_only_s: float  # no runtime: the kernels' device time
    before_s: float
    after_s: float

    def error(self, predicted_s: float) -> float:
        return predicted_s / self.measured_s - 1.0


def with_runtime(scenario: Any, runtime: Any) -> Any:
    return replace(scenario, runtime=runtime)


def _predict(run: Any, cluster: Any, runtime: Any) -> tuple[float, float]:
    """(TTFT of the batch, TPOT) of a model-level run with `runtime` (None: device time only)."""
    from roofline.simulator import estimate

    result = estimate(run.spec.workload, cluster, with_runtime(run.spec.scenario, runtime))
    return result.ttft_batch_s, result.tpot_s


def mode_comparisons(
    runs: Any,
    cluster_of: Any,
    host: HostFit | None,
    profiles: dict[str, dict[str, Any]],
    runtimes: Sequence[str] = CALIBRATED_RUNTIMES,
) -> list[ModeComparison]:
    """Each model-level run in each launch mode it was measured in: eager (prefill and decode, every
    run) and CUDA graph (the decode step replayed as a graph), predicted with the packaged profile
    and with the calibrated one (nan when this run calibrated none)."""
    from roofline.calibration.saved import dims_text, model_dims
    from roofline.simulator.serving.engine_config import load_engine

    calibrated = {name.removesuffix("-calibrated.yaml"): engine(data) for name, data in profiles.items()}
    out = []
    for run in runs:
        cluster = cluster_of()
        device_ttft, device_tpot = _predict(run, cluster, None)
        measured = {EAGER: [("prefill (TTFT)", run.measured_ttft_s, device_ttft),
                            ("decode step (TPOT)", run.measured_tpot_s, device_tpot)]}  # fmt: skip
        graph_s = (host.decode_graph_s if host else {}).get(dims_text(model_dims(run.spec)))
        if graph_s is not None:
            measured[GRAPH] = [("decode step (TPOT)", graph_s, device_tpot)]
        for runtime_id, phases in measured.items():
            if runtime_id not in runtimes:
                continue
            before = _predict(run, cluster, load_engine(runtime_id))
            after = _predict(run, cluster, calibrated[runtime_id]) if runtime_id in calibrated else (math.nan,) * 2
            for phase, measured_s, device_s in phases:
                pick = 0 if phase.startswith("prefill") else 1
                mode = "eager" if runtime_id == EAGER else "cuda_graph"
                out.append(ModeComparison(run.spec.workload.id, mode, phase, measured_s, device_s, before[pick],
                                          after[pick]))  # fmt: skip
    return out

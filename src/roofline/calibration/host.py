"""Host costs: what an eager PyTorch step and a CUDA-graph replay cost beyond the kernels' device time.

Measured by `calibrate` (CPU and CUDA), saved raw in measurements.csv (family `host`), fitted here
torch-free so `calibrate --from DIR` refits them:

- `eager_loop` ops=N: N tiny kernels (`x.add_(1)` on a 1-element tensor) dispatched from Python back
  to back, timed as a whole with a device sync at the end. The slope over N is the host time to
  dispatch one kernel-launching op (eager), the kernel itself being far shorter.
- `view_loop` ops=N: N view ops (`y[:, :half]`, `y.transpose(0, 1)`): dispatched like any op but no
  kernel. An eager decode step dispatches about as many views as kernels (`views` counts), so the
  eager profile's `dispatch_per_kernel` = kernel dispatch + view dispatch x views per kernel.
- `graph_replay` kernels=N (CUDA): the same N tiny kernels captured in a `torch.cuda.CUDAGraph`,
  replayed and synchronised: the slope over N is the device time per kernel inside a graph
  (`graph_kernel_gap`); `graph_launch` kernels=N: the host time of the `replay()` call itself.
- `kernels` op=NAME: kernels (non-view aten ops) one eager decode step dispatches per IR operator
  (per layer for the layer operators), counted with a TorchDispatchMode over one decode step of
  the model-level run -- the evidence for a runtime profile's `kernels_per_op`; `views` op=NAME the
  view ops beside them. On CUDA `kernels_profiled` op=step: the CUDA kernels torch.profiler saw.
- `host_op` op=NAME: host seconds of one instance of each IR operator in an eager decode step, from
  the decoder's operator marks, on a tiny copy of the model (batch 1, smallest widths: dispatch is
  all it measures); / the x.add_(1) time = the operator's weighted framework calls (`calls_per_op`).
- `decode_graph` (CUDA): the model-level decode step captured as one CUDA graph (static token and
  cache-position tensors; attention over the whole cache under a mask) and replayed per step;
  `decode_graph_launch` the host time of its replay() call, `decode_graph_loop` the loop around it.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

HOST = "host"  # the family of these rows in measurements.csv
LAYER_OPS = ("attn_norm", "qkv_proj", "qk_norm", "rope", "attention", "o_proj", "mlp_norm", "gate_up_proj",
             "activation", "down_proj", "router", "router_topk", "moe_sort", "moe_permute", "expert_up",
             "expert_activation", "expert_down", "expert_combine")  # fmt: skip


@dataclass(frozen=True)
class HostPlan:
    loop_ops: tuple[int, ...]  # N of the eager loops
    graph_kernels: tuple[int, ...]  # N of the CUDA-graph replays
    repetitions: int


CPU_PLAN = HostPlan(loop_ops=(200, 1000), graph_kernels=(), repetitions=7)
GPU_PLAN = HostPlan(loop_ops=(500, 2000), graph_kernels=(100, 1000), repetitions=9)


def plan_for(device_kind: str) -> HostPlan:
    return GPU_PLAN if device_kind == "cuda" else CPU_PLAN


def row(variant: str, dims: str, measured_s: float, samples: Sequence[float] = (), calls: int = 1,
        note: str = "") -> dict[str, Any]:  # fmt: skip
    return {"family": HOST, "variant": variant, "dtype": "", "dims": dims, "role": "", "measured_s": measured_s,
            "samples_s": ";".join(repr(float(s)) for s in samples), "calls": calls, "note": note}  # fmt: skip


# ---- measuring (torch passed in) ----------------------------------------------------------------------


def _timed(torch: Any, cuda: bool, fn: Callable[[], Any], repetitions: int) -> list[float]:
    """CUDA: wall time of `fn` with a device sync before and after (the host's view, dispatch
    included). CPU: the calling thread's CPU time (the tiny ops run in it; on a shared host the
    slices the OS gives other processes stay out)."""
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    clock = time.perf_counter if cuda else time.thread_time
    fn()  # warm-up
    samples = []
    for _ in range(repetitions):
        sync()
        start = clock()
        fn()
        sync()
        samples.append(clock() - start)
    return samples


def loop_rows(torch: Any, target: str, plan: HostPlan) -> list[dict[str, Any]]:
    cuda = target == "cuda"
    x = torch.zeros(1, device=target)
    y = torch.zeros(4, 8, device=target)

    def kernels(n: int) -> None:
        for _ in range(n):
            x.add_(1)

    def views(n: int) -> None:
        for _ in range(n // 2):
            y[:, :4]
            y.transpose(0, 1)

    rows = []
    with torch.inference_mode():
        for n in plan.loop_ops:
            samples = _timed(torch, cuda, partial(kernels, n), plan.repetitions)
            rows.append(row("eager_loop", f"ops={n}", statistics.median(samples), samples, n, "x.add_(1) back to back"))
            samples = _timed(torch, cuda, partial(views, n), plan.repetitions)
            rows.append(row("view_loop", f"ops={n}", statistics.median(samples), samples, n, "slice + transpose views"))
    return rows


def graph_rows(torch: Any, plan: HostPlan) -> list[dict[str, Any]]:
    """CUDA only: N tiny kernels in one captured graph, replayed."""
    rows = []
    for n in plan.graph_kernels:
        x = torch.zeros(1, device="cuda")
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                x.add_(1)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(n):
                x.add_(1)
        graph.replay()
        torch.cuda.synchronize()
        walls, launches = [], []
        for _ in range(plan.repetitions):
            torch.cuda.synchronize()
            start = time.perf_counter()
            graph.replay()
            launches.append(time.perf_counter() - start)
            torch.cuda.synchronize()
            walls.append(time.perf_counter() - start)
        rows.append(row("graph_replay", f"kernels={n}", statistics.median(walls), walls, n, "replay + sync"))
        rows.append(row("graph_launch", f"kernels={n}", statistics.median(launches), launches, n, "replay() call"))
        del graph
    return rows


def count_rows(torch: Any, model: Any, target: str) -> list[dict[str, Any]]:
    """Kernels and views one eager decode step of `model` (a TorchDecoder) dispatches per IR
    operator (TorchDispatchMode)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    spec = model.spec
    kernels: Counter[str] = Counter()
    views: Counter[str] = Counter()

    class Counting(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            (views if getattr(func, "is_view", False) else kernels)[model.current] += 1
            return func(*args, **(kwargs or {}))

    prompt = torch.randint(0, spec.workload.vocab_size, (spec.batch, spec.isl), device=target)
    with torch.inference_mode():
        token = model.step(prompt, 0)
        with Counting():
            model.step(token[:, None], spec.isl)
    layers = spec.workload.num_hidden_layers
    rows = []
    for name in sorted(set(kernels) | set(views)):
        per = layers if name in LAYER_OPS else 1
        scope = "per layer" if per > 1 else "per step"
        dims = f"model={spec.workload.id} op={name}"
        rows.append(row("kernels", dims, math.nan, (), round(kernels[name] / per), f"{scope}; aten ops launching work"))
        rows.append(row("views", dims, math.nan, (), round(views[name] / per), f"{scope}; aten view ops"))
    if target == "cuda":
        profiled = _profiled_kernels(torch, model, token, spec.isl)
        rows.append(row("kernels_profiled", f"model={spec.workload.id} op=step", math.nan, (), profiled,
                        "CUDA kernels of one decode step"))  # fmt: skip
    return rows


class _Tracer:
    """Stands in for a TorchDecoder's `current`: records (operator, host clock) at each change."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def mark(self, name: str) -> None:
        self.marks.append((name, time.perf_counter()))

    def host_s(self) -> dict[str, list[float]]:
        """Host seconds of each operator instance (from its mark to the next)."""
        out: dict[str, list[float]] = {}
        for (name, start), (_, end) in zip(self.marks, self.marks[1:], strict=False):
            out.setdefault(name, []).append(end - start)
        return out


def tiny_spec(spec: Any) -> Any:
    """The model-level run's model at the smallest widths (same operators, same framework calls):
    its kernels are so short that the host's dispatch is all a traced step measures."""
    from roofline.calibration.model_run import reduced_workload
    from roofline.workloads import get_autoregressive

    base = get_autoregressive(spec.base_id)
    divisor = max(1, getattr(base, "hidden_size", 4096) // 128)
    experts = getattr(spec.workload, "num_experts", None)  # as many experts: a loop over them costs per expert
    workload = reduced_workload(base, 2, divisor, 256, experts)
    return replace(spec, workload=workload, batch=1, isl=16, osl=4)


def trace_rows(torch: Any, spec: Any, target: str, dtype: Any, steps: int = 20) -> list[dict[str, Any]]:
    """Host time per operator of an eager decode step, from the decoder's own operator marks, on
    the tiny copy of `spec` (no sync inside a step: on a GPU the kernels run behind the host). The
    operator's weighted framework calls = this time / the time of one x.add_(1)."""
    from roofline.calibration.model_run import TorchDecoder

    small = tiny_spec(spec)
    model = TorchDecoder(torch, small, target, dtype)
    tracer = _Tracer()
    prompt = torch.randint(0, small.workload.vocab_size, (small.batch, small.isl), device=target)
    sync = torch.cuda.synchronize if target == "cuda" else (lambda: None)
    per_op: dict[str, list[float]] = {}
    with torch.inference_mode():
        token = model.step(prompt, 0)
        for j in range(steps):
            position = small.isl + j % (small.osl - 1)
            sync()
            tracer.marks.clear()
            model.trace = tracer.mark
            token = model.step(token[:, None], position)
            tracer.mark("end")
            model.trace = None
            for name, values in tracer.host_s().items():
                per_op.setdefault(name, []).append(statistics.fmean(values))
    sync()
    dims = f"model={spec.workload.id}"
    return [
        row(
            "host_op",
            f"{dims} op={name}",
            statistics.median(values),
            values,
            len(values),
            f"host seconds per instance, traced on {small.workload.id} batch 1",
        )  # fmt: skip
        for name, values in sorted(per_op.items())
    ]


def _profiled_kernels(torch: Any, model: Any, token: Any, position: int) -> int:
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CUDA]) as prof:
        model.step(token[:, None], position + 1)
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA)


def graph_decode_rows(torch: Any, model: Any, repetitions: int, model_dims: str) -> list[dict[str, Any]]:
    """CUDA only: one decode step of `model` (a TorchDecoder) captured as a CUDA graph, replayed
    for osl - 1 steps (position and token tensors updated in place between replays)."""
    spec = model.spec
    prompt = torch.randint(0, spec.workload.vocab_size, (spec.batch, spec.isl), device="cuda")
    with torch.inference_mode():
        tokens = model.step(prompt, 0)[:, None].clone()
        position = torch.tensor([spec.isl], device="cuda")
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                model.static_step(tokens, position)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = model.static_step(tokens, position)
        runs, launches, loops = [], [], []
        for _ in range(repetitions):
            model.step(prompt, 0)  # the prompt's KV back in the cache
            steps = []
            for j in range(1, spec.osl):
                torch.cuda.synchronize()
                start = time.perf_counter()
                position.fill_(spec.isl + j - 1)
                before = time.perf_counter()
                graph.replay()
                after = time.perf_counter()
                tokens.copy_(out[:, None])
                issued = time.perf_counter()
                torch.cuda.synchronize()
                steps.append(time.perf_counter() - start)
                launches.append(after - before)
                loops.append((before - start) + (issued - after))
            runs.append(steps)
    per_step = [statistics.median(column) for column in zip(*runs, strict=True)]
    return [row("decode_graph", model_dims, statistics.fmean(per_step), per_step, 1,
                "decode step replayed as one CUDA graph (attention over the whole cache under a mask: SDPA "
                "picks a kernel that takes one)"),
            row("decode_graph_launch", model_dims, statistics.median(launches), launches, 1,
                "host time of the decode graph's replay() call"),
            row("decode_graph_loop", model_dims, statistics.median(loops), loops, 1,
                "host time of the loop around the replay: position fill_ + token copy_")]  # fmt: skip


# ---- the fit (torch-free) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostFit:
    kernel_dispatch_s: float  # per kernel-launching op, eager (slope of eager_loop)
    view_dispatch_s: float  # per view op (slope of view_loop)
    views_per_kernel: float  # of the eager decode step (counts)
    graph_launch_s: float = math.nan  # host time of one replay() call
    graph_kernel_gap_s: float = math.nan  # device time per kernel inside a replay
    kernels: dict[str, dict[str, int]] = field(default_factory=dict)  # model id -> op -> kernels
    views: dict[str, dict[str, int]] = field(default_factory=dict)
    profiled: dict[str, int] = field(default_factory=dict)  # model id -> CUDA kernels of a step
    decode_graph_s: dict[str, float] = field(default_factory=dict)  # model dims -> measured graph decode step
    decode_graph_launch_s: float = math.nan  # host time of the decode graph's replay()
    decode_graph_loop_s: float = math.nan  # host time of the loop around it (position, token)
    host_op_s: dict[str, dict[str, float]] = field(default_factory=dict)  # model id -> op -> host s per instance

    def calls_per_op(self, model: str) -> dict[str, float]:
        """Weighted framework calls per operator instance: its traced host time in units of one
        x.add_(1) dispatch."""
        unit = self.kernel_dispatch_s
        if not (math.isfinite(unit) and unit > 0):
            return {}
        return {op: seconds / unit for op, seconds in self.host_op_s.get(model, {}).items() if op != "end"}

    @property
    def dispatch_per_kernel_s(self) -> float:
        """Eager host time per launched kernel, the views dispatched beside each kernel included."""
        views = self.views_per_kernel if math.isfinite(self.views_per_kernel) else 0.0
        return self.kernel_dispatch_s + views * (self.view_dispatch_s if math.isfinite(self.view_dispatch_s) else 0)


def _dims(text: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in text.split() if "=" in word)


def _slope(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares line through (x, y): (slope, intercept); nan without two distinct x."""
    xs = [p[0] for p in points]
    if len(set(xs)) < 2:
        return math.nan, math.nan
    mx, my = statistics.fmean(xs), statistics.fmean(p[1] for p in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)
    return slope, my - slope * mx


def fit_host(rows: Sequence[Mapping[str, Any]]) -> HostFit | None:
    """The host constants from the saved `host` rows (None when the run measured none)."""
    by: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by.setdefault(str(r["variant"]), []).append(r)
    if "eager_loop" not in by:
        return None

    def line(variant: str, key: str) -> tuple[float, float]:
        return _slope([(float(_dims(str(r["dims"]))[key]), float(r["measured_s"])) for r in by.get(variant, [])])

    kernels: dict[str, dict[str, int]] = {}
    views: dict[str, dict[str, int]] = {}
    for variant, target in (("kernels", kernels), ("views", views)):
        for r in by.get(variant, []):
            d = _dims(str(r["dims"]))
            target.setdefault(d["model"], {})[d["op"]] = int(float(r["calls"]))
    total_kernels = sum(sum(ops.values()) for ops in kernels.values())
    total_views = sum(sum(ops.values()) for ops in views.values())
    launches = [float(r["measured_s"]) for r in by.get("graph_launch", [])]
    return HostFit(
        kernel_dispatch_s=line("eager_loop", "ops")[0], view_dispatch_s=line("view_loop", "ops")[0],
        views_per_kernel=total_views / total_kernels if total_kernels else math.nan,
        graph_launch_s=min(launches) if launches else math.nan, graph_kernel_gap_s=line("graph_replay", "kernels")[0],
        kernels=kernels, views=views,
        profiled={_dims(str(r["dims"]))["model"]: int(float(r["calls"])) for r in by.get("kernels_profiled", [])},
        decode_graph_s={str(r["dims"]): float(r["measured_s"]) for r in by.get("decode_graph", [])},
        decode_graph_launch_s=_first(by.get("decode_graph_launch", [])),
        decode_graph_loop_s=_first(by.get("decode_graph_loop", [])), host_op_s=_host_ops(by.get("host_op", [])),
    )  # fmt: skip


def _first(rows: Sequence[Mapping[str, Any]]) -> float:
    return float(rows[0]["measured_s"]) if rows else math.nan


def _host_ops(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        d = _dims(str(r["dims"]))
        out.setdefault(d["model"], {})[d["op"]] = float(r["measured_s"])
    return out

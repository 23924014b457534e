"""Diffusion transformer (image / video) estimator: no prefill or decode, `steps` denoising steps.

    step_s    = time of the DiT forward(s) of one step on one GPU (per-op roofline cost)
                CFG batched: one forward at 2B; CFG sequential: two forwards at B;
                CFG parallel: one forward at B on each of two GPU groups + an all-gather
    latency_s = text encoders (once) + steps x step_s + VAE decode (once)

Sequence parallelism splits the tokens over `sp` GPUs (USP): Ulysses all-to-alls around the
attention over sp / ring GPUs, ring attention over `ring` GPUs whose K/V hops overlap the
attention: a hop costs only what it takes beyond the block's attention, (ring - 1) x max(0,
hop - attention / ring). Collectives are costed by the collective model over the group's links
(Ulysses groups are consecutive GPUs, the ring strides across them). Weights are replicated on
every GPU (no TP), text encoders and VAE stay resident. Attention is a flash kernel: no N^2 memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from roofline.errors import RooflineError
from roofline.hardware_specs.cluster import Cluster
from roofline.ir import Op, OpKind, Placement, Precision
from roofline.simulator import capacity as capacity_rule
from roofline.simulator.collectives import group_topology
from roofline.simulator.cost import OpCost, RooflineCostModel
from roofline.simulator.diffusion_runtime import DiffusionRuntime, apply_runtime, kernel_label
from roofline.simulator.plan import ParallelPlan
from roofline.workloads.diffusion_dit import DiffusionTransformer, Request


@dataclass(frozen=True)
class DitScenario:
    request: Request
    steps: int
    cfg: bool
    sp: int = 1
    cfg_parallel: bool = False
    precision: Precision = field(default_factory=Precision)
    ring: int = 1  # ring-attention degree inside the sp GPUs (Ulysses: sp / ring)
    runtime: DiffusionRuntime = field(default_factory=DiffusionRuntime)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise RooflineError(f"--steps must be at least 1, got {self.steps}")
        if self.cfg_parallel and not self.cfg:
            raise RooflineError("--cfg-parallel needs classifier-free guidance (drop --no-cfg)")

    @property
    def gpus_per_request(self) -> int:
        return self.sp * (2 if self.cfg_parallel else 1)


def _group_size(group: str, s: DitScenario) -> int:
    return {"ulysses": s.sp // s.ring, "ring": s.sp, "cfg": 2}[group]


def _ring_cost(model: RooflineCostModel, cluster: Cluster, op: Op, s: DitScenario, attention: OpCost) -> OpCost:
    """The K/V hops of ring attention beyond what the attention they feed hides: each of the ring - 1
    hops overlaps one of the `ring` blocks of the attention just costed."""
    assert op.collective is not None
    hop = model.collectives.cost(op.collective.kind, op.collective.message_bytes, group_topology(cluster, s.sp))
    hops, block_s = s.ring - 1, attention.kernel_s / s.ring
    exposed_s = hops * max(0.0, hop.time_s - block_s)
    detail = (f"{hops} hops x {hop.time_s * 1e6:.1f} us over {' + '.join(hop.levels) or '-'}, "
              f"{hops * min(hop.time_s, block_s) * 1e6:.1f} us hidden under attention")  # fmt: skip
    return OpCost(op, 0.0, 0.0, exposed_s, 0.0, detail)


def _costs(model: RooflineCostModel, cluster: Cluster, ops: list[Op], s: DitScenario) -> list[OpCost]:
    """Ops of the diffusion groups (ulysses, ring, cfg) through the collective model; the rest as usual."""
    costs: list[OpCost] = []
    for op in ops:
        c = op.collective
        if c is None or c.group not in ("ulysses", "ring", "cfg"):
            costs.append(model.cost(op))
        elif c.group == "ring":
            costs.append(_ring_cost(model, cluster, op, s, costs[-1]))  # right after its attention
        else:
            cost = model.collectives.cost(c.kind, c.message_bytes, group_topology(cluster, _group_size(c.group, s)))
            detail = f"{cost.algorithm}/{cost.protocol} over {' + '.join(cost.levels) or '-'}"
            costs.append(OpCost(op, 0.0, 0.0, cost.time_s, 0.0, detail))
    return costs


def op_row(c: OpCost, phase: str, steps: int) -> dict[str, Any]:
    """One operator of a diffusion step as a row: the keys of the LLM estimate's operator rows, and
    how many steps of this kind the request runs (the request's time is the sum of steps x time_s)."""
    op, n = c.op, c.op.count
    flops, moved = op.flops * n, op.bytes * n
    return {
        "phase": phase, "steps": steps, "name": op.name, "op_class": op.op_class.value, "kind": op.kind.value,
        "count": n,
        "flops": flops, "bytes": moved, "arithmetic_intensity_flops_per_byte": flops / moved if moved else 0.0,
        "compute_s": c.compute_s * n, "memory_s": c.memory_s * n, "communication_s": c.comm_s * n,
        "overhead_s": c.overhead_s * n, "time_s": c.total_s, "bound": c.bound, "detail": c.detail,
    }  # fmt: skip


@dataclass(frozen=True)
class DitResult:
    model: str
    hardware: str
    system: str
    num_gpus: int
    scenario: DitScenario
    image_tokens: int
    text_tokens: int
    forwards_per_step: int
    step_s: float
    step_no_overlap_s: float
    step_flops: float
    attention_s: float
    encoders_s: float
    vae_s: float
    weights_bytes: float
    encoder_weights_bytes: float
    activation_bytes: float
    capacity_bytes: float
    attention_bytes: float  # flash working set: q, k, v, out (+ a ring's K/V block in flight)
    reserve_bytes: float  # the accelerator's runtime reserve (CUDA context, workspaces, allocator slack)
    attention_kernel: str  # the kernel family as charged (kernel_label)
    attention_fraction: float
    scores_if_materialized_bytes: float  # one layer's N^2 score matrix, never stored by flash attention
    step_ops: tuple[dict[str, Any], ...]
    once_ops: tuple[dict[str, Any], ...]

    @property
    def denoise_s(self) -> float:
        return self.scenario.steps * self.step_s

    @property
    def latency_s(self) -> float:
        return self.encoders_s + self.denoise_s + self.vae_s

    @property
    def attention_share(self) -> float:
        return self.attention_s / self.step_s

    @property
    def outputs_per_hour_per_gpu(self) -> float:
        return self.scenario.request.batch * 3600.0 / self.latency_s / self.scenario.gpus_per_request

    @property
    def memory_bytes(self) -> float:
        """capacity.used_bytes: the DiT's and its encoders' / VAE's weights, no KV cache, the activations
        with the attention working set, the reserve."""
        return capacity_rule.used_bytes(
            self.weights_bytes + self.encoder_weights_bytes,
            0.0,
            self.activation_bytes + self.attention_bytes,
            self.reserve_bytes,
        )

    @property
    def fits(self) -> bool:
        return bool(capacity_rule.fits(self.memory_bytes, self.capacity_bytes))

    def to_dict(self, with_ops: bool = True) -> dict[str, Any]:
        s, r = self.scenario, self.scenario.request
        data: dict[str, Any] = {
            "model": self.model, "kind": "dit", "hardware": self.hardware, "system": self.system,
            "num_gpus": self.num_gpus, "gpus_per_request": s.gpus_per_request, "sp": s.sp, "ring": s.ring,
            "ulysses": s.sp // s.ring,
            "cfg": s.cfg, "cfg_parallel": s.cfg_parallel, "forwards_per_step": self.forwards_per_step,
            "attention_kernel": self.attention_kernel, "attention_fraction": self.attention_fraction,
            "compiled": s.runtime.compiled,
            "width": r.width, "height": r.height, "frames": r.frames, "batch": r.batch, "steps": s.steps,
            "image_tokens": self.image_tokens, "text_tokens": self.text_tokens,
            "step_s": self.step_s, "step_no_overlap_s": self.step_no_overlap_s, "step_flops": self.step_flops,
            "attention_share": self.attention_share, "text_encoders_s": self.encoders_s,
            "denoise_s": self.denoise_s, "vae_decode_s": self.vae_s, "latency_s": self.latency_s,
            "outputs_per_hour_per_gpu": self.outputs_per_hour_per_gpu,
            "memory": {
                "weights_bytes": self.weights_bytes, "encoder_vae_weights_bytes": self.encoder_weights_bytes,
                "activation_bytes": self.activation_bytes, "attention_bytes": self.attention_bytes,
                "reserve_bytes": self.reserve_bytes, "total_bytes": self.memory_bytes,
                "capacity_bytes": self.capacity_bytes,
                "fits": self.fits,
                "scores_if_materialized_bytes": self.scores_if_materialized_bytes,
                "attention": "flash attention assumed: the N^2 scores are never stored",
            },
            "assumptions": "text encoders and VAE costed roughly from their size; weights replicated per GPU",
        }  # fmt: skip
        if with_ops:
            data["step_ops"] = list(self.step_ops)
            data["once_ops"] = list(self.once_ops)
        return data


def _step_ops(dit: DiffusionTransformer, s: DitScenario, tokens: int) -> tuple[list[Op], int]:
    """One GPU's operators for one denoising step, and the DiT forwards each step runs."""
    b, p = s.request.batch, s.precision
    placement = Placement(sequence_split=s.sp, ring=s.ring, cfg_split=2 if s.cfg_parallel else 1)
    if not s.cfg:
        return dit.forward_ops(tokens, b, p, placement), 1
    if s.cfg_parallel:  # each half of the GPUs runs one branch, then the predictions are gathered
        return dit.forward_ops(tokens, b, p, placement), 2
    if dit.cfg_batched:
        return dit.forward_ops(tokens, 2 * b, p, placement), 2
    forward = dit.forward_ops(tokens, b, p, placement)  # cond and uncond one after the other
    return [replace(op, count=2 * op.count) for op in forward], 2


def estimate_dit(dit: DiffusionTransformer, cluster: Cluster, scenario: DitScenario, ideal: bool = False) -> DitResult:
    if cluster.num_gpus % scenario.gpus_per_request:
        split = f"sp {scenario.sp}" + (" x 2 for CFG parallel" if scenario.cfg_parallel else "")
        raise RooflineError(f"{cluster.num_gpus} GPUs is not a multiple of the {scenario.gpus_per_request} GPUs one "
                            f"request uses ({split})")  # fmt: skip
    dit.check_sp(scenario.sp, scenario.ring)
    runtime = scenario.runtime
    model = RooflineCostModel(cluster, ParallelPlan(), ideal=ideal, attention_kernel=runtime.kernel)
    tokens = dit.image_tokens(scenario.request)
    ops, forwards = _step_ops(dit, scenario, tokens)
    ops = ops if ideal else apply_runtime(ops, runtime)
    costs = _costs(model, cluster, ops, scenario)
    once = [*dit.encoder_ops(scenario.request.batch, scenario.precision),
            dit.vae_decode_op(scenario.request, scenario.precision)]  # fmt: skip
    once_costs = [model.cost(op) for op in once]
    attention = sum(c.total_s for c in costs if c.op.kind is OpKind.ATTENTION)
    batch = scenario.request.batch * (2 if scenario.cfg and dit.cfg_batched and not scenario.cfg_parallel else 1)
    attention_memory = dit.attention_bytes(tokens, batch, scenario.precision, scenario.sp, scenario.ring)
    return DitResult(
        model=dit.id, hardware=cluster.accelerator.id, system=cluster.system.id, num_gpus=cluster.num_gpus,
        scenario=scenario, image_tokens=tokens, text_tokens=dit.text_tokens, forwards_per_step=forwards,
        step_s=sum(c.total_s for c in costs), step_no_overlap_s=sum(c.no_overlap_s for c in costs),
        step_flops=sum(c.op.flops * c.op.count for c in costs) * scenario.gpus_per_request, attention_s=attention,
        encoders_s=sum(c.total_s for c in once_costs[:-1]), vae_s=once_costs[-1].total_s,
        weights_bytes=dit.weight_bytes(scenario.precision, Placement()),
        encoder_weights_bytes=dit.encoder_weight_bytes(scenario.precision),
        activation_bytes=dit.activation_peak_bytes(tokens, batch, scenario.precision, scenario.sp),
        capacity_bytes=cluster.accelerator.memory.capacity,
        attention_bytes=attention_memory[0], scores_if_materialized_bytes=attention_memory[1],
        reserve_bytes=capacity_rule.reserve_bytes(cluster.accelerator),
        attention_kernel=kernel_label(runtime, cluster.accelerator, model.attention_fraction),
        attention_fraction=model.attention_fraction,
        step_ops=tuple(op_row(c, "denoise step", scenario.steps) for c in costs),
        once_ops=tuple(op_row(c, "once per request", 1) for c in once_costs),
    )  # fmt: skip

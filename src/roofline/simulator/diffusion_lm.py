"""Masked-diffusion LM estimator (LLaDA, Dream): `gen_len` tokens in `steps` denoising steps, in
semi-autoregressive blocks of `block_len` (steps split evenly over the blocks).

Each step is a bidirectional forward (every query attends to all P + G tokens: 4 T S d FLOPs per
layer) with logits on every recomputed position. Which tokens a step recomputes (Fast-dLLM,
models.md §10.3):
    none    every step: all P + G tokens
    prefix  first step of a block: all tokens (rebuilds the cache); then the block and the suffix
    dual    first step of a block: all tokens; then only the block's B tokens
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from roofline.errors import RooflineError
from roofline.hardware_specs.cluster import Cluster
from roofline.ir import Op, OpKind, Phase, Placement, Precision, StepShape
from roofline.simulator import capacity as capacity_rule
from roofline.simulator.cost import RooflineCostModel
from roofline.simulator.diffusion import op_row
from roofline.simulator.diffusion_runtime import DiffusionRuntime, apply_runtime, kernel_label
from roofline.simulator.plan import ParallelPlan
from roofline.workloads.diffusion_lm import DiffusionLM

CACHES = ("none", "prefix", "dual")
MAX_SEQUENCE_TOKENS = 10_000_000  # beyond any diffusion LM's context; keeps the arithmetic bounded
MAX_STEPS = 10_000_000
MAX_BLOCKS = 65_536


@dataclass(frozen=True)
class DlmScenario:
    prompt_len: int
    gen_len: int
    steps: int
    block_len: int
    cache: str = "none"
    batch: int = 1
    tp: int = 1
    precision: Precision = Precision()
    runtime: DiffusionRuntime = DiffusionRuntime()

    def __post_init__(self) -> None:
        if self.cache not in CACHES:
            raise RooflineError(f"--cache must be one of {', '.join(CACHES)}, got {self.cache!r}")
        if min(self.prompt_len, self.gen_len, self.steps, self.block_len, self.batch) < 1:
            raise RooflineError("--isl, --gen-len, --steps, --block-len and --batch must be at least 1")
        if self.sequence > MAX_SEQUENCE_TOKENS or self.steps > MAX_STEPS or self.blocks > MAX_BLOCKS:
            raise RooflineError(f"prompt + generation at most {MAX_SEQUENCE_TOKENS:,} tokens, --steps at most "
                                f"{MAX_STEPS:,}, at most {MAX_BLOCKS:,} blocks (--gen-len / --block-len)")  # fmt: skip
        if self.gen_len % self.block_len:
            raise RooflineError(f"--gen-len {self.gen_len} must be a multiple of --block-len {self.block_len}")
        if self.steps % self.blocks:
            raise RooflineError(f"--steps {self.steps} must be a multiple of the {self.blocks} blocks")

    @property
    def blocks(self) -> int:
        return self.gen_len // self.block_len

    @property
    def sequence(self) -> int:
        return self.prompt_len + self.gen_len

    def step_counts(self) -> Counter[int]:
        """How many steps recompute each token count (the first step of a block: the whole sequence)."""
        per_block, counts = self.steps // self.blocks, Counter[int]()
        for k in range(self.blocks):
            cached = {"none": self.sequence, "prefix": self.gen_len - k * self.block_len, "dual": self.block_len}
            counts[self.sequence] += 1
            if per_block > 1:
                counts[cached[self.cache]] += per_block - 1
        return counts


def step_ops(lm: DiffusionLM, s: DlmScenario, tokens: int) -> list[Op]:
    """One GPU's ops for a step recomputing `tokens` of the `s.sequence` tokens, attending to all."""
    placement = Placement(tp=s.tp, layer_start=0, layer_end=lm.num_layers)
    step = StepShape(Phase.DECODE, s.batch, tokens, s.sequence)  # DECODE: logits on every recomputed token
    att = lm.attention
    flops = s.batch * 4.0 * placement.heads(att.num_heads) * att.head_dim * tokens * s.sequence  # bidirectional
    return [replace(op, flops=flops) if op.kind is OpKind.ATTENTION else op
            for op in lm.build_ops(step, s.precision, placement)]  # fmt: skip


@dataclass(frozen=True)
class DlmResult:
    model: str
    hardware: str
    num_gpus: int
    scenario: DlmScenario
    latency_s: float
    flops: float
    weights_bytes: float
    kv_cache_bytes: float
    activation_bytes: float
    capacity_bytes: float
    reserve_bytes: float = 0.0  # the accelerator's runtime reserve
    attention_kernel: str = ""  # the kernel family as charged (kernel_label)
    attention_fraction: float = 0.0
    step_kinds: tuple[dict[str, Any], ...] = ()  # one per distinct recomputed-token count: tokens, steps, step_s
    step_ops: tuple[dict[str, Any], ...] = ()  # operator rows of each step kind (one step of it)
    ar: dict[str, Any] | None = None

    @property
    def tokens_per_s(self) -> float:
        return self.scenario.batch * self.scenario.gen_len / self.latency_s

    @property
    def memory_bytes(self) -> float:
        return capacity_rule.used_bytes(self.weights_bytes, self.kv_cache_bytes, self.activation_bytes,
                                        self.reserve_bytes)  # fmt: skip

    @property
    def fits(self) -> bool:
        return bool(capacity_rule.fits(self.memory_bytes, self.capacity_bytes))

    def to_dict(self, with_ops: bool = True) -> dict[str, Any]:
        s = self.scenario
        memory = self.memory_bytes
        data: dict[str, Any] = {
            "model": self.model, "kind": "diffusion_lm", "hardware": self.hardware, "num_gpus": self.num_gpus,
            "tp": s.tp, "batch": s.batch, "prompt_len": s.prompt_len, "gen_len": s.gen_len, "steps": s.steps,
            "block_len": s.block_len, "cache": s.cache, "attention_kernel": self.attention_kernel,
            "attention_fraction": self.attention_fraction,
            "compiled": s.runtime.compiled, "latency_s": self.latency_s,
            "step_mean_s": self.latency_s / s.steps, "flops": self.flops, "tokens_per_s": self.tokens_per_s,
            "tokens_per_s_per_gpu": self.tokens_per_s / self.num_gpus,
            "memory": {"weights_bytes": self.weights_bytes, "kv_cache_bytes": self.kv_cache_bytes,
                       "activation_bytes": self.activation_bytes, "reserve_bytes": self.reserve_bytes,
                       "total_bytes": memory,
                       "capacity_bytes": self.capacity_bytes, "fits": self.fits},
        }  # fmt: skip
        if self.ar is not None:
            data["compare_ar"] = {**self.ar, "speedup_ratio": self.ar["latency_s"] / self.latency_s}
        if with_ops:
            data["step_kinds"] = list(self.step_kinds)
            data["step_ops"] = list(self.step_ops)
        return data


def estimate_dlm(lm: DiffusionLM, cluster: Cluster, s: DlmScenario, ideal: bool = False) -> DlmResult:
    lm.check_parallel(s.tp, 1)
    model = RooflineCostModel(cluster, ParallelPlan(tp=s.tp), ideal=ideal, attention_kernel=s.runtime.kernel)
    latency, flops, kinds, rows = 0.0, 0.0, [], []
    for tokens, steps in sorted(s.step_counts().items(), reverse=True):  # full steps first
        ops = step_ops(lm, s, tokens)
        costs = [model.cost(op) for op in (ops if ideal else apply_runtime(ops, s.runtime))]
        step_s, step_flops = sum(c.total_s for c in costs), sum(c.op.flops * c.op.count for c in costs)
        label = f"{tokens}-token step"
        kinds.append({"phase": label, "tokens": tokens, "steps": steps, "step_s": step_s, "total_s": steps * step_s,
                      "step_flops": step_flops})  # fmt: skip
        rows += [op_row(c, label, steps) for c in costs]
        latency, flops = latency + steps * step_s, flops + steps * step_flops
    placement = Placement(tp=s.tp, layer_start=0, layer_end=lm.num_layers)
    full = StepShape(Phase.DECODE, s.batch, s.sequence, s.sequence)
    logits = s.batch * s.sequence * lm.vocab_size / s.tp * 4.0  # fp32 logits on every position
    kv = 0.0 if s.cache == "none" else s.batch * lm.kv_cache_bytes(s.sequence, s.precision, placement)
    return DlmResult(
        model=lm.id, hardware=cluster.accelerator.id, num_gpus=s.tp, scenario=s, latency_s=latency,
        flops=flops * s.tp, weights_bytes=lm.weight_bytes(s.precision, placement), kv_cache_bytes=kv,
        activation_bytes=lm.activation_bytes(full, s.precision, placement) + logits,
        capacity_bytes=cluster.accelerator.memory.capacity,
        reserve_bytes=capacity_rule.reserve_bytes(cluster.accelerator),
        attention_kernel=kernel_label(s.runtime, cluster.accelerator, model.attention_fraction),
        attention_fraction=model.attention_fraction,
        step_kinds=tuple(kinds), step_ops=tuple(rows),
    )  # fmt: skip

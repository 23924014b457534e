"""Parallel plan and scenario: how a workload is split over GPUs and what it is asked to do."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from roofline.errors import RooflineError
from roofline.ir import Phase, Placement, Precision, StepShape
from roofline.workloads.base import Workload

if TYPE_CHECKING:
    from roofline.simulator.serving.engine_config import EngineConfig


@dataclass(frozen=True)
class ParallelPlan:
    """tp: tensor parallel (attention and dense layers); attn_dp: attention replicas inside one
    model replica (attention data parallelism, DeepSeek-style serving); ep: GPUs the routed
    experts are spread over, among the tp x attn_dp GPUs of a stage; pp: pipeline stages;
    dp: whole-model replicas."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    attn_dp: int = 1
    moe_imbalance: float = 1.0  # busiest GPU's share of routed tokens over the mean
    cp: int = 1  # context parallelism: a sequence's tokens (prefill) and KV cache (decode) over cp GPUs
    moe_kernels: str = "trtllm"  # the runtime's MoE kernel variant (simulator/data/moe_kernels.yaml)
    vocab_parallel: bool = True  # the runtime splits embedding and LM head over tp (False: replicated, gpt-fast)
    lm_head_quantized: bool = False  # the runtime's weight-only quantization covers the LM head

    def __post_init__(self) -> None:
        for name, value in (("tp", self.tp), ("pp", self.pp), ("dp", self.dp), ("ep", self.ep),
                            ("attn-dp", self.attn_dp), ("cp", self.cp)):  # fmt: skip
            if value < 1:
                raise RooflineError(f"--{name} must be at least 1, got {value}")
        group = self.tp * self.attn_dp
        if group % self.ep:
            raise RooflineError(f"--ep {self.ep} must divide tp x attn-dp = {group} (the GPUs of a stage)")
        if 1 < self.ep < group:
            raise RooflineError(
                f"--ep {self.ep} with {group} GPUs per stage would split each expert over {group // self.ep} GPUs "
                f"as well; use --ep 1 (experts tensor-parallel) or --ep {group} (whole experts per GPU)"
            )
        if self.attn_dp > 1 and self.ep != group:
            raise RooflineError(f"--attn-dp {self.attn_dp} needs --ep {group} (experts over all tp x attn-dp GPUs)")
        if not self.moe_imbalance >= 1.0 or math.isinf(self.moe_imbalance):  # NaN fails >=
            raise RooflineError(f"--moe-imbalance is the busiest GPU over the mean, >= 1; got {self.moe_imbalance}")

    @property
    def stage_gpus(self) -> int:
        return self.tp * self.attn_dp

    @property
    def gpus_per_replica(self) -> int:
        return self.stage_gpus * self.cp * self.pp

    @property
    def num_gpus(self) -> int:
        return self.gpus_per_replica * self.dp

    def with_vocab_layout(self, runtime: EngineConfig | None) -> ParallelPlan:
        """The plan with the runtime's vocabulary layout (embedding / LM head split over TP or whole
        on every GPU, the LM head quantized with the weights or not); None: vocabulary-parallel."""
        if runtime is None:
            return self
        return replace(self, vocab_parallel=runtime.vocab_parallel, lm_head_quantized=runtime.lm_head_quantized)

    @classmethod
    def for_gpus(cls, tp: int, pp: int, num_gpus: int | None, ep: int = 1, attn_dp: int = 1,
                 moe_imbalance: float = 1.0, cp: int = 1) -> ParallelPlan:  # fmt: skip
        """`--gpus N` beyond the GPUs of one replica becomes data-parallel replicas."""
        replica = cls(tp=tp, pp=pp, ep=ep, attn_dp=attn_dp, moe_imbalance=moe_imbalance, cp=cp)
        if num_gpus is None:
            return replica
        per = replica.gpus_per_replica
        if num_gpus < 1:
            raise RooflineError(f"--gpus must be at least 1, got {num_gpus}")
        if num_gpus % per:
            raise RooflineError(
                f"--gpus {num_gpus} is not a multiple of the {per} GPUs of one replica; use a multiple or drop --gpus"
            )
        return cls(tp=tp, pp=pp, dp=num_gpus // per, ep=ep, attn_dp=attn_dp, moe_imbalance=moe_imbalance, cp=cp)


# Engine token budget per forward step: TensorRT-LLM max_num_tokens and vLLM max_num_batched_tokens
# both default to 8192. MTP acceptance: DeepSeek-V3 technical report, 85-90% for the second token.
DEFAULT_MAX_NUM_TOKENS = 8192
DEFAULT_MTP_ACCEPTANCE = 0.85


MAX_SEQUENCE_TOKENS = 10_000_000  # isl + osl: beyond any model's context window, keeps step counts bounded
MAX_PREFILL_CHUNKS = 100_000  # prefill steps one prompt may take (isl / max_num_tokens)
MAX_DRAFT_TOKENS = 64  # speculative tokens per step (MTP or a draft model); real engines use <= 8


@dataclass(frozen=True)
class Scenario:
    """A batch of `batch` sequences per replica with `isl` prompt and `osl` output tokens."""

    batch: int
    isl: int
    osl: int
    precision: Precision = field(default_factory=Precision)
    plan: ParallelPlan = field(default_factory=ParallelPlan)
    reserve_bytes: float | None = None  # None: the accelerator's runtime_reserve
    max_num_tokens: int = DEFAULT_MAX_NUM_TOKENS  # prefill runs in chunks of at most this many tokens
    # speculative decoding with the model's MTP layers: drafts per step and the chance that each
    # draft is accepted given the previous one was (DeepSeek-V3 report: 85-90% for the 2nd token)
    mtp_drafts: int = 0
    mtp_acceptance: float = DEFAULT_MTP_ACCEPTANCE
    comm_library: str = "nccl"  # simulator/data/comm/<id>.yaml
    overlap_ep: bool = False  # two-batch overlap hides EP all-to-alls under compute
    sequence_parallel: bool = False  # TP all-reduces as reduce-scatter + all-gather, norms on 1/tp tokens
    runtime: EngineConfig | None = field(default=None, compare=False)  # host side of a step (simulator/host.py)
    # the attention kernel the device time is priced with (attention_efficiency runtime_kernels); None: the
    # runtime's `kernels.attention` where a runtime is given, else TensorRT-LLM FMHA
    attention: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.mtp_drafts <= MAX_DRAFT_TOKENS or not 0.0 < self.mtp_acceptance <= 1.0:
            raise RooflineError(f"--mtp must be in [0, {MAX_DRAFT_TOKENS}] and --mtp-acceptance in (0, 1]")
        checks = (("batch", self.batch), ("isl", self.isl), ("osl", self.osl), ("max-num-tokens", self.max_num_tokens))
        for name, value in checks:
            if value < 1:
                raise RooflineError(f"--{name} must be at least 1, got {value}")
        if self.isl + self.osl > MAX_SEQUENCE_TOKENS:
            raise RooflineError(f"isl + osl = {self.isl + self.osl:,} tokens; at most {MAX_SEQUENCE_TOKENS:,} are "
                                "modelled (beyond any model's context window)")  # fmt: skip
        if self.isl > MAX_PREFILL_CHUNKS * self.max_num_tokens:
            raise RooflineError(f"a {self.isl:,}-token prompt in chunks of --max-num-tokens {self.max_num_tokens} is "
                                f"over {MAX_PREFILL_CHUNKS:,} prefill steps; raise --max-num-tokens")  # fmt: skip

    @property
    def attention_kernel(self) -> str | None:
        """The attention kernel: `attention`, else the runtime's (engine YAML `kernels.attention`), else None."""
        return self.attention or (None if self.runtime is None else self.runtime.kernels.attention)

    @property
    def tokens_per_decode_step(self) -> float:
        """Expected tokens a decode step emits: 1 + a + a^2 + ... + a^drafts."""
        return sum(self.mtp_acceptance**i for i in range(self.mtp_drafts + 1))

    @property
    def micro_batches(self) -> int:
        """Micro-batches in flight: one per pipeline stage when the batch allows."""
        return min(self.plan.pp, self.batch)

    @property
    def micro_batch(self) -> int:
        return -(-self.batch // self.micro_batches)


def prefill_chunks(batch: int, isl: int, max_num_tokens: int, replicas: int = 1) -> list[tuple[StepShape, int]]:
    """The prefill of `batch` prompts of `isl` tokens as the engine runs it: steps of at most
    `max_num_tokens` tokens per attention replica, as (step, how many times it repeats).

    Prompts shorter than the budget are packed several to a step; longer ones are split into
    chunks that attend to the chunks before them (chunked prefill). With attention data
    parallelism each of the `replicas` schedules its own prompts, so a step holds up to
    `replicas` times as many.
    """
    if isl >= max_num_tokens:
        per_step = min(replicas, batch)
        rounds = -(-batch // per_step)
        chunks, start = [], 0
        while start < isl:
            new = min(max_num_tokens, isl - start)
            chunks.append(
                (StepShape(Phase.PREFILL, batch=per_step, new_tokens=new, context_tokens=start + new), rounds)
            )
            start += new
        return chunks
    per_step = (max_num_tokens // isl) * replicas
    full, rest = divmod(batch, per_step)
    steps = [(StepShape(Phase.PREFILL, batch=per_step, new_tokens=isl, context_tokens=isl), full)] if full else []
    if rest:
        steps.append((StepShape(Phase.PREFILL, batch=rest, new_tokens=isl, context_tokens=isl), 1))
    return steps


def stage_placements(workload: Workload, plan: ParallelPlan) -> list[Placement]:
    """Layers split as evenly as possible over the pipeline stages (earlier stages take the extra
    layer); the first stage holds the embedding, the last the LM head."""
    workload.check_parallel(plan.tp, plan.pp)
    workload.check_experts(plan.ep, plan.stage_gpus // plan.ep)
    base, extra = divmod(workload.num_layers, plan.pp)
    placements, start = [], 0
    for stage in range(plan.pp):
        layers = base + (1 if stage < extra else 0)
        placements.append(
            Placement(
                ep=plan.ep,
                attn_dp=plan.attn_dp,
                moe_imbalance=plan.moe_imbalance,
                moe_kernels=plan.moe_kernels,
                vocab_parallel=plan.vocab_parallel,
                lm_head_quantized=plan.lm_head_quantized,
                tp=plan.tp,
                layer_start=start,
                layer_end=start + layers,
                has_embedding=stage == 0,
                has_lm_head=stage == plan.pp - 1,
            )
        )
        start += layers
    return placements

"""Operator IR: what a workload builds and the simulator times.

An `Op` is one operator on one GPU for one step, with its FLOPs and the bytes it moves, repeated
`count` times (e.g. once per layer of the pipeline stage). Workloads own their operator lists;
the simulator owns the cost of each op. Units: FLOP, bytes; 1 multiply-add = 2 FLOP.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar, dataclass_transform

from roofline.dtypes import DType
from roofline.parallel.dims import split_heads, split_kv_heads, split_padded, split_ulysses_heads, split_width

_V = TypeVar("_V")


@dataclass_transform(frozen_default=True, eq_default=True)
def value_class(cls: type[_V]) -> type[_V]:
    """A value of the IR: a slotted dataclass, equal and hashable by its fields, immutable by contract
    (the type checker rejects assignment to a field; change one with `dataclasses.replace`). Ops are
    shared between memo tables, so they must never change once built. At run time it is not a frozen
    dataclass: a frozen one sets each field through `object.__setattr__` and takes four times as
    long to build, and a plan builds a hundred thousand ops."""
    return dataclass(slots=True, unsafe_hash=True)(cls)


class Phase(StrEnum):
    PREFILL = "prefill"
    DECODE = "decode"


class OpKind(StrEnum):
    MATMUL = "matmul"
    ATTENTION = "attention"
    ELEMENTWISE = "elementwise"
    COLLECTIVE = "collective"


class OpClass(StrEnum):
    """What the op belongs to, for breakdowns (attention, MLP, communication, ...)."""

    EMBEDDING = "embedding"
    NORM = "norm"
    ATTENTION = "attention"
    MLP = "mlp"
    LM_HEAD = "lm_head"
    SAMPLING = "sampling"
    COMMUNICATION = "communication"


class CollectiveKind(StrEnum):
    ALL_REDUCE = "all_reduce"
    ALL_GATHER = "all_gather"
    REDUCE_SCATTER = "reduce_scatter"
    ALL_TO_ALL = "all_to_all"
    BROADCAST = "broadcast"
    SEND_RECV = "send_recv"
    EP_DISPATCH = "ep_dispatch"  # MoE tokens to the GPUs of their experts (once per destination GPU)
    EP_COMBINE = "ep_combine"  # expert outputs back to their tokens' GPUs, reduced there


@value_class
class EpRouting:
    """How an EP dispatch / combine fans out: each token picks `top_k` of `experts` routed experts
    spread evenly over the EP group (optionally only among `topk_groups` of `groups` expert groups,
    DeepSeek's node-limited routing); the busiest GPU receives `imbalance` x the mean. The
    collective's message is the token volume one GPU holds (tokens x bytes per token, one copy)."""

    top_k: int
    experts: int
    imbalance: float = 1.0
    groups: int = 1
    topk_groups: int = 1
    element_bytes: float = 2.0  # bytes per value of the message (the activation dtype)
    cuda_graph: bool = False  # the step runs as a CUDA graph (decode): kernels that wait on the host cannot
    quantized_element_bytes: float = 0.0  # bytes per value of the experts' quantized input (0: not quantized)


@value_class
class Collective:
    """A collective over a parallel group ('tp', 'pp', 'ep', ...) of `message_bytes` per GPU."""

    kind: CollectiveKind
    group: str
    message_bytes: float
    routing: EpRouting | None = None  # EP dispatch / combine only


@value_class
class Sync:
    """What the ranks of a parallel group must exchange after an op, in the operator graph: a
    row-parallel output's partial sums (all-reduce over 'tp'), a vocabulary slice (all-gather), tokens
    to and from their experts (all-to-all over 'ep'). `roofline.parallel.collectives` inserts the
    collective, named `name`, right after the op when the group has more than one GPU; `then`, the
    exchange that follows it (a DiT's ring K/V pass, then its Ulysses output all-to-all), after it
    likewise."""

    name: str
    kind: CollectiveKind
    group: str
    message_bytes: float
    dtype: DType
    routing: EpRouting | None = None  # EP dispatch / combine only
    then: Sync | None = None


@value_class
class MatmulShape:
    """C[m, n] = A[m, k] @ B[k, n], repeated `batch` times (batched GEMM). `grouped` names the
    grouped-GEMM kernel family of MoE experts ('family' or 'family:format'; simulator/grouped_gemm.py):
    then `batch` is the experts and `m` the rows per expert padded to the family's tile."""

    m: int
    n: int
    k: int
    batch: int = 1
    scaling: str | None = None  # FP8 scales: "tensor" (per-tensor) or "block" (128x128 weights, 1x128 activations)
    kernel: str | None = None  # GEMM library where it has a curve of its own ("deepgemm"); None: the runtime's default
    grouped: str = ""
    local_groups: int = 0  # grouped: the experts held on the GPU, empty ones included (0: `batch`)

    @property
    def resident_groups(self) -> int:
        """The groups a grouped GEMM's per-expert setup visits: every expert on the GPU."""
        return self.local_groups or self.batch


@value_class
class AttentionCall:
    """The shape of one attention kernel call on one GPU (what its efficiency depends on): `batch`
    sequences of `q_len` new query tokens each over `kv_len` KV entries (the entries the newest
    token attends to: a window or a top-k selection caps it), `heads` query heads sharing
    `kv_heads` KV heads, QK width `head_dim` and V width `head_dim_v`. `variant`: "gqa" (MHA and
    MQA included), "mla" (absorbed MLA decode: the latent is the one KV head), "mla_sparse"
    (top-k entries), "mha_expanded" (MLA prefill on expanded per-head K/V). `kv_dtype` is the
    cache format as stored."""

    phase: Phase
    batch: int
    q_len: int
    kv_len: int
    heads: int
    kv_heads: int
    head_dim: int
    head_dim_v: int
    causal: bool
    variant: str
    kv_dtype: DType


@value_class
class Op:
    name: str
    kind: OpKind
    op_class: OpClass
    dtype: DType  # the format the math runs in (selects the peak)
    flops: float = 0.0
    weight_bytes: float = 0.0  # weights read
    activation_bytes: float = 0.0  # activations read + written
    kv_read_bytes: float = 0.0
    kv_write_bytes: float = 0.0
    count: int = 1  # instances per step on one GPU (e.g. layers in the stage)
    kernels: int = 1  # kernels launched per instance
    shape: MatmulShape | None = None
    collective: Collective | None = None
    sync: Sync | None = None  # the collective the op's output needs under parallelism (graph tag)
    attention: AttentionCall | None = None  # attention ops: the kernel call's shape (efficiency by shape)

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.activation_bytes + self.kv_read_bytes + self.kv_write_bytes

    @property
    def arithmetic_intensity(self) -> float:
        """FLOP per byte of memory traffic (0 for ops that move no bytes)."""
        return self.flops / self.bytes if self.bytes else 0.0


@value_class
class Precision:
    weight: DType = DType.BF16
    activation: DType = DType.BF16
    kv_cache: DType = DType.BF16
    expert_weight: DType | None = None  # routed/shared expert weights; None = `weight`
    fp8_scaling: str | None = None  # FP8 GEMM scales: "block" (128x128 weights, 1x128 activations); None = per-tensor

    @property
    def matmul_dtype(self) -> DType:
        """Format of block matmuls: fp8/fp4 weights run fp8/fp4 GEMMs; int4 weight-only runs bf16."""
        return self.weight.compute_dtype

    @property
    def experts(self) -> DType:
        return self.expert_weight or self.weight

    def for_experts(self) -> Precision:
        """The precision expert matmuls see: the expert format as the weight format."""
        return Precision(self.experts, self.activation, self.kv_cache, self.expert_weight, self.fp8_scaling)


@value_class
class StepShape:
    """One forward step on one micro-batch: `batch` sequences, each adding `new_tokens` tokens to a
    KV cache that then holds `context_tokens` tokens (prefill: new == context == isl; decode:
    new == 1, context == c)."""

    phase: Phase
    batch: int
    new_tokens: int
    context_tokens: int

    @property
    def tokens(self) -> int:
        return self.batch * self.new_tokens

    @property
    def prior_tokens(self) -> int:
        return self.context_tokens - self.new_tokens


@value_class
class Placement:
    """What one GPU holds: its share of a TP group, of the experts, and the layers of its stage.

    Attention runs tensor-parallel over `tp` GPUs, replicated `attn_dp` times (attention data
    parallelism: each replica serves 1/attn_dp of the batch). Routed experts are spread over
    `ep` of those tp x attn_dp GPUs; each expert is tensor-split over the remaining factor.
    A diffusion transformer's tokens are split over `sequence_split` GPUs (unified sequence
    parallelism: Ulysses over sequence_split / ring of them, ring attention over `ring`), and with
    CFG parallelism (`cfg_split` 2) each branch of classifier-free guidance runs on its own group.
    """

    tp: int = 1
    layer_start: int = 0
    layer_end: int = 0  # exclusive
    has_embedding: bool = True
    has_lm_head: bool = True
    ep: int = 1
    attn_dp: int = 1
    moe_imbalance: float = 1.0  # busiest GPU's share of routed tokens over the mean
    moe_kernels: str = "trtllm"  # the runtime's MoE kernel variant (simulator/data/moe_kernels.yaml)
    moe_spread: str = "uniform"  # routing spread: uniform, even, power_law_<s> (workloads/moe_kernels.py)
    vocab_parallel: bool = True  # embedding and LM head split over the tp GPUs; False: every GPU holds both whole
    lm_head_quantized: bool = False  # the LM head in the weight format (a weight-only checkpoint that quantized it)
    sequence_split: int = 1  # DiT: GPUs splitting the tokens (Ulysses x ring)
    ring: int = 1  # DiT: of those, the ring-attention degree
    cfg_split: int = 1  # DiT: 2 when the CFG branches run on two groups of GPUs

    @property
    def num_layers(self) -> int:
        return self.layer_end - self.layer_start

    @property
    def moe_group(self) -> int:
        """GPUs that share the MoE layers of this stage (tp x attn_dp)."""
        return self.tp * self.attn_dp

    @property
    def expert_tp(self) -> int:
        """How many GPUs split one expert's weights."""
        return self.moe_group // self.ep

    @property
    def ulysses(self) -> int:
        """GPUs of a DiT's Ulysses group (its attention heads are split over them)."""
        return self.sequence_split // self.ring

    def local_batch(self, batch: int) -> int:
        """Sequences one attention replica serves."""
        return split_padded(batch, self.attn_dp)

    # ---- one GPU's share of each named dimension of the operator graph (rules: parallel.dims) ----

    def group_size(self, group: str) -> int:
        """GPUs of a parallel group a collective runs over ('tp', 'ep', a DiT's 'ulysses', 'ring' and
        'cfg'; 1 for the others here)."""
        if group == "tp":
            return self.tp
        if group == "ep":
            return self.ep
        return {"ulysses": self.ulysses, "ring": self.ring, "cfg": self.cfg_split}.get(group, 1)

    def sequence_tokens(self, tokens: int) -> int:
        """One GPU's share of a sequence split over the sequence-parallel GPUs (the last one padded)."""
        return split_padded(tokens, self.sequence_split)

    def ulysses_heads(self, num_heads: int) -> int:
        """Attention heads one GPU keeps after the Ulysses all-to-all."""
        return split_ulysses_heads(num_heads, self.ulysses)

    def ulysses_query_tokens(self, local_tokens: int) -> int:
        """Tokens whose queries one GPU holds after the Ulysses all-to-all (its ring's share)."""
        return local_tokens * self.ulysses

    def sequence_key_tokens(self, local_tokens: int) -> int:
        """The whole (padded) sequence a GPU's queries attend to: every GPU's share."""
        return local_tokens * self.sequence_split

    def heads(self, num_heads: int, what: str = "attention heads") -> int:
        return split_heads(num_heads, self.tp, what)

    def kv_heads(self, num_kv_heads: int) -> int:
        return split_kv_heads(num_kv_heads, self.tp)

    def ffn(self, width: int) -> int:
        """Columns of a TP-split hidden width (dense MLP, shared experts)."""
        return split_width(width, self.tp)

    def vocab(self, vocab: int) -> int:
        """The vocabulary rows of the embedding / LM head one GPU holds."""
        return split_padded(vocab, self.tp) if self.vocab_parallel else vocab

    @property
    def vocab_tp(self) -> int:
        """GPUs the vocabulary is split over (1 when every GPU holds it whole)."""
        return self.tp if self.vocab_parallel else 1

    def experts(self, num_experts: float) -> float:
        return num_experts / self.ep

    def expert_ffn(self, width: int) -> int:
        return split_width(width, self.expert_tp)

"""Hybrid Mamba-2 / attention / MoE stacks (NVIDIA Nemotron-H, Nemotron-3) built from a layer
pattern, one block per layer: `M` Mamba-2, `*` attention (GQA), `E` MoE (latent MoE when
moe_latent_size is set), `-` dense MLP. MTP layers (their own pattern) count in the parameters."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Literal

from pydantic import Field, model_validator

from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.ir import Op, OpClass, Placement, Precision, StepShape
from roofline.parallel.collectives import with_collectives
from roofline.workloads.base import ParameterCounts, Workload, register_kind
from roofline.workloads.dense import mlp_params
from roofline.workloads.layers import (
    AttentionShape,
    attention_block_ops,
    dense_mlp_ops,
    embedding_ops,
    lm_head_ops,
    local_heads,
    local_kv_heads,
    matmul_op,
)
from roofline.workloads.mamba import MambaShape, mamba_ops
from roofline.workloads.moe_blocks import MoEShape, moe_activation_width, moe_ops, moe_weight_bytes

BLOCKS = {"M": "mamba", "*": "attention", "E": "moe", "-": "mlp"}


@register_kind("hybrid")
class HybridStack(Workload):
    kind: Literal["hybrid"] = "hybrid"
    hidden_size: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    hybrid_override_pattern: str = Field(min_length=1, description="one character per layer: M * E -")
    tie_word_embeddings: bool = False
    # attention layers
    num_attention_heads: int = Field(gt=0)
    num_key_value_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    # Mamba-2 layers
    mamba_num_heads: int = Field(gt=0)
    mamba_head_dim: int = Field(gt=0)
    ssm_state_size: int = Field(gt=0)
    n_groups: int = Field(gt=0)
    conv_kernel: int = Field(gt=1)
    chunk_size: int = Field(default=128, gt=0)
    mamba_ssm_cache_dtype: DType = DType.FP32
    # dense MLP layers (non-gated, relu^2)
    intermediate_size: int = Field(default=0, ge=0)
    # MoE layers (non-gated relu^2 experts)
    num_experts: int = Field(default=0, ge=0)
    num_experts_per_tok: int = Field(default=0, ge=0)
    moe_intermediate_size: int = Field(default=0, ge=0)
    moe_latent_size: int | None = Field(default=None, gt=0, description="latent MoE width; None: plain MoE")
    num_shared_experts: int = Field(default=0, ge=0)
    shared_expert_intermediate_size: int = Field(default=0, ge=0)
    mtp_pattern: str = Field(default="", description="block pattern of the MTP layers (counted, not run)")

    @model_validator(mode="after")
    def _check_pattern(self) -> HybridStack:
        bad = set(self.hybrid_override_pattern + self.mtp_pattern) - set(BLOCKS)
        if bad:
            raise ValueError(f"unknown layer characters {sorted(bad)}; use M (Mamba-2), * (attention), E, -")
        if "E" in self.hybrid_override_pattern and not (self.num_experts and self.num_experts_per_tok):
            raise ValueError("MoE layers (E) need num_experts and num_experts_per_tok")
        if "-" in self.hybrid_override_pattern and not self.intermediate_size:
            raise ValueError("MLP layers (-) need intermediate_size")
        return self

    # ---- shapes ----------------------------------------------------------------------------------

    @property
    def num_layers(self) -> int:
        return len(self.hybrid_override_pattern)

    @property
    def attention(self) -> AttentionShape:
        return AttentionShape(self.hidden_size, self.num_attention_heads, self.num_key_value_heads, self.head_dim)

    @property
    def mamba(self) -> MambaShape:
        return MambaShape(self.hidden_size, self.mamba_num_heads, self.mamba_head_dim, self.ssm_state_size,
                          self.n_groups, self.conv_kernel, self.chunk_size, self.mamba_ssm_cache_dtype)  # fmt: skip

    @property
    def moe_shape(self) -> MoEShape:
        return MoEShape(
            hidden=self.hidden_size, num_experts=self.num_experts, top_k=self.num_experts_per_tok,
            expert_intermediate=self.moe_intermediate_size, gated=False, num_shared=self.num_shared_experts,
            shared_intermediate=self.shared_expert_intermediate_size, latent=self.moe_latent_size,
        )  # fmt: skip

    def blocks(self, placement: Placement) -> Counter[str]:
        pattern = self.hybrid_override_pattern[placement.layer_start : placement.layer_end]
        return Counter(BLOCKS[c] for c in pattern)

    # ---- parameters ------------------------------------------------------------------------------

    def _block_params(self, block: str, tp: int = 1) -> tuple[float, float]:
        """(total, active) elements of one block incl. its pre-norm, on one of tp GPUs."""
        norm = float(self.hidden_size)
        if block == "mamba":
            p = self.mamba.params(tp) + norm
            return p, p
        if block == "attention":
            p = self.attention.weight_elements(tp) + norm
            return p, p
        if block == "mlp":
            p = mlp_params(self.hidden_size, self.intermediate_size // tp, gated=False) + norm
            return p, p
        total, active = self.moe_shape.total_and_active()
        return total + norm, active + norm

    def parameter_counts(self) -> ParameterCounts:
        parts: dict[str, float] = {}
        active = 0.0
        for block, n in Counter(BLOCKS[c] for c in self.hybrid_override_pattern).items():
            total_b, active_b = self._block_params(block)
            parts[block] = total_b * n
            active += active_b * n
        table = float(self.vocab_size * self.hidden_size)
        parts["embedding"], parts["lm_head"] = table, 0.0 if self.tie_word_embeddings else table
        parts["final_norm"] = float(self.hidden_size)
        active += parts["embedding"] + parts["lm_head"] + parts["final_norm"]
        total = sum(parts.values())
        if self.mtp_pattern:  # blocks + two norms and a 2d -> d projection
            parts["mtp"] = sum(self._block_params(BLOCKS[c])[0] for c in self.mtp_pattern)
            parts["mtp"] += 2 * self.hidden_size + 2 * self.hidden_size**2
            total += parts["mtp"]
        return ParameterCounts(total=total, active=active, by_component=parts)

    def check_parallel(self, tp: int, pp: int) -> None:
        local_heads(self.num_attention_heads, tp, "attention heads")
        local_kv_heads(self.num_key_value_heads, tp)
        local_heads(self.mamba_num_heads, tp, "Mamba heads")
        local_heads(self.n_groups, tp, "Mamba groups")
        if pp > self.num_layers:
            raise RooflineError(f"--pp {pp} exceeds the {self.num_layers} layers of {self.id}")

    def check_experts(self, ep: int, expert_tp: int) -> None:
        if ep > 1 and (not self.num_experts or self.num_experts % ep):
            raise RooflineError(f"--ep {ep} must divide the {self.num_experts} experts of {self.id}")
        if self.moe_intermediate_size % expert_tp:
            raise RooflineError(f"moe_intermediate_size is not divisible by the {expert_tp} GPUs sharing an expert")

    # ---- memory ----------------------------------------------------------------------------------

    def weight_bytes(self, precision: Precision, placement: Placement) -> float:
        w, a, tp = precision.weight.bytes_per_element, precision.activation.bytes_per_element, placement.tp
        total = 0.0
        for block, n in self.blocks(placement).items():
            if block == "moe":
                total += n * (moe_weight_bytes(self.moe_shape, precision, placement) + self.hidden_size * a)
            else:
                total += n * (self._block_params(block, tp)[0] - self.hidden_size) * w + n * self.hidden_size * a
        rows = self.vocab_size / placement.vocab_tp
        if placement.has_embedding:
            total += rows * self.hidden_size * a
        if placement.has_lm_head:
            head = rows * self.hidden_size * (w if placement.lm_head_quantized else a)
            total += self.hidden_size * a + (0.0 if self.tie_word_embeddings and placement.has_embedding else head)
        return total

    def kv_cache_bytes(self, tokens: int, precision: Precision, placement: Placement) -> float:
        """Attention layers grow with the context; Mamba layers hold a fixed state per sequence."""
        blocks = self.blocks(placement)
        kv = self.attention.kv_elements_per_token(placement.tp) * precision.kv_cache.bytes_per_element
        return blocks["attention"] * tokens * kv + blocks["mamba"] * self.mamba.state_bytes(precision, placement.tp)

    def kv_cache_bytes_per_token(self, precision: Precision) -> float:
        full = Placement(tp=1, layer_start=0, layer_end=self.num_layers)
        return self.kv_cache_bytes(2, precision, full) - self.kv_cache_bytes(1, precision, full)

    def activation_bytes(self, step: StepShape, precision: Precision, placement: Placement) -> float:
        t, tp = placement.local_batch(step.batch) * step.new_tokens, placement.tp
        widths = {
            "mamba": self.mamba.in_proj_width(tp),
            "attention": (self.num_attention_heads // tp + 2 * max(1, self.num_key_value_heads // tp)) * self.head_dim,
            "mlp": 2 * self.intermediate_size / tp,
            "moe": moe_activation_width(self.moe_shape, step, placement) if self.num_experts else 0.0,
        }
        widest = max(widths[b] for b in self.blocks(placement))
        logits = step.batch * self.vocab_size / placement.vocab_tp * 4.0 if placement.has_lm_head else 0.0
        return t * (2 * self.hidden_size + widest) * precision.activation.bytes_per_element + logits

    def stage_boundary_bytes(self, step: StepShape, precision: Precision) -> float:
        return step.tokens * self.hidden_size * precision.activation.bytes_per_element

    # ---- multi-token prediction ------------------------------------------------------------------

    @property
    def mtp_layers(self) -> int:
        return len(self.mtp_pattern)

    def mtp_ops(self, step: StepShape, precision: Precision, placement: Placement) -> list[Op]:
        if not self.mtp_pattern:
            return []
        t = step.tokens
        ops = [matmul_op("eh_proj", OpClass.MLP, t, self.hidden_size, 2 * self.hidden_size, precision, 1)]
        for block, n in Counter(BLOCKS[c] for c in self.mtp_pattern).items():
            ops += self._block_ops(block, step, precision, placement, n)
        ops += lm_head_ops(self.hidden_size, self.vocab_size, step, precision, placement)
        return [replace(op, name=f"mtp_{op.name}") for op in with_collectives(ops, placement)]

    def mtp_weight_bytes(self, precision: Precision, placement: Placement) -> float:
        """Approximation: the MTP layers' parameters spread over the stage's GPUs in the expert format."""
        params = self.parameter_counts().by_component.get("mtp", 0.0)
        return params / placement.moe_group * precision.experts.bytes_per_element

    # ---- operators -------------------------------------------------------------------------------

    def _block_ops(self, block: str, step: StepShape, precision: Precision, placement: Placement, n: int,
                   group_tokens: int | None = None) -> list[Op]:  # fmt: skip
        if block == "mamba":
            return mamba_ops(self.mamba, step, precision, placement, n)
        if block == "attention":
            return attention_block_ops(self.attention, step, precision, placement, n)
        if block == "mlp":
            return dense_mlp_ops(self.hidden_size, self.intermediate_size, False, step, precision, placement, n)
        return moe_ops(self.moe_shape, step, precision, placement, n, group_tokens)

    def build_ops(self, step: StepShape, precision: Precision, placement: Placement) -> list[Op]:
        local = StepShape(step.phase, placement.local_batch(step.batch), step.new_tokens, step.context_tokens)
        ops: list[Op] = []
        if placement.has_embedding:
            ops += embedding_ops(self.hidden_size, local, precision, placement.vocab_parallel)
        for block, n in self.blocks(placement).items():
            ops += self._block_ops(block, local, precision, placement, n, group_tokens=step.tokens)
        if placement.has_lm_head:
            ops += lm_head_ops(self.hidden_size, self.vocab_size, local, precision, placement)
        return with_collectives(ops, placement)

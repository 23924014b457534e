"""Mamba-2 (SSD) mixer operators and state.

A Mamba-2 layer keeps a fixed-size state per sequence instead of a KV cache that grows:
heads x head_dim x state_size SSM values (fp32 by default) plus the last conv_kernel - 1 inputs
of the causal conv1d over x, B and C. Decode reads and writes that state once per step, so its
cost does not depend on the context length. Prefill runs the chunked SSD algorithm: per token
a state update and read-out (2 x heads x head_dim x state FLOP each) plus the quadratic
intra-chunk term 2 x chunk x (groups x state + heads x head_dim) (Mamba-2 paper, Dao & Gu 2024, §6).
"""

from __future__ import annotations

from dataclasses import dataclass

from roofline.dtypes import DType
from roofline.ir import Op, OpClass, OpKind, Phase, Placement, Precision, StepShape
from roofline.workloads.layers import elementwise_op, matmul_op, partial_sum


@dataclass(frozen=True)
class MambaShape:
    hidden: int
    num_heads: int
    head_dim: int
    state_size: int
    n_groups: int
    conv_kernel: int
    chunk_size: int
    ssm_state_dtype: DType = DType.FP32

    @property
    def d_inner(self) -> int:
        return self.num_heads * self.head_dim

    def conv_width(self, tp: int = 1) -> int:
        return (self.d_inner + 2 * self.n_groups * self.state_size) // tp

    def in_proj_width(self, tp: int = 1) -> int:
        """z and x (d_inner each), B and C (groups x state each), dt (one per head)."""
        return (2 * self.d_inner + 2 * self.n_groups * self.state_size + self.num_heads) // tp

    def params(self, tp: int = 1) -> float:
        d = self.hidden
        conv = self.conv_width(tp) * (self.conv_kernel + 1)  # weights + bias
        per_head = 3 * self.num_heads // tp  # dt_bias, A_log, D
        return float(d * self.in_proj_width(tp) + conv + per_head + self.d_inner // tp + self.d_inner // tp * d)

    def state_bytes(self, precision: Precision, tp: int = 1) -> float:
        """Per sequence and layer: SSM state + conv state."""
        ssm = self.num_heads // tp * self.head_dim * self.state_size * self.ssm_state_dtype.bytes_per_element
        conv = self.conv_width(tp) * (self.conv_kernel - 1) * precision.activation.bytes_per_element
        return ssm + conv


def mamba_ops(shape: MambaShape, step: StepShape, precision: Precision, placement: Placement, count: int) -> list[Op]:
    """Norm, in projection (column-parallel over heads and groups), conv1d, scan, gated norm, out
    projection (row-parallel)."""
    t, d, tp = step.tokens, shape.hidden, placement.tp
    heads = placement.heads(shape.num_heads, "Mamba heads")
    local_groups = placement.heads(shape.n_groups, "Mamba groups")
    inner = heads * shape.head_dim
    state_elems = heads * shape.head_dim * shape.state_size
    conv = shape.conv_width(tp)
    per_token = 4.0 * state_elems  # state update + read-out
    if step.phase is Phase.PREFILL:
        # intra-chunk: C B^T per group (state-wide), then its product with X per head (head-wide)
        per_token += 2.0 * min(shape.chunk_size, step.new_tokens) * (local_groups * shape.state_size + inner)
    state_bytes = step.batch * state_elems * shape.ssm_state_dtype.bytes_per_element
    a = precision.activation.bytes_per_element
    scan = Op(
        name="ssm_scan", kind=OpKind.ATTENTION, op_class=OpClass.ATTENTION, dtype=precision.activation,
        flops=t * per_token,
        activation_bytes=t * (inner + 2 * local_groups * shape.state_size + heads + inner) * a,
        kv_read_bytes=state_bytes if step.phase is Phase.DECODE or step.prior_tokens else 0.0,
        kv_write_bytes=state_bytes, count=count,
    )  # fmt: skip
    return [
        elementwise_op("mamba_norm", OpClass.NORM, 2.0 * t * d, 2.0 * t * d, 5.0, precision, count),
        matmul_op("mamba_in_proj", OpClass.ATTENTION, t, shape.in_proj_width(tp), d, precision, count),
        elementwise_op(
            "mamba_conv1d",
            OpClass.ATTENTION,
            t * conv + step.batch * conv * (shape.conv_kernel - 1),
            t * conv,
            2.0 * shape.conv_kernel,
            precision,
            count,
        ),  # fmt: skip
        scan,
        elementwise_op("mamba_gated_norm", OpClass.NORM, 2.0 * t * inner, t * inner, 6.0, precision, count),
        matmul_op("mamba_out_proj", OpClass.ATTENTION, t, d, inner, precision, count,
                  sync=partial_sum("mamba_all_reduce", t, d, precision)),
    ]  # fmt: skip

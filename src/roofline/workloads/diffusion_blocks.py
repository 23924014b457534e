"""Operator builders for DiT blocks: the graph of one GPU at its placement's dimension sizes.

Conventions: d = hidden size, f = MLP width, B = sequences in the forward, n_* = this GPU's share
of the image / text tokens (`Placement.sequence_tokens`: 1/sp of them), N = all tokens of the joint
sequence. Linears run on the local tokens with the full weights. Attention is unified sequence
parallelism (USP, as in xDiT): the sp GPUs form `ulysses` x `ring` groups. Ulysses
(DeepSpeed-Ulysses) all-to-alls q, k, v over its group before attention and the output after, so
each GPU holds 1/ulysses of the heads for 1/ring of the tokens; ring attention then passes K and
V blocks around the ring group (ring - 1 hops), overlapped with the attention on the block at hand.
The builder asks the placement for each dimension's share and tags the exchanges (`ir.Sync`: the
q/k/v all-to-all after the op that feeds the attention, the ring pass and the output all-to-all
after it, the CFG gather after the scheduler step); `roofline.parallel.collectives` inserts the
collectives of the groups with more than one GPU, as for every family. Attention FLOPs are
bidirectional: 4 N_q N_kv d per block (QK^T and PV, no causal halving).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from roofline.ir import CollectiveKind, Op, OpClass, OpKind, Placement, Precision, Sync
from roofline.workloads.layers import elementwise_op, matmul_op

if TYPE_CHECKING:
    from roofline.workloads.diffusion_dit import DiffusionTransformer

ULYSSES_GROUP = "ulysses"
RING_GROUP = "ring"
CFG_GROUP = "cfg"


class BlockBuilder:
    def __init__(self, dit: DiffusionTransformer, image_tokens: int, batch: int, precision: Precision,
                 placement: Placement):  # fmt: skip
        self.dit, self.batch, self.precision, self.placement = dit, batch, precision, placement
        self.d, self.f = dit.hidden_size, dit.mlp_hidden
        self.n_img = placement.sequence_tokens(image_tokens)
        self.n_txt = placement.sequence_tokens(dit.text_tokens)
        self.heads_l = placement.ulysses_heads(dit.num_heads)
        self.a = precision.activation.bytes_per_element

    def _mm(self, name: str, cls: OpClass, m: int, n: int, k: int, count: int) -> Op:
        return matmul_op(name, cls, m, n, k, self.precision, count)

    def _ew(self, name: str, cls: OpClass, elements: float, count: int, read: float = 2.0) -> Op:
        return elementwise_op(name, cls, read * elements, elements, 5.0, self.precision, count)

    def _sync(self, name: str, kind: CollectiveKind, group: str, message_bytes: float, then: Sync | None = None
              ) -> Sync:  # fmt: skip
        return Sync(name, kind, group, message_bytes, self.precision.activation, then=then)

    def _a2a(self, name: str, tokens: int, width: int, then: Sync | None = None) -> Sync:
        return self._sync(name, CollectiveKind.ALL_TO_ALL, ULYSSES_GROUP, self.batch * tokens * width * self.a, then)

    def _sp_attention(self, feeding: Op, name: str, local_tokens: int, count: int) -> list[Op]:
        """`feeding` (the op whose q, k, v the attention reads), then the attention of one GPU over the
        whole sequence: the Ulysses q/k/v all-to-all after `feeding`, the output's after the attention;
        with a ring, q for 1/ring of the tokens and a K/V block of that size passed on each hop (the
        simulator overlaps the hops with the attention: `ring_kv_pass` right after it)."""
        shard = self.placement.ulysses_query_tokens(local_tokens)  # queries this GPU holds after the all-to-all
        block = 2.0 * self.batch * shard * self.heads_l * self.dit.head_dim * self.a  # K and V of the shard
        out = self._a2a("ulysses_out_all_to_all", local_tokens, self.d)
        ring = self._sync("ring_kv_pass", CollectiveKind.SEND_RECV, RING_GROUP, block, then=out)
        core = self._core(name, shard, self.placement.sequence_key_tokens(local_tokens), self.heads_l, count)
        return [replace(feeding, sync=self._a2a("ulysses_qkv_all_to_all", local_tokens, 3 * self.d)),
                replace(core, sync=ring)]  # fmt: skip

    def _core(self, name: str, q_tokens: int, kv_tokens: int, heads: int, count: int) -> Op:
        dh, b = self.dit.head_dim, self.batch
        return Op(
            name=name, kind=OpKind.ATTENTION, op_class=OpClass.ATTENTION, dtype=self.precision.activation,
            flops=b * 4.0 * heads * dh * q_tokens * kv_tokens,
            activation_bytes=b * (2.0 * q_tokens + 2.0 * kv_tokens) * heads * dh * self.a, count=count,
        )  # fmt: skip

    def _residual(self, name: str, m: int, count: int) -> Op:
        """x + gate * y (adaLN-Zero gate) or x + y: reads both streams, writes the residual."""
        return self._ew(name, OpClass.NORM, m * self.d, count)

    def _mlp(self, prefix: str, m: int, count: int) -> list[Op]:
        up = (2 if self.dit.mlp_gated else 1) * self.f
        return [
            self._ew(f"{prefix}mlp_norm", OpClass.NORM, m * self.d, count),
            self._mm(f"{prefix}mlp_up", OpClass.MLP, m, up, self.d, count),
            self._ew(f"{prefix}mlp_act", OpClass.MLP, m * self.f, count, read=up / self.f),
            self._mm(f"{prefix}mlp_down", OpClass.MLP, m, self.d, self.f, count),
        ]

    def _joint_attention(self, feeding: Op, count: int) -> list[Op]:
        """Attention over the whole joint (image + text) sequence."""
        return self._sp_attention(feeding, "attention", self.n_img + self.n_txt, count)

    def embed_ops(self) -> list[Op]:
        d, b, dit = self.d, self.batch, self.dit
        txt = b * (self.n_txt if not dit.cross_blocks else dit.text_tokens)
        ops = [
            self._mm("patch_embed", OpClass.EMBEDDING, b * self.n_img, d, dit.patch_dim, 1),
            self._mm("text_in", OpClass.EMBEDDING, txt, d, dit.text_dim, 1),
            self._mm("time_mlp", OpClass.EMBEDDING, b, d, d, 2 if dit.guidance_embed else 1),
        ]
        if dit.text_in_layers == 2:
            ops.append(self._mm("text_in_2", OpClass.EMBEDDING, txt, d, d, 1))
        if dit.shared_modulation:
            ops.append(self._mm("time_projection", OpClass.NORM, b, 6 * d, d, 1))
        if dit.pooled_dim:
            ops.append(self._mm("pooled_in", OpClass.EMBEDDING, b, d, dit.pooled_dim, 1))
        return ops

    def double_ops(self, count: int) -> list[Op]:
        """MMDiT joint block: per stream adaLN, qkv, proj and MLP with its own weights; joint attention."""
        d, ops = self.d, []
        streams = (("img_", self.batch * self.n_img), ("txt_", self.batch * self.n_txt))
        for prefix, m in streams:
            if self.dit.block_modulation:
                ops.append(self._mm(f"{prefix}modulation", OpClass.NORM, self.batch, 6 * d, d, count))
            ops += [
                self._ew(f"{prefix}attn_norm", OpClass.NORM, m * d, count),
                self._mm(f"{prefix}qkv", OpClass.ATTENTION, m, 3 * d, d, count),
                self._ew(f"{prefix}qk_norm_rope", OpClass.ATTENTION, m * 2 * d, count),
            ]
        ops[-1:] = self._joint_attention(ops[-1], count)
        for prefix, m in streams:
            ops += [
                self._mm(f"{prefix}attn_out", OpClass.ATTENTION, m, d, d, count),
                self._residual(f"{prefix}gated_residual", m, count),
                *self._mlp(prefix, m, count),
                self._residual(f"{prefix}gated_residual", m, count),
            ]
        return ops

    def single_ops(self, count: int) -> list[Op]:
        """FLUX single-stream block: one fused linear to qkv + MLP input, attention, one fused linear out."""
        d, f, b = self.d, self.f, self.batch
        m = b * (self.n_img + self.n_txt)
        ops = [self._mm("single_modulation", OpClass.NORM, b, 3 * d, d, count)] if self.dit.block_modulation else []
        return ops + [
            self._ew("single_norm", OpClass.NORM, m * d, count),
            self._mm("single_linear1", OpClass.MLP, m, 3 * d + f, d, count),
            *self._joint_attention(self._ew("single_qk_norm_rope", OpClass.ATTENTION, m * 2 * d, count), count),
            self._ew("single_mlp_act", OpClass.MLP, m * f, count, read=1.0),
            self._mm("single_linear2", OpClass.MLP, m, d, d + f, count),
            self._residual("gated_residual", m, count),
        ]

    def cross_ops(self, count: int) -> list[Op]:
        """Wan block: self-attention over the video tokens, cross-attention to the text, MLP."""
        d, b, dit = self.d, self.batch, self.dit
        m, txt = b * self.n_img, dit.text_tokens
        return [
            self._ew("self_attn_norm", OpClass.NORM, m * d, count),
            self._mm("self_qkv", OpClass.ATTENTION, m, 3 * d, d, count),
            *self._sp_attention(
                self._ew("self_qk_norm_rope", OpClass.ATTENTION, m * 2 * d, count), "self_attention", self.n_img, count
            ),
            self._mm("self_out", OpClass.ATTENTION, m, d, d, count),
            self._residual("gated_residual", m, count),
            self._ew("cross_attn_norm", OpClass.NORM, m * d, count),
            self._mm("cross_q", OpClass.ATTENTION, m, d, d, count),
            self._mm("cross_kv", OpClass.ATTENTION, b * txt, 2 * d, d, count),
            self._core("cross_attention", self.n_img, txt, dit.num_heads, count),
            self._mm("cross_out", OpClass.ATTENTION, m, d, d, count),
            self._residual("residual", m, count),
            *self._mlp("", m, count),
            self._residual("gated_residual", m, count),
        ]

    def final_ops(self) -> list[Op]:
        """The last layer and the scheduler step; under CFG parallelism the two branches' predictions
        (this GPU's tokens of each) are gathered after it."""
        d, b, dit = self.d, self.batch, self.dit
        m = b * self.n_img
        ops = [] if dit.shared_modulation else [self._mm("final_modulation", OpClass.NORM, b, 2 * d, d, 1)]
        gather = 2.0 * b * self.n_img * dit.patch_dim * self.a
        return ops + [
            self._ew("final_norm", OpClass.NORM, m * d, 1),
            self._mm("final_linear", OpClass.LM_HEAD, m, dit.patch_dim, d, 1),
            replace(self._ew("scheduler_step", OpClass.SAMPLING, m * dit.patch_dim, 1),
                    sync=self._sync("cfg_all_gather", CollectiveKind.ALL_GATHER, CFG_GROUP, gather)),
        ]  # fmt: skip

"""Parallelism as one transform: builders write the graph and tag where the group must combine;
roofline.parallel sizes the dimensions and inserts the collectives for every family alike."""

from __future__ import annotations

from itertools import pairwise

import pytest

from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.ir import CollectiveKind, Op, OpClass, OpKind, Phase, Placement, Precision, StepShape, Sync
from roofline.parallel.collectives import with_collectives
from roofline.parallel.stage import StageParallelism, stage_ops
from roofline.workloads import get_workload

DECODE = StepShape(Phase.DECODE, 16, 1, 1000)


def _ops(model: str, placement: Placement, step: StepShape = DECODE) -> list[Op]:
    w = get_workload(model)
    return w.build_ops(step, w.shipped_precision, placement)


@pytest.mark.parametrize(
    ("model", "placement"),
    [
        ("llama-3.1-70b", Placement(tp=8, layer_end=80)),
        ("qwen3-30b-a3b", Placement(tp=4, ep=4, layer_end=48)),
        ("deepseek-v3", Placement(tp=8, ep=8, layer_end=61)),
        ("deepseek-v4-flash", Placement(tp=2, layer_end=43)),
        ("nemotron-3-super", Placement(tp=8, ep=8, layer_end=88)),
    ],
)
def test_every_collective_is_the_tag_of_the_op_before_it(model: str, placement: Placement) -> None:
    """The unsplit graph has the same operators and no collective; on the split one each collective
    follows the op whose tag names it, for every tag whose group has more than one GPU."""
    unsplit = _ops(model, Placement(layer_end=placement.layer_end))
    split = _ops(model, placement)
    assert [op.name for op in unsplit] == [op.name for op in split if op.collective is None]
    tags = [op.sync.name for op in split if op.sync is not None and placement.group_size(op.sync.group) > 1]
    assert tags
    inserted = [(before.sync, op.collective, op.name) for before, op in pairwise(split) if op.collective]
    assert [name for *_, name in inserted] == tags
    for sync, collective, _ in inserted:
        assert sync is not None and collective is not None
        assert (collective.kind, collective.group, collective.message_bytes) == (
            sync.kind,
            sync.group,
            sync.message_bytes,
        )


def test_tp_divides_heads_and_ffn_and_replicates_kv_heads_beyond_their_count() -> None:
    """Llama 3.1 70B: 64 query heads, 8 KV heads of 128, FFN 28672. TP 8: (8 + 2 x 1) x 128 = 1280
    QKV columns; TP 16: 4 query heads and the one KV head each GPU keeps, (4 + 2) x 128 = 768."""
    shapes = {
        tp: {op.name: op.shape for op in _ops("llama-3.1-70b", Placement(tp=tp, layer_end=80)) if op.shape}
        for tp in (1, 8, 16)
    }
    assert [shapes[tp]["qkv_proj"].n for tp in (1, 8, 16)] == [(64 + 16) * 128, 1280, 768]  # type: ignore[union-attr]
    assert [shapes[tp]["down_proj"].k for tp in (1, 8, 16)] == [28672, 3584, 1792]  # type: ignore[union-attr]


def test_divisibility_messages_come_from_one_place() -> None:
    with pytest.raises(RooflineError, match=r"^attention heads \(64\) is not divisible by --tp 3; pick a tp"):
        Placement(tp=3).heads(64)
    with pytest.raises(RooflineError, match=r"^KV heads \(8\) and --tp 12 must divide one another"):
        Placement(tp=12).kv_heads(8)
    assert Placement(tp=16).kv_heads(8) == 1


def test_a_new_family_gets_its_collectives_from_tags_alone() -> None:
    """A graph written without any collective: the tag becomes one on a split group, nothing on one GPU."""
    sync = Sync("toy_all_reduce", CollectiveKind.ALL_REDUCE, "tp", 1024.0, DType.BF16)
    graph = [Op("toy_proj", OpKind.MATMUL, OpClass.MLP, DType.BF16, flops=1.0, count=3, sync=sync),
             Op("toy_norm", OpKind.ELEMENTWISE, OpClass.NORM, DType.BF16)]  # fmt: skip
    assert with_collectives(graph, Placement(tp=1)) == graph
    split = with_collectives(graph, Placement(tp=4))
    assert [op.name for op in split] == ["toy_proj", "toy_all_reduce", "toy_norm"]
    assert split[1].count == 3 and split[1].collective is not None
    assert split[1].collective.message_bytes == 1024.0
    assert [op.name for op in with_collectives(graph, Placement(tp=1, ep=4, attn_dp=4))] == ["toy_proj", "toy_norm"]


def test_sequence_parallelism_is_the_tp_variant_of_the_same_tags() -> None:
    """Every TP all-reduce becomes a reduce-scatter + all-gather of the same buffer; norms on 1/tp of
    the tokens; the MoE all-gather (EP without shared experts) and the EP all-to-alls stay."""
    w = get_workload("qwen3-30b-a3b")
    placement = Placement(tp=4, ep=4, layer_end=48)
    plain = stage_ops(w, DECODE, Precision(), placement, StageParallelism())
    sp = stage_ops(w, DECODE, Precision(), placement, StageParallelism(sequence_parallel=True))
    reduce = {op.name: op for op in plain if op.collective and op.collective.kind is CollectiveKind.ALL_REDUCE}
    assert set(reduce) == {"embedding_all_reduce", "attn_all_reduce"}
    names = [op.name for op in sp]
    for name, op in reduce.items():
        base = name.replace("all_reduce", "")
        scatter, gather = sp[names.index(f"{base}reduce_scatter")], sp[names.index(f"{base}all_gather")]
        assert scatter.collective and gather.collective and op.collective
        assert scatter.collective.message_bytes == gather.collective.message_bytes == op.collective.message_bytes
    assert {"moe_all_gather", "moe_dispatch", "moe_combine"} <= set(names)
    norm = next(op for op in plain if op.name == "attn_norm")
    assert next(op for op in sp if op.name == "attn_norm").flops == norm.flops / 4


# ---------------------------------------------------------------- diffusion transformers (USP, CFG parallel)


def _dit_ops(placement: Placement, tokens: int = 4096) -> list[Op]:
    dit = get_workload("flux.1-dev")
    return dit.forward_ops(tokens, 1, Precision(), placement)  # type: ignore[attr-defined]


def test_a_dit_gets_its_collectives_from_tags_like_every_family() -> None:
    """FLUX (24 heads, d 3072) on 8 GPUs as Ulysses 4 x ring 2 with CFG parallel: the one-GPU graph has
    the same operators and no collective; each collective follows the op whose tag names it."""
    alone = _dit_ops(Placement())
    split = _dit_ops(Placement(sequence_split=8, ring=2, cfg_split=2))
    assert not [op for op in alone if op.kind is OpKind.COLLECTIVE]
    names = [op.name for op in split]
    assert [op.name for op in split if op.collective is None] == [op.name for op in alone]
    pairs = (("txt_qk_norm_rope", "ulysses_qkv_all_to_all"), ("single_qk_norm_rope", "ulysses_qkv_all_to_all"),
             ("attention", "ring_kv_pass"), ("ring_kv_pass", "ulysses_out_all_to_all"),
             ("scheduler_step", "cfg_all_gather"))  # fmt: skip
    for before, after in pairs:
        assert after in {names[i + 1] for i, name in enumerate(names[:-1]) if name == before}, (before, after)
    # by hand: 4096 image + 512 text tokens over 8 GPUs = 512 + 64 each; bf16
    qkv = next(op for op in split if op.name == "ulysses_qkv_all_to_all")
    assert qkv.collective is not None and qkv.collective.message_bytes == (512 + 64) * 3 * 3072 * 2
    ring = next(op for op in split if op.name == "ring_kv_pass")
    assert ring.collective is not None and ring.collective.message_bytes == 2.0 * (576 * 4) * (24 // 4) * 128 * 2
    gather = next(op for op in split if op.name == "cfg_all_gather")
    assert gather.collective is not None and gather.collective.message_bytes == 2.0 * 512 * 64 * 2
    attention = next(op for op in split if op.name == "attention")
    assert attention.flops == 4.0 * (24 // 4) * 128 * (576 * 4) * (576 * 8)


def test_a_dit_group_of_one_gpu_inserts_nothing() -> None:
    """Pure ring (sequence_split = ring): no Ulysses all-to-all; pure Ulysses: no ring pass."""
    ring_only = [op.name for op in _dit_ops(Placement(sequence_split=4, ring=4))]
    ulysses_only = [op.name for op in _dit_ops(Placement(sequence_split=4))]
    assert "ring_kv_pass" in ring_only and "ulysses_qkv_all_to_all" not in ring_only
    assert "ulysses_qkv_all_to_all" in ulysses_only and "ring_kv_pass" not in ulysses_only
    assert "cfg_all_gather" not in ring_only + ulysses_only

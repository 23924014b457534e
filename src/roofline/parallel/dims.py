"""How a parallel group splits each named dimension of the operator graph: the one place for the
divisibility rules and their messages. `Placement` (ir) asks these for one GPU's share."""

from __future__ import annotations

from roofline.errors import RooflineError


def split_heads(num_heads: int, tp: int, what: str) -> int:
    """Heads (attention, Mamba, groups of heads) split evenly over the TP group."""
    if num_heads % tp:
        raise RooflineError(f"{what} ({num_heads}) is not divisible by --tp {tp}; pick a tp that divides it")
    return num_heads // tp


def split_kv_heads(num_kv_heads: int, tp: int) -> int:
    """KV heads per GPU; when tp exceeds the KV heads, each GPU keeps one (replicated)."""
    if num_kv_heads % tp == 0:
        return num_kv_heads // tp
    if tp % num_kv_heads == 0:
        return 1
    raise RooflineError(
        f"KV heads ({num_kv_heads}) and --tp {tp} must divide one another (replication needs tp to be a "
        "multiple of the KV heads)"
    )


def split_width(width: int, parts: int) -> int:
    """A hidden width (FFN, expert FFN) split column-wise; the model checks divisibility up front."""
    return width // parts


def split_padded(size: int, parts: int) -> int:
    """A dimension padded up to a multiple of the parts (the vocabulary, the replica's batch)."""
    return -(-size // parts)


def split_ulysses_heads(num_heads: int, ulysses: int) -> int:
    """A DiT's heads over its Ulysses group (the model checks divisibility up front: check_sp)."""
    return num_heads // ulysses

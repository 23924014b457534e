"""The software a diffusion pipeline runs on (simulator/data/diffusion/runtime.yaml): which
attention kernel family PyTorch picks, and whether elementwise operators run fused (torch.compile)
or as several eager kernels, each a pass over the operator's tensors."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from roofline.hardware_specs.schema import Accelerator
from roofline.ir import Op, OpKind
from roofline.yaml_io import read_yaml

RUNTIME_FILE = Path(__file__).parent / "data" / "diffusion" / "runtime.yaml"
STREAM_PREFIXES = ("img_", "txt_")


@dataclass(frozen=True)
class RuntimeTable:
    default_attention_kernel: str
    eager_passes: dict[str, int]


@lru_cache(maxsize=1)
def runtime_table() -> RuntimeTable:
    raw = read_yaml(RUNTIME_FILE)
    return RuntimeTable(str(raw["default_attention_kernel"]), {k: int(v) for k, v in raw["eager_passes"].items()})


@dataclass(frozen=True)
class DiffusionRuntime:
    attention_kernel: str | None = None  # None: the runtime table's default (PyTorch SDPA: fa2)
    compiled: bool = False  # torch.compile: elementwise operators fused; eager: one kernel per step

    @property
    def kernel(self) -> str:
        return self.attention_kernel or runtime_table().default_attention_kernel

    def describe(self) -> str:
        return f"{self.kernel} attention, {'torch.compile (fused elementwise)' if self.compiled else 'eager PyTorch'}"


def kernel_label(runtime: DiffusionRuntime, accelerator: Accelerator, fraction: float) -> str:
    """The attention kernel as charged: the family, or the accelerator's default when it lists no
    fraction for that family (say so: the default may be another kernel)."""
    if runtime.kernel in accelerator.efficiency.attention_kernels:
        return f"{runtime.kernel} ({fraction:.0%} of peak)"
    return f"{runtime.kernel} not listed for {accelerator.id}: its default attention fraction ({fraction:.0%})"


def eager_passes(name: str) -> int:
    for prefix in STREAM_PREFIXES:
        name = name.removeprefix(prefix)
    return runtime_table().eager_passes.get(name, 1)


def apply_runtime(ops: list[Op], runtime: DiffusionRuntime) -> list[Op]:
    """Eager mode: every elementwise operator becomes its pass count of kernels, each moving the
    operator's activations once more. Compiled: unchanged (one fused pass)."""
    if runtime.compiled:
        return ops
    out = []
    for op in ops:
        passes = eager_passes(op.name) if op.kind is OpKind.ELEMENTWISE else 1
        out.append(op if passes == 1 else replace(op, activation_bytes=op.activation_bytes * passes,
                                                  kernels=op.kernels * passes))  # fmt: skip
    return out

"""The diffusion options of `estimate` and `is_diffusion`: what the CLI needs before it knows the
model is a diffusion model, without importing the diffusion estimators (roofline.api.diffusion)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from roofline.errors import RooflineError

if TYPE_CHECKING:
    from roofline.api.query import ModelArg
    from roofline.simulator.diffusion_runtime import DiffusionRuntime
    from roofline.workloads import Workload

DEFAULT_ISL = 1024  # estimate's --isl default: for a diffusion LM the prompt length
ATTENTION_KERNELS = ("fa2", "fa3")


def is_diffusion(workload: Workload) -> bool:
    """An image/video diffusion transformer or a diffusion LM (timed per image, video or request)."""
    return workload.is_diffusion


def refuse_diffusion_for_estimate(model: ModelArg) -> None:
    from roofline.workloads import Workload, get_workload

    workload = model if isinstance(model, Workload) else get_workload(model)
    if is_diffusion(workload):
        raise RooflineError(f"{workload.id} is a diffusion model ({workload.kind}); use estimate_diffusion("
                            f"'{workload.id}', ...) (the CLI's roofline estimate dispatches by itself)")  # fmt: skip


@dataclass(frozen=True)
class DiffusionOptions:
    resolution: str | None = None
    video: str | None = None
    steps: int | None = None
    cfg: bool | None = None
    cfg_parallel: bool = False
    gen_len: int | None = None
    block_len: int | None = None
    cache: str | None = None
    compare_ar: str | None = None
    sp: int | None = None  # GPUs splitting the tokens; None: no sequence parallelism
    ring: int | None = None  # ring-attention degree inside sp
    preset: str | None = None
    attention_kernel: str | None = None
    compile: bool | None = None
    weight_dtype: str | None = None  # a language-model option too, so not in given()

    @property
    def runtime(self) -> DiffusionRuntime:
        from roofline.simulator.diffusion_runtime import DiffusionRuntime

        if self.attention_kernel is not None and self.attention_kernel not in ATTENTION_KERNELS:
            raise RooflineError(f"--attention-kernel must be one of {', '.join(ATTENTION_KERNELS)}, "
                                f"got {self.attention_kernel!r}")  # fmt: skip
        return DiffusionRuntime(self.attention_kernel, bool(self.compile))

    def given(self) -> list[str]:
        """The diffusion-only options given (--sp is not one: language models take it too)."""
        names = {"resolution": "--resolution", "video": "--video", "steps": "--steps", "cfg": "--cfg/--no-cfg",
                 "gen_len": "--gen-len", "block_len": "--block-len", "cache": "--cache",
                 "compare_ar": "--compare-ar", "ring": "--ring", "preset": "--preset",
                 "attention_kernel": "--attention-kernel", "compile": "--compile/--eager"}  # fmt: skip
        listed = [flag for attr, flag in names.items() if getattr(self, attr) is not None]
        return listed + (["--cfg-parallel"] if self.cfg_parallel else [])

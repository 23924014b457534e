"""How a kernel row was timed, where that adds to the kernel's own time.

A kernel timed in isolation from eager PyTorch (one call between two CUDA events, the stream idle
before it) includes the host-side launch of that call; a kernel replayed from a CUDA graph
(AIConfigurator's tables) or timed back to back does not. `timing_overhead_s` is what the row's
timing method adds to the kernel time the cost model gives; the methods, the text of a row's
`source` that names each, and the measured overhead are data (timing_harness.yaml).
"""

from __future__ import annotations

import statistics
from functools import lru_cache
from pathlib import Path
from typing import Annotated, cast

from pydantic import BaseModel, ConfigDict, Field

from roofline.validation.cases import Case
from roofline.yaml_io import FittedOn, read_yaml, validate_into

HARNESS_FILE = Path(__file__).parent / "timing_harness.yaml"


class TimingPair(BaseModel):
    """One shape timed both ways on the same GPU."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_id: str
    dtype: str
    shape: str
    isolated_us: float
    back_to_back_us: float


class TimingMethod(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source_contains: list[str] = Field(min_length=1)  # a row whose `source` holds one of these
    overhead_s: Annotated[float, Field(ge=0.0)]
    source: str = Field(min_length=3)
    fitted_on: FittedOn = Field(default_factory=list)
    pairs: list[TimingPair] = Field(default_factory=list)
    # host time of one framework call of each kind relative to the call the pairs timed (a matmul): the
    # dispatch the GPU idles through grows with the call's host work
    call_weights: dict[str, Annotated[float, Field(gt=0.0)]] = Field(default_factory=dict)
    call_weights_source: str = ""

    def overhead_for_s(self, call: str) -> float:
        """`overhead_s` for one call of this kind (the timed kind, or one without a weight: as measured)."""
        weights = self.call_weights
        if call not in weights or "matmul" not in weights:
            return self.overhead_s
        return self.overhead_s * weights[call] / weights["matmul"]

    def paired_overhead_s(self) -> float:
        """The median difference of the pairs (what `overhead_s` was derived as)."""
        return statistics.median(p.isolated_us - p.back_to_back_us for p in self.pairs) * 1e-6


class TimingHarness(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    methods: dict[str, TimingMethod]


@lru_cache(maxsize=1)
def timing_harness() -> TimingHarness:
    return cast(TimingHarness, validate_into(TimingHarness, read_yaml(HARNESS_FILE), f"'{HARNESS_FILE}'"))


def timing_method(case: Case) -> str | None:
    """The name of the timing method the row's `source` names, None: a method that adds nothing."""
    for name, method in timing_harness().methods.items():
        if any(marker in case.source for marker in method.source_contains):
            return name
    return None


def timing_overhead_s(case: Case, call: str = "matmul") -> float:
    """Seconds the row's timing method adds to one framework call of kind `call` (0: none modelled)."""
    name = timing_method(case)
    return 0.0 if name is None else timing_harness().methods[name].overhead_for_s(call)

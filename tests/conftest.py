"""Shared fixtures: the packaged catalogs and a small helper to run estimates."""

from __future__ import annotations

from pathlib import Path

import pytest

from roofline.dtypes import DType
from roofline.hardware_specs import resolve_cluster
from roofline.ir import Precision
from roofline.simulator import ParallelPlan, Scenario, estimate
from roofline.simulator.results import EstimateResult
from roofline.workloads import get_workload

FIXTURES = Path(__file__).parent / "fixtures"


def run(
    model: str = "llama-3.1-8b",
    hardware: str = "h100-sxm",
    tp: int = 1,
    pp: int = 1,
    batch: int = 1,
    isl: int = 128,
    osl: int = 16,
    weight: str = "bf16",
    kv: str | None = None,
    ideal: bool = False,
) -> EstimateResult:
    precision = Precision(weight=DType(weight), kv_cache=DType(kv or weight))
    plan = ParallelPlan(tp=tp, pp=pp)
    cluster = resolve_cluster(hardware=hardware, num_gpus=plan.num_gpus)
    return estimate(get_workload(model), cluster, Scenario(batch, isl, osl, precision, plan), ideal=ideal)


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES

"""`rl.plan`: the cheapest configurations that serve a request rate within TTFT and TPOT p99 targets."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from roofline.api.query import ModelArg
from roofline.api.sweeps import Axis, Names, axis_values, names
from roofline.errors import RooflineError
from roofline.planner import grid
from roofline.planner.search import DEFAULT_BATCHES, PlanRequest, PlanResult
from roofline.planner.search import plan as run_plan
from roofline.result import Result, html_table
from roofline.units import Dimension, parse_quantity
from roofline.workloads import Workload

Latency = str | float  # '500ms', '2 s'; a bare number in a string is milliseconds (as on the command line)


def latency_s(value: Latency, option: str) -> float:
    """'500ms', '2 s', '40us'; a bare number written as text is milliseconds (the CLI's rule); a
    Python number is seconds (SI inside)."""
    if isinstance(value, int | float):
        return float(value)
    try:
        if re.fullmatch(r"\s*(\d+\.?\d*|\.\d+)\s*", value):
            return float(value) * 1e-3
        return parse_quantity(value, Dimension.TIME)
    except ValueError as exc:
        raise RooflineError(f"{option}: {exc}") from None


def prices(value: str | Mapping[str, float] | None) -> dict[str, float]:
    """'h100-sxm=2.5,b200=5' (or a mapping) -> $/GPU-hour by accelerator."""
    found: dict[str, float] = {}
    items = (
        value.items()
        if isinstance(value, Mapping)
        else ((item.partition("=")[0], item.partition("=")[2]) for item in (grid.parse_names(value) if value else []))
    )
    for name, text in items:
        try:
            found[name.strip()] = float(text)
        except ValueError:
            raise RooflineError(f"--price: cannot read '{name}={text}'; write ID=DOLLARS_PER_GPU_HOUR, e.g. "
                                "h100-sxm=2.5") from None  # fmt: skip
        if not (math.isfinite(found[name.strip()]) and found[name.strip()] > 0):  # NaN fails both
            raise RooflineError(f"--price: '{name}={text}' must be a finite positive number of $/GPU-hour")
    return found


@dataclass(frozen=True, repr=False)
class PlanReport(Result):
    """`best`: configurations that meet every target, cheapest first; `closest` (when none does):
    the nearest misses and what each fails; `pareto`: tokens/s per GPU vs per user; `recheck`: the
    best picks simulated; `recommended`: the cheapest pick the simulator confirms."""

    result: PlanResult

    @property
    def feasible(self) -> bool:
        return self.result.feasible

    @property
    def best(self) -> list[dict[str, Any]]:
        return self.result.best

    @property
    def recommended(self) -> dict[str, Any] | None:
        return self.result.recommended

    def to_dict(self) -> dict[str, Any]:
        result, req = self.result, self.result.request
        return {
            "request": {"model": req.model_id, "isl": req.isl, "osl": req.osl, "rate_per_s": req.rate_per_s,
                        "ttft_p99_s": req.ttft_p99_s, "tpot_p99_s": req.tpot_p99_s, "max_gpus": req.max_gpus,
                        "prices_per_gpu_hour": req.prices_per_gpu_hour, "engine": req.engine},
            "feasible": result.feasible, "searched": result.searched, "search_s": result.search_s,
            "failing": result.failing, "best": result.best, "closest": result.closest, "recheck": result.recheck,
            "recommended": result.recommended, "pareto": result.pareto,
        }  # fmt: skip

    def records(self) -> list[dict[str, Any]]:
        """best, closest and pareto rows with their section: the CLI's --format csv."""
        sections = (("best", self.result.best), ("closest", self.result.closest), ("pareto", self.result.pareto))
        return [{"section": name, **row} for name, rows in sections for row in rows]

    def overview(self) -> list[tuple[str, Any]]:
        req, r = self.result.request, self.result.recommended
        pick = (f"{r['hardware']} {r['weight_dtype']} tp {r['tp']} x pp {r['pp']}, {r['gpus']} GPUs"
                if r else "none confirmed")  # fmt: skip
        return [("model", req.model_id), ("rate", f"{req.rate_per_s:g} requests/s"), ("feasible", self.feasible),
                ("searched", self.result.searched), ("recommended", pick)]  # fmt: skip

    def _repr_html_(self) -> str:
        return html_table("PlanReport", self.overview(), self.result.best or self.result.closest)


def plan(
    model: ModelArg, hardware: Names | None = None, *, isl: int, osl: int, rate: float, ttft_p99: Latency,
    tpot_p99: Latency, max_gpus: int = 1024, price: str | Mapping[str, float] | None = None,
    weight_dtype: Names | None = None, batch: Axis | None = None, engine: str = "trtllm", top: int = 5,
    recheck: int = 3,
) -> PlanReport:  # fmt: skip
    """The cheapest configurations that serve `rate` requests/s within the TTFT and TPOT p99 targets
    (`roofline plan`); hardware defaults to every released accelerator, formats to shipped and fp8."""
    request = PlanRequest(
        model=model if isinstance(model, str | Workload) else os.fspath(model), isl=isl, osl=osl, rate_per_s=rate,
        ttft_p99_s=latency_s(ttft_p99, "--ttft-p99"),
        tpot_p99_s=latency_s(tpot_p99, "--tpot-p99"), hardware=tuple(names(hardware)) if hardware else (),
        max_gpus=max_gpus, prices_per_gpu_hour=prices(price),
        weight_dtypes=tuple(names(weight_dtype)) if weight_dtype else (),
        batches=tuple(axis_values(batch, "--batch")) if batch is not None else DEFAULT_BATCHES, engine=engine,
        top=top, recheck=recheck,
    )  # fmt: skip
    return PlanReport(run_plan(request))

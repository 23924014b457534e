"""`rl.sweep`: estimate a grid of configurations (or serve each at request rates); a table of rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from roofline import __version__
from roofline.errors import RooflineError
from roofline.executors import Executor
from roofline.hardware_specs import Accelerator
from roofline.planner import grid
from roofline.planner.sweep import AXES, SweepRequest, best_rows, run_sweep, sweep_inputs
from roofline.result import Result, html_table
from roofline.simulator.plan import DEFAULT_MAX_NUM_TOKENS
from roofline.simulator.serving.engine_config import load_engine
from roofline.workloads import Workload

Axis = str | int | Sequence[int]  # "1,2,4", "1:256:x2", 8 or [1, 2, 4]
Names = str | Sequence[str]  # "h100-sxm,b200" or ["h100-sxm", "b200"]
Models = str | Workload | Sequence[str | Workload]  # ids (comma lists), paths or objects
Hardware = str | Accelerator | Sequence[str | Accelerator]
# what a row that does not fit leaves empty unless timed on request
_TIMED_KEYS = ("ttft_batch_s", "ttft_s", "tpot_s", "output_tokens_per_s", "output_tokens_per_s_per_gpu",
               "output_tokens_per_s_per_user")  # fmt: skip


def axis_values(value: Axis, option: str) -> list[int]:
    if isinstance(value, str):
        return grid.parse_ints(value, option)
    values = [value] if isinstance(value, int) else list(value)
    if not values or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
        raise RooflineError(f"{option}: values must be positive integers, got {value!r}")
    return list(dict.fromkeys(values))


def names(value: Names) -> list[str]:
    return grid.parse_names(value) if isinstance(value, str) else grid.parse_names(",".join(value))


def entries(value: Models | Hardware) -> list[Any]:
    """Comma lists of ids split; objects (a what-if model or accelerator) kept as they are."""
    listed: Sequence[Any] = [value] if isinstance(value, str | Workload | Accelerator) else value
    found: list[Any] = []
    for item in listed:
        found += grid.parse_names(item) if isinstance(item, str) else [item]
    if not found:
        raise RooflineError("an empty list of models or hardware")
    return found


def rates(value: float | str | Sequence[float]) -> tuple[float, ...]:
    """--request-rate: requests/s as a comma list or numbers."""
    if isinstance(value, int | float):
        return (float(value),)
    if not isinstance(value, str):
        return tuple(float(v) for v in value)
    try:
        found = tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise RooflineError(f"--request-rate takes requests/s separated by commas, e.g. 1,2,4; got '{value}'") from None
    if not found:
        raise RooflineError("--request-rate needs at least one rate")
    return found


@dataclass(frozen=True, repr=False)
class SweepTable(Result):
    """One row per configuration (and per rate when served), SI units; `skipped` counts the
    configurations that cannot be split that way, by reason. `inputs` are the sweep's assumptions."""

    table: tuple[dict[str, Any], ...]
    skipped: dict[str, int]
    inputs: tuple[tuple[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": dict(self.inputs), "rows": list(self.table), "skipped": self.skipped}

    def records(self) -> list[dict[str, Any]]:
        return list(self.table)

    def best(self, key: str = "output_tokens_per_s_per_gpu") -> list[dict[str, Any]]:
        """The rows that fit in memory, highest `key` first."""
        return best_rows(self.table, key)

    def overview(self) -> list[tuple[str, Any]]:
        best = self.best()
        top = best[0] if best else None
        described = (f"{top['model']} on {top['hardware']} tp {top['tp']} pp {top['pp']} batch {top['batch']}: "
                     f"{top['output_tokens_per_s_per_gpu']:,.0f} tokens/s per GPU") if top else "none fits"  # fmt: skip
        return [("configurations", len(self.table)), ("skipped", sum(self.skipped.values())),
                ("best fitting", described)]  # fmt: skip

    def _repr_html_(self) -> str:
        return html_table("SweepTable", self.overview(), self.best() or list(self.table))


def _mask_unfit(row: dict[str, Any], ignore_memory: bool) -> dict[str, Any]:
    """A configuration that does not fit keeps its memory columns; its latency only on request."""
    if row.get("fits", True) or "request_rate_per_s" in row:
        return row
    if ignore_memory:
        return {**row, "hypothetical": True}
    return {**row, **{k: None for k in _TIMED_KEYS if k in row}}


def sweep(
    model: Models, hardware: Hardware, *, tp: Axis = "1", pp: Axis = "1", ep: Axis = "1", attn_dp: Axis = "1",
    batch: Axis = "1", isl: Axis = "1024", osl: Axis = "128", weight_dtype: Names | None = None,
    kv_dtype: str | None = None, max_num_tokens: int = DEFAULT_MAX_NUM_TOKENS, engine: str | None = None,
    exact: bool = False, request_rate: float | str | Sequence[float] | None = None, num_requests: int = 300,
    ignore_memory: bool = False, progress: Callable[[int], None] | None = None, jobs: int | None = 1,
    executor: Executor = "local", scheduler: str | None = None,
) -> SweepTable:  # fmt: skip
    """Estimate a grid of configurations (`roofline sweep`): models x hardware x weight formats x the
    integer axes (lists "1,2,4", ranges "1:256:x2"). With `request_rate` every configuration is served
    at each rate instead (batch = the engine's batch limit). `progress(n)` is called as points finish.
    The grid runs in chunks in this process (`jobs` 1), on `jobs` processes of this machine (None:
    its cores) or, with `executor="dask"`, on the workers of the Dask scheduler at `scheduler`
    ("tcp://host:8786", needs roofline[dask]); the table is the same wherever they ran."""
    values = {"tp": tp, "pp": pp, "ep": ep, "attn_dp": attn_dp, "batch": batch, "isl": isl, "osl": osl}
    axes = {name: axis_values(values[name], "--" + name.replace("_", "-")) for name in AXES}
    dtypes: tuple[str | None, ...] = tuple(names(weight_dtype)) if weight_dtype else (None,)
    profile = load_engine(engine) if engine else None
    served = rates(request_rate) if request_rate is not None else ()
    request = SweepRequest(tuple(entries(model)), tuple(entries(hardware)), axes, dtypes, kv_dtype, max_num_tokens,
                           profile, exact, served, num_requests)  # fmt: skip
    rows, skipped = run_sweep(request, progress, executor=executor, jobs=jobs, scheduler=scheduler)
    if not rows:
        reason = max(skipped.items(), key=lambda kv: kv[1])[0] if skipped else "empty grid"
        raise RooflineError(f"no configuration in the grid is valid (e.g. {reason})")
    table = tuple(_mask_unfit(r, ignore_memory) for r in rows)
    return SweepTable(table, skipped, tuple(sweep_inputs(request, engine, __version__)))

"""Published latencies of the diffusion catalog models (diffusion_published.yaml) against the
estimator: `roofline validate --diffusion`. Each row is predicted with the runtime it was measured
on (eager or torch.compile; sequence-parallel degree and ring) and the error is predicted /
measured - 1; the summary groups rows by model kind, GPU count and runtime."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field

from roofline.errors import RooflineError
from roofline.hardware_specs import resolve_cluster
from roofline.ir import Precision
from roofline.result import Result
from roofline.simulator.diffusion import DitScenario, estimate_dit
from roofline.simulator.diffusion_lm import DlmScenario, estimate_dlm
from roofline.simulator.diffusion_runtime import DiffusionRuntime
from roofline.workloads import get_workload
from roofline.workloads.diffusion_dit import DiffusionTransformer, Request
from roofline.workloads.diffusion_lm import DiffusionLM
from roofline.workloads.dit_presets import parse_size
from roofline.yaml_io import validate_into

DATA_FILE = Path(__file__).parent / "diffusion_published.yaml"


class DiffusionCase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    model: str
    hardware: str
    gpus: int = Field(gt=0)
    steps: int = Field(gt=0)
    compiled: bool = False
    attention_kernel: str | None = None
    measured_latency_s: float = Field(gt=0)
    in_summary: bool = True
    # DiT
    request: str | None = Field(default=None, description="WxH image or WxHxF video")
    cfg: bool | None = None
    sp: int = Field(default=1, gt=0)
    ring: int = Field(default=1, gt=0)
    # diffusion LM
    prompt_len: int | None = Field(default=None, gt=0)
    gen_len: int | None = Field(default=None, gt=0)
    block_len: int | None = Field(default=None, gt=0)
    cache: str | None = None
    # provenance
    scope: Literal["end_to_end", "denoise_only", "unknown"]
    software: str
    source: str
    quote: str
    confidence: Literal["high", "medium", "low"]
    why: str = ""

    @property
    def runtime(self) -> DiffusionRuntime:
        return DiffusionRuntime(self.attention_kernel, self.compiled)

    @property
    def group(self) -> str:
        kind = "diffusion LM" if self.prompt_len is not None else "DiT"
        gpus = "1 GPU" if self.gpus == 1 else "multi-GPU"
        return f"{kind}, {gpus}, {'torch.compile' if self.compiled else 'eager'}"

    def setting(self) -> str:
        if self.prompt_len is not None:
            return f"prompt {self.prompt_len}, gen {self.gen_len}, {self.steps} steps, cache {self.cache}"
        parallel = f", sp {self.sp}" + (f" ring {self.ring}" if self.ring > 1 else "") if self.sp > 1 else ""
        return f"{self.request}, {self.steps} steps{', CFG' if self.cfg else ''}{parallel}"


@lru_cache(maxsize=4)
def load_cases(path: Path = DATA_FILE) -> tuple[DiffusionCase, ...]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RooflineError(f"cannot read '{path}': {exc}") from None
    except yaml.YAMLError:
        raise RooflineError(f"'{path}' is not valid YAML; it must be a list of measurements") from None
    if not isinstance(raw, list) or not all(isinstance(row, dict) for row in raw):
        raise RooflineError(f"'{path}' must hold a list of measurements (mappings of fields)")
    cases = tuple(cast(DiffusionCase, validate_into(DiffusionCase, row, f"'{path}' row {i + 1}"))
                  for i, row in enumerate(raw))  # fmt: skip
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise RooflineError(f"'{path}': id '{case.id}' appears twice; ids must be unique")
        seen.add(case.id)
    return cases


def _request(case: DiffusionCase, batch: int = 1) -> Request:
    text = case.request or ""
    sizes = parse_size(text, f"{case.id}: request", 3 if text.lower().count("x") == 2 else 2)
    return Request(width=sizes[0], height=sizes[1], frames=sizes[2] if len(sizes) == 3 else 1, batch=batch)


def predict_latency_s(case: DiffusionCase) -> float:
    """The prediction for the row's scope: denoising only, or the whole request (unknown: the whole)."""
    workload = get_workload(case.model)
    cluster = resolve_cluster(hardware=case.hardware, num_gpus=case.gpus)
    precision = Precision(weight=workload.weight_dtype)
    if isinstance(workload, DiffusionTransformer):
        cfg = workload.cfg_default if case.cfg is None else case.cfg
        request = _request(case)
        if request.frames > 1 and not workload.is_video:
            raise RooflineError(f"{case.id}: {case.model} makes images; its request must be WxH, not {case.request}")
        scenario = DitScenario(request, case.steps, cfg, case.sp, precision=precision, ring=case.ring,
                               runtime=case.runtime)  # fmt: skip
        result = estimate_dit(workload, cluster, scenario)
        return result.denoise_s if case.scope == "denoise_only" else result.latency_s
    if isinstance(workload, DiffusionLM):
        if case.prompt_len is None or case.gen_len is None:
            raise RooflineError(f"{case.id}: a diffusion-LM row needs prompt_len and gen_len")
        s = DlmScenario(case.prompt_len, case.gen_len, case.steps, case.block_len or case.gen_len, case.cache or "none",
                        1, 1, Precision(weight=workload.weight_dtype, kv_cache=workload.kv_cache_dtype),
                        case.runtime)  # fmt: skip
        return estimate_dlm(workload, cluster, s).latency_s
    raise RooflineError(f"{case.id}: {case.model} is not a diffusion model")


@dataclass(frozen=True)
class DiffusionRow:
    case: DiffusionCase
    predicted_s: float

    @property
    def error(self) -> float:
        return self.predicted_s / self.case.measured_latency_s - 1.0

    def to_dict(self) -> dict[str, Any]:
        c = self.case
        return {"id": c.id, "model": c.model, "hardware": c.hardware, "gpus": c.gpus, "setting": c.setting(),
                "runtime": c.runtime.describe(), "group": c.group, "measured_latency_s": c.measured_latency_s,
                "predicted_latency_s": self.predicted_s, "error": self.error, "in_summary": c.in_summary,
                "confidence": c.confidence, "scope": c.scope, "source": c.source}  # fmt: skip


@dataclass(frozen=True)
class GroupSummary:
    group: str
    count: int
    mape: float
    median_ape: float
    max_ape: float
    mean_error: float  # signed: negative = predicted faster than measured

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "rows": self.count, "mape": self.mape, "median_ape": self.median_ape,
                "max_ape": self.max_ape, "mean_error": self.mean_error}  # fmt: skip


def _summary(group: str, rows: list[DiffusionRow]) -> GroupSummary:
    apes = [abs(r.error) for r in rows]
    return GroupSummary(group, len(rows), statistics.fmean(apes), statistics.median(apes), max(apes),
                        statistics.fmean(r.error for r in rows))  # fmt: skip


def summarize(rows: list[DiffusionRow]) -> list[GroupSummary]:
    """One line per group of rows in the summary, then all of them."""
    counted = [r for r in rows if r.case.in_summary]
    groups = sorted({r.case.group for r in counted})
    out = [_summary(g, [r for r in counted if r.case.group == g]) for g in groups]
    return out + ([_summary("all rows in the summary", counted)] if counted else [])


def validate_diffusion(path: Path = DATA_FILE) -> tuple[list[DiffusionRow], list[GroupSummary]]:
    rows = [DiffusionRow(case, predict_latency_s(case)) for case in load_cases(path)]
    return rows, summarize(rows)


@dataclass(frozen=True, repr=False)
class DiffusionValidation(Result):
    """The diffusion rows predicted against their published latencies, and the summary per group."""

    rows: tuple[DiffusionRow, ...]
    summary: tuple[GroupSummary, ...]

    @classmethod
    def from_file(cls, path: Path | None = None) -> DiffusionValidation:
        """Predict every row of `path` (default: the packaged diffusion_published.yaml)."""
        path = path or DATA_FILE
        if not path.is_file():
            raise RooflineError(f"--data '{path}' does not exist")
        rows, summary = validate_diffusion(path)
        return cls(tuple(rows), tuple(summary))

    def to_dict(self) -> dict[str, Any]:
        """What `roofline validate --diffusion --format json` prints."""
        return {"rows": [r.to_dict() for r in self.rows], "summary": [s.to_dict() for s in self.summary]}

    def csv_rows(self) -> list[dict[str, Any]]:
        """One row per measurement (`--format csv`)."""
        return [r.to_dict() for r in self.rows]

    def records(self) -> list[dict[str, Any]]:
        return self.csv_rows()

    def overview(self) -> list[tuple[str, Any]]:
        return [(f"{g.group} MAPE ({g.count})", f"{g.mape:.1%}") for g in self.summary]

"""Serving-engine behaviour as data: KV memory fraction, block size, batch and token limits, and the
host overheads per step. Profiles in `simulator/data/engines/<id>.yaml`; any knob can be overridden."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from roofline.errors import RooflineError
from roofline.units import Seconds
from roofline.yaml_io import FittedOn, read_yaml, validate_into

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "engines"
DEFAULT_ENGINE = "trtllm"


class EngineConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    kv_memory_fraction: float = Field(gt=0, le=1, description="of the memory left after weights, reserve, activations")
    kv_block_tokens: int = Field(ge=1, description="KV cache block (page) size in tokens")
    max_batch: int = Field(ge=1, description="sequences in flight per replica")
    max_num_tokens: int = Field(ge=1, description="tokens per engine step (decode tokens + prefill chunk)")
    limits: Literal["fixed", "trtllm-bench"] = Field(
        default="fixed", description="fixed: max_batch / max_num_tokens as given; trtllm-bench: sized from isl/osl"
    )
    reserve_full_sequence: bool = Field(description="admit a request only when KV for isl + osl is free")
    step_overhead: Seconds = Field(description="host time per engine step")
    per_sequence_overhead: Seconds = Field(description="host time per sequence in a step")
    request_overhead: Seconds = Field(
        default=0.0, description="front end per request (HTTP / gRPC, tokenise, detokenise): adds to TTFT and E2E"
    )
    moe_kernels: str = Field(default="trtllm", description="MoE kernel variant the engine launches (moe_kernels.yaml)")
    source: str
    fitted_on: FittedOn = Field(default_factory=list, description="measurement rows constants were fitted on")


def engine_ids() -> list[str]:
    return sorted(p.stem for p in DATA_DIR.glob("*.yaml"))


@lru_cache(maxsize=8)
def load_engine(engine_id: str = DEFAULT_ENGINE) -> EngineConfig:
    path = DATA_DIR / f"{engine_id}.yaml"
    if not path.is_file():
        raise RooflineError(f"unknown engine '{engine_id}'; known: {', '.join(engine_ids())}")
    item = validate_into(EngineConfig, read_yaml(path), f"'{path}'")
    assert isinstance(item, EngineConfig)
    return item

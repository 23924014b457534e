"""Serving: engine profiles, a step-time model, the scheduler simulation and its summaries."""

from roofline.simulator.serving.engine_config import EngineConfig, engine_ids, load_engine
from roofline.simulator.serving.service import Load, ServeResult, kv_capacity_tokens, serve

__all__ = ["EngineConfig", "Load", "ServeResult", "engine_ids", "kv_capacity_tokens", "load_engine", "serve"]

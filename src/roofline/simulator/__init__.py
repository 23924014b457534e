"""Simulator: operator costs, parallel plans, phases, memory."""

from roofline.simulator.engine import estimate
from roofline.simulator.plan import ParallelPlan, Scenario

__all__ = ["ParallelPlan", "Scenario", "estimate"]

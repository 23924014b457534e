"""`roofline estimate` and `roofline memory`: what-if queries for one configuration."""

from __future__ import annotations

from typing import Any

import typer

from roofline.cli.common import OutputFormat, emit
from roofline.dtypes import parse_dtype
from roofline.hardware_specs import resolve_cluster
from roofline.ir import Precision
from roofline.reports import tables
from roofline.reports.formats import flatten, to_csv, to_json
from roofline.simulator import ParallelPlan, Scenario, estimate
from roofline.simulator.results import EstimateResult
from roofline.units import Dimension, parse_quantity
from roofline.workloads import get_workload

MODEL = typer.Option(..., "--model", "-m", help="model id (roofline model list) or a model YAML path")
HARDWARE = typer.Option(None, "--hardware", help="accelerator id (roofline hardware list) or YAML path")
SYSTEM = typer.Option(None, "--system", help="system id; default: the accelerator's default system")
GPUS = typer.Option(None, "--gpus", help="GPUs in all; beyond tp x pp they are data-parallel replicas")
TP = typer.Option(1, "--tp", help="tensor-parallel degree")
PP = typer.Option(1, "--pp", help="pipeline-parallel degree")
BATCH = typer.Option(1, "--batch", "-b", help="concurrent sequences per replica")
ISL = typer.Option(1024, "--isl", help="input (prompt) tokens per sequence")
OSL = typer.Option(128, "--osl", help="output tokens per sequence")
WEIGHT_DTYPE = typer.Option("bf16", "--weight-dtype", help="bf16, fp16, fp8, fp4, int8, int4 (weight-only)")
KV_DTYPE = typer.Option(None, "--kv-dtype", help="KV-cache format; default: weight format, fp8 for fp4/int4")
ACT_DTYPE = typer.Option("bf16", "--activation-dtype", help="activation format (bf16 or fp16)")
RESERVE = typer.Option(None, "--reserve", help="runtime reserve per GPU, e.g. '4 GiB' (default: hardware YAML)")
FORMAT = typer.Option(OutputFormat.table, "--format", help="table, json or csv")


def _precision(weight_dtype: str, kv_dtype: str | None, activation_dtype: str) -> Precision:
    weight = parse_dtype(weight_dtype)
    if kv_dtype is None:
        kv = parse_dtype("fp8") if weight.value in {"fp4", "int4", "fp6"} else weight
        kv = parse_dtype("bf16") if kv.value == "int8" else kv
    else:
        kv = parse_dtype(kv_dtype)
    return Precision(weight=weight, activation=parse_dtype(activation_dtype), kv_cache=kv)


def _reserve(text: str | None) -> float | None:
    if text is None:
        return None
    from roofline.errors import RooflineError

    try:
        return parse_quantity(text, Dimension.BYTES)
    except ValueError as exc:
        raise RooflineError(f"--reserve: {exc}") from None


def run_estimate(
    model: str,
    hardware: str | None,
    system: str | None,
    gpus: int | None,
    tp: int,
    pp: int,
    batch: int,
    isl: int,
    osl: int,
    weight_dtype: str,
    kv_dtype: str | None,
    activation_dtype: str,
    reserve: str | None,
    ideal: bool,
) -> EstimateResult:
    workload = get_workload(model)
    plan = ParallelPlan.for_gpus(tp, pp, gpus)
    cluster = resolve_cluster(hardware=hardware, system=system, num_gpus=plan.num_gpus)
    scenario = Scenario(
        batch=batch,
        isl=isl,
        osl=osl,
        precision=_precision(weight_dtype, kv_dtype, activation_dtype),
        plan=plan,
        reserve_bytes=_reserve(reserve),
    )
    return estimate(workload, cluster, scenario, ideal=ideal)


def estimate_command(
    model: str = MODEL,
    hardware: str | None = HARDWARE,
    system: str | None = SYSTEM,
    gpus: int | None = GPUS,
    tp: int = TP,
    pp: int = PP,
    batch: int = BATCH,
    isl: int = ISL,
    osl: int = OSL,
    weight_dtype: str = WEIGHT_DTYPE,
    kv_dtype: str | None = KV_DTYPE,
    activation_dtype: str = ACT_DTYPE,
    reserve: str | None = RESERVE,
    ideal: bool = typer.Option(False, "--ideal", help="pure roofline: every achievable fraction 1, no overheads"),
    ops: bool = typer.Option(True, "--ops/--no-ops", help="include the per-operator rows"),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Prefill and decode latency, throughput and memory for one configuration."""
    result = run_estimate(
        model, hardware, system, gpus, tp, pp, batch, isl, osl, weight_dtype, kv_dtype, activation_dtype, reserve, ideal
    )
    if fmt is OutputFormat.json:
        emit(to_json(result.to_dict(with_ops=ops)))
    elif fmt is OutputFormat.csv:
        emit(to_csv([op_row for op_row in result.to_dict()["ops"]]) if ops else to_csv([_summary_row(result)]))
    else:
        tables.print_renderable(tables.estimate_view(result, with_ops=ops))


def _summary_row(result: EstimateResult) -> dict[str, Any]:
    return flatten(result.to_dict(with_ops=False))


def memory_command(
    model: str = MODEL,
    hardware: str | None = HARDWARE,
    system: str | None = SYSTEM,
    gpus: int | None = GPUS,
    tp: int = TP,
    pp: int = PP,
    batch: int = BATCH,
    isl: int = ISL,
    osl: int = OSL,
    weight_dtype: str = WEIGHT_DTYPE,
    kv_dtype: str | None = KV_DTYPE,
    activation_dtype: str = ACT_DTYPE,
    reserve: str | None = RESERVE,
    fmt: OutputFormat = FORMAT,
) -> None:
    """Does it fit? Weights, KV cache, activations, reserve; the largest batch and context that fit."""
    result = run_estimate(
        model,
        hardware,
        system,
        gpus,
        tp,
        pp,
        batch,
        isl,
        osl,
        weight_dtype,
        kv_dtype,
        activation_dtype,
        reserve,
        ideal=False,
    )
    data = {
        "model": result.model,
        "hardware": result.hardware,
        "system": result.system,
        "num_gpus": result.num_gpus,
        "parallel": {"tp": tp, "pp": pp, "dp": result.dp},
        "batch": batch,
        "isl": isl,
        "osl": osl,
        **result.memory.to_dict(),
    }
    if fmt is OutputFormat.json:
        emit(to_json(data))
    elif fmt is OutputFormat.csv:
        emit(to_csv([flatten(data)]))
    else:
        tables.print_renderable(tables.memory_table(result.memory))

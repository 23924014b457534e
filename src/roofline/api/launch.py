"""`rl.launch_command`: the command that starts a runtime with the configuration an estimate or a
plan costed (roofline.deploy; `--launch` on `roofline estimate` and `roofline plan`)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from roofline.deploy import LaunchCommand, LaunchConfig, launch_config
from roofline.deploy import launch_command as render_launch
from roofline.errors import RooflineError

if TYPE_CHECKING:
    from roofline.api.estimates import Estimate
    from roofline.api.planning import PlanReport
    from roofline.workloads import Workload


def launch_command(runtime: str, config: LaunchConfig | Estimate | PlanReport) -> LaunchCommand:
    """The command that starts `runtime` (trtllm, vllm, sglang, torch-cuda-graph / gpt-fast, ...)
    with `config`: a LaunchConfig, an estimate (`rl.estimate`) or a plan's recommended (else
    cheapest) configuration (`rl.plan`). Settings the costed configuration does not fix (memory
    fraction, KV block, CUDA-graph sizes) come from the runtime's profile."""
    from roofline.api.estimates import Estimate
    from roofline.api.planning import PlanReport

    if isinstance(config, Estimate):
        command = render_launch(runtime, estimate_launch_config(config, runtime))
        if not config.fits:  # the command is still what was asked for; say first that it will not start
            return replace(command, notes=(config.does_not_fit_message(), *command.notes))
        return command
    if isinstance(config, PlanReport):
        config = plan_launch_config(config, runtime)
    return render_launch(runtime, config)


def _shipped(workload: Workload | None, weight: str, experts: str | None) -> bool:
    if workload is None:
        return True
    shipped_experts = workload.expert_weight_dtype or workload.weight_dtype
    return weight == workload.weight_dtype.value and experts in (None, shipped_experts.value, weight)


def estimate_launch_config(result: Estimate, runtime: str) -> LaunchConfig:
    """The estimate's parallel degrees, batch, formats and lengths over the runtime's defaults."""
    q = result.query
    workload = q.workload if q is not None else None
    quantised = not _shipped(workload, result.weight_dtype, result.expert_dtype)
    return launch_config(
        result.model, runtime, batch=result.batch, isl=result.isl, osl=result.osl, tp=result.tp, pp=result.pp,
        ep=result.ep, attn_dp=result.attn_dp, dp=result.dp,
        max_num_tokens=q.scenario.max_num_tokens if q is not None else None,
        kv_cache_dtype=result.kv_cache_dtype, weight_quantization=result.weight_dtype if quantised else None,
        cp=result.cp, mtp=q.scenario.mtp_drafts if q is not None else 0,
        device=(q.cluster.accelerator.id, q.cluster.accelerator.memory.capacity) if q is not None else None,
    )  # fmt: skip


def plan_launch_config(report: PlanReport, runtime: str) -> LaunchConfig:
    """The plan's recommended configuration (the cheapest that met every target when none was
    re-checked); a plan that found none is an error."""
    from roofline.planner import grid
    from roofline.workloads import get_autoregressive

    result = report.result
    row = result.recommended or (result.best[0] if result.best else None)
    if row is None:
        raise RooflineError("the plan found no configuration that meets every target: nothing to launch; relax a "
                            "target or raise --max-gpus")  # fmt: skip
    request = result.request
    workload = get_autoregressive(request.model)
    weight, _, experts = str(row["weight_dtype"]).partition("+")
    quantised = not _shipped(workload, weight, experts or None)
    precision = grid.precision_for(workload, weight if quantised else None)
    return launch_config(
        workload.id, runtime, batch=int(row["batch_limit"]), isl=request.isl, osl=request.osl, tp=int(row["tp"]),
        pp=int(row["pp"]), ep=int(row["ep"]), attn_dp=int(row["attn_dp"]), dp=int(row["dp"]),
        kv_cache_dtype=precision.kv_cache.value, weight_quantization=weight if quantised else None,
        device=_device(str(row["hardware"])),
    )  # fmt: skip


def _device(accelerator_id: str) -> tuple[str, float] | None:
    """The accelerator's id and memory, for the limits a runtime picks on it (None: not in the catalog)."""
    from roofline.hardware_specs.catalog import get_accelerator

    try:
        acc = get_accelerator(accelerator_id)
    except RooflineError:
        return None
    return acc.id, acc.memory.capacity

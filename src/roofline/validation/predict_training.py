"""Training rows (README "Training measurements"): the layout of the row run through
`roofline.training` on the catalog model and the DGX system of the GPU, tokens/s/GPU and model
TFLOP/s/GPU predicted. The row's notes give the task (pretrain / sft / lora) and, for the
Megatron-Bridge 26.04 rows, fsdp= (0: DDP with the distributed optimizer; N: FSDP, ZeRO-3 over
the sharding group); the framework names the model-FLOP convention its table counts with.
Unpublished degrees are 1 (ep, cp, vpp); recompute not published is none."""

from __future__ import annotations

from typing import Any

from roofline.errors import RooflineError
from roofline.hardware_specs import resolve_cluster
from roofline.training.config import TrainConfig
from roofline.training.constants import constants, flop_convention_for
from roofline.training.step import train_step
from roofline.validation.cases import Case
from roofline.validation.predict_runtimes import catalog_workload
from roofline.workloads import Workload

TRAINING_METRICS = ("tokens_per_s_per_gpu", "model_tflops_per_gpu")


def note_fields(case: Case) -> dict[str, str]:
    """The key=value items of the row's notes (first word of the value: 'fsdp=0 (0 = DDP' -> '0')."""
    out: dict[str, str] = {}
    for item in case.notes.split(";"):
        key, sep, value = item.strip().partition("=")
        if sep and key and " " not in key:
            out[key.strip().lower()] = value.strip().split(" ")[0]
    return out


def training_workload(model: str) -> Workload:
    """The catalog model of a row: its id, or a Hugging Face id's name in lower case without '-hf'."""
    candidates = [model, model.lower()]
    if "/" in model:
        candidates.append(model.rsplit("/", 1)[1].lower().removesuffix("-hf"))
    for candidate in candidates:
        try:
            return catalog_workload(candidate)
        except RooflineError:
            continue
    raise RooflineError(f"model '{model}' is not in the catalog (not predicted)")


def _int(case: Case, key: str, default: int = 1) -> int:
    return case.load_int(key, default) if case.load_fields.get(key) else default


def recipe_switches(model: str, hardware: str, precision: str, release: str | None = None,
                    layout: dict[str, int] | None = None, framework: str | None = None) -> dict[str, Any]:  # fmt: skip
    """What the framework's published recipes for this model, system and precision at this container
    release set that the row's columns do not carry (data/training.yaml `published_recipes`): EP
    overlap, MTP passes, a pipeline layout that evens the stages, fine-grained recompute modules, the
    fused MoE expert path, TP communication overlap."""
    recipes = [r for r in constants().published_recipes
               if r.applies(model, hardware, precision, release, layout, framework)]  # fmt: skip
    return {"ep_overlap": any(r.ep_overlap for r in recipes),
            "mtp_layers": max((r.mtp_layers for r in recipes), default=0),
            "balanced_stages": any(r.balanced_stages for r in recipes),
            "recompute_modules": tuple(sorted({m for r in recipes for m in r.recompute_modules})),
            "moe_fused_mlp": any(r.moe_fused_mlp for r in recipes),
            "tp_comm_overlap": any(r.tp_comm_overlap for r in recipes)}  # fmt: skip


def grad_reduce_in_fp32(framework: str) -> bool:
    """Whether the framework's published runs keep fp32 gradient buffers (data/training.yaml)."""
    defaults = constants().framework_defaults.get(framework)
    return True if defaults is None else defaults.grad_reduce_in_fp32


NO_MTP_MARKERS = ("w/o mtp", "without mtp", "without multi-token")


def without_mtp(notes: str) -> bool:
    """Whether the row says its run trained no multi-token prediction (a table published as
    'DeepSeekV3 (w/o MTP)'), which overrides the recipe's MTP depth."""
    text = notes.lower()
    return any(marker in text for marker in NO_MTP_MARKERS)


def training_config(case: Case, model: str = "") -> TrainConfig:
    notes = note_fields(case)
    fsdp = int(notes.get("fsdp", "0") or 0)
    framework = case.runtime if case.runtime in constants().flop_conventions else "megatron"
    convention = flop_convention_for(framework, notes.get("release"))
    layout = {"tp": case.tp or 1, "pp": case.pp or 1, "vpp": _int(case, "vpp"), "ep": case.ep or 1,
              "micro_batch": case.load_int("micro_batch"), "global_batch": case.load_int("global_batch")}  # fmt: skip
    switches = recipe_switches(model, case.hardware, case.load_fields["precision"], notes.get("release"), layout,
                               case.runtime or None)  # fmt: skip
    if without_mtp(case.notes):
        switches["mtp_layers"] = 0
    return TrainConfig(
        gpus=case.num_gpus, seq_len=case.load_int("seq_len"), global_batch=case.load_int("global_batch"),
        micro_batch=case.load_int("micro_batch"), tp=case.tp or 1, pp=case.pp or 1, vpp=_int(case, "vpp"),
        cp=_int(case, "cp"), ep=case.ep or 1, etp=_int(case, "etp"), precision=case.load_fields["precision"],
        recompute=case.load_fields.get("recompute") or "none", task=notes.get("task", "pretrain"),
        zero=3 if fsdp > 0 else 1, flop_convention=convention,
        grad_reduce_in_fp32=grad_reduce_in_fp32(framework),
        **switches,
    )  # fmt: skip


def training(case: Case) -> tuple[dict[str, float], str]:
    workload = training_workload(case.model)
    config = training_config(case, workload.id)
    cluster = resolve_cluster(hardware=case.hardware, num_gpus=case.num_gpus)
    step = train_step(workload, cluster, config)
    values = {"tokens_per_s_per_gpu": step.tokens_per_s_per_gpu,
              "model_tflops_per_gpu": step.model_flops_per_s_per_gpu / 1e12}  # fmt: skip
    note = (f"{config.task}; dp={config.data_parallel} m={config.micro_batches} zero={config.zero}; "
            f"step {step.step_time_s:.3g} s; mfu {step.mfu:.1%}")  # fmt: skip
    return values, note


def gpu_generation(hardware: str) -> str:
    """The accelerator's architecture family (its catalog `architecture` up to the sm_ tag):
    'Hopper', 'Blackwell', 'Blackwell Ultra'; the id itself when the catalog lacks it."""
    from roofline.hardware_specs.catalog import get_accelerator

    try:
        return get_accelerator(hardware).architecture.split("(")[0].strip()
    except RooflineError:
        return hardware

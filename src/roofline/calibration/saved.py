"""A calibration run on disk, and back.

`calibrate` writes measurements.csv (one row per measured kernel, collective, model-level phase and
host-cost loop: its parameters, role and seconds, every repetition) and run.json (the device and
how it was timed). `read_run(DIR)` reads them back -- or, for a run written before measurements.csv
existed, rebuilds the cases from the names in report.csv ("matmul bf16 m=16 n=6144 k=4096") and the
device from report.md and the calibrated YAML -- so `roofline calibrate --from DIR` refits a saved
run with today's cost model and no device. Torch-free.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from roofline.calibration.bench import Measurement
from roofline.calibration.cases import (
    AttentionHeads,
    BenchCase,
    Family,
    attention_case,
    collective_case,
    elementwise_case,
    matmul_case,
    stream_case,
)
from roofline.calibration.device import DeviceInfo
from roofline.calibration.model_run import ModelRunResult, ModelRunSpec, reduced_workload
from roofline.calibration.runner import SavedRun
from roofline.calibration.timing import Timing
from roofline.calibration.train_run import TrainRunResult, TrainRunSpec
from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs.schema import Accelerator
from roofline.workloads import get_autoregressive
from roofline.workloads.dense import DenseTransformer
from roofline.workloads.moe import MoETransformer

MEASUREMENTS_CSV, RUN_JSON = "measurements.csv", "run.json"
FIELDS = ("family", "variant", "dtype", "dims", "role", "measured_s", "samples_s", "calls", "note")
RUN_FORMAT = 1
DIFFERS = "differs from the catalog: "  # report.md bullet under the device table


# ---- writing ----------------------------------------------------------------------------------------------


def dims_text(dims: Iterable[tuple[str, Any]]) -> str:
    return " ".join(f"{k}={v}" for k, v in dims)


def _samples(values: Iterable[float]) -> str:
    return ";".join(repr(float(v)) for v in values)


def measurement_rows(saved: SavedRun) -> list[dict[str, Any]]:
    """measurements.csv: everything the fit and the model-level comparison need, raw."""
    rows = []
    for m in saved.measurements:
        c = m.case
        role = "held_out" if c.held_out else ("skipped" if m.timing is None else "")
        samples = _samples(m.timing.per_call_s if m.timing else ())
        rows.append({"family": c.family.value, "variant": c.variant, "dtype": c.dtype.value,
                     "dims": dims_text(c.dims), "role": role, "measured_s": m.time_s, "samples_s": samples,
                     "calls": m.timing.calls if m.timing else 0, "note": m.note})  # fmt: skip
    for run in saved.model_runs:
        dims = dims_text(model_dims(run.spec))
        for variant, measured, phase_s in (("prefill", run.measured_ttft_s, run.prefill_s),
                                           ("decode", run.measured_tpot_s, run.decode_steps_s)):  # fmt: skip
            rows.append({"family": "model", "variant": variant, "dtype": run.spec.dtype.value, "dims": dims,
                         "role": "checked", "measured_s": measured, "samples_s": _samples(phase_s), "calls": 1,
                         "note": run.spec.describe()})  # fmt: skip
    rows += [train_row(run) for run in saved.train_runs]
    rows += [{k: row.get(k, "") for k in FIELDS} for row in saved.host_rows]
    return rows


TRAIN_FAMILY, TRAIN_VARIANT = "train", "train_step"


def train_row(run: TrainRunResult) -> dict[str, Any]:
    """A training-step run: its parameters (and `peak_bytes=` where the device reported it) and every step."""
    spec = run.spec
    dims = train_dims(spec) + ([("peak_bytes", int(run.peak_memory_bytes))] if run.peak_memory_bytes else [])
    return {"family": TRAIN_FAMILY, "variant": TRAIN_VARIANT, "dtype": spec.dtype.value, "dims": dims_text(dims),
            "role": "checked", "measured_s": run.measured_step_s, "samples_s": _samples(run.step_s), "calls": 1,
            "note": spec.describe()}  # fmt: skip


def train_dims(spec: TrainRunSpec) -> list[tuple[str, Any]]:
    """The parameters that rebuild a training-step run's spec (reduced_workload of the catalog model)."""
    w, base = spec.workload, get_autoregressive(spec.base_id)
    divisor = max(1, getattr(base, "hidden_size", w.hidden_size) // w.hidden_size)
    return [("model", spec.base_id), ("layers", w.num_hidden_layers), ("width_divisor", divisor),
            ("vocab", w.vocab_size), ("batch", spec.batch), ("seq", spec.seq_len)]  # fmt: skip


def model_dims(spec: ModelRunSpec) -> list[tuple[str, Any]]:
    """The parameters that rebuild a model-level run's spec (reduced_workload of the catalog model)."""
    w, base = spec.workload, get_autoregressive(spec.base_id)
    divisor = max(1, getattr(base, "hidden_size", w.hidden_size) // w.hidden_size)
    experts = [("experts", w.num_experts), ("moe_kernels", spec.moe_kernels)] if isinstance(w, MoETransformer) else []
    return [("model", spec.base_id), ("layers", w.num_hidden_layers), ("width_divisor", divisor),
            ("vocab", w.vocab_size), *experts, ("batch", spec.batch), ("isl", spec.isl), ("osl", spec.osl)]  # fmt: skip


def run_json(saved: SavedRun) -> dict[str, Any]:
    device = dataclasses.asdict(saved.device)
    device["matmul_dtypes"] = [d.value for d in saved.device.matmul_dtypes]
    device["model_dtype"] = saved.device.model_dtype.value
    return {"format": RUN_FORMAT, "date": saved.date, "mode": saved.mode, "clock": saved.clock,
            "base_id": saved.base_id, "catalog_differences": list(saved.catalog_differences),
            "notes": list(saved.notes), "interrupted": saved.interrupted, "device": device}  # fmt: skip


def write_run(saved: SavedRun, out_dir: Path) -> dict[str, Path]:
    from roofline.calibration.report import to_csv_text

    paths = {"measurements": out_dir / MEASUREMENTS_CSV, "run": out_dir / RUN_JSON}
    texts = {"measurements": to_csv_text(measurement_rows(saved)), "run": json.dumps(run_json(saved), indent=1)}
    for key, text in texts.items():
        try:
            paths[key].write_text(text + ("" if text.endswith("\n") else "\n"), encoding="utf-8")
        except OSError as exc:
            raise RooflineError(f"cannot write '{paths[key]}': {exc.strerror}") from None
    return paths


# ---- reading ----------------------------------------------------------------------------------------------


def parse_dims(text: str) -> dict[str, str]:
    """'m=16 n=6144 k=4096' (or a whole report.csv name: the words without '=' are skipped)."""
    return dict(word.split("=", 1) for word in text.split() if "=" in word)


def _float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _int(dims: Mapping[str, str], key: str, where: str) -> int:
    try:
        return int(dims[key])
    except (KeyError, ValueError):
        raise RooflineError(f"{where}: no integer '{key}=' in its parameters") from None


def bench_case(family: str, variant: str, dtype: str, dims: Mapping[str, str], where: str) -> BenchCase:
    """The benchmark case a saved row names (the same operator accounting as the run that measured it)."""
    try:
        fam, fmt = Family(family), DType(dtype)
    except ValueError:
        raise RooflineError(f"{where}: unknown kernel family '{family}' or format '{dtype}'") from None
    get = lambda key: _int(dims, key, where)  # noqa: E731
    if fam is Family.MATMUL:
        return matmul_case(get("m"), get("n"), get("k"), fmt)
    if fam in (Family.COPY, Family.READ):
        return stream_case(fam, get("bytes"), fmt)
    if fam is Family.ELEMENTWISE:
        return elementwise_case(variant, get("elements"), fmt)
    if fam is Family.ATTENTION:
        heads = AttentionHeads(get("heads"), get("kv_heads"), get("head_dim"))
        length = get("tokens") if variant == "prefill" else get("context")
        return attention_case(variant, get("batch"), length, heads, fmt)
    return collective_case(fam, get("bytes"), get("gpus"), fmt)


def _measurement(row: Mapping[str, str], case: BenchCase) -> Measurement:
    seconds = _float(row.get("measured_s"))
    samples = tuple(float(s) for s in (row.get("samples_s") or "").split(";") if s)
    if not math.isfinite(seconds) or seconds <= 0:
        return Measurement(case, None, row.get("note") or "")
    calls = int(_float(row.get("calls")) if math.isfinite(_float(row.get("calls"))) else 1) or 1
    return Measurement(case, Timing(samples or (seconds,), calls), row.get("note") or "")


def _reduced(dims: Mapping[str, str], where: str) -> tuple[str, DenseTransformer | MoETransformer]:
    """The catalog model `dims` names (its id) reduced as the run reduced it (layers, width, vocab, experts)."""
    base_id = dims.get("model", "")
    try:
        base = get_autoregressive(base_id)
    except Exception:
        raise RooflineError(f"{where}: unknown model '{base_id}'") from None
    vocab = _int(dims, "vocab", where)
    experts = _int(dims, "experts", where) if "experts" in dims else None
    workload = reduced_workload(base, _int(dims, "layers", where), _int(dims, "width_divisor", where),
                                vocab if vocab < getattr(base, "vocab_size", vocab + 1) else None,
                                experts)  # fmt: skip
    return base_id, workload


def model_spec(dims: Mapping[str, str], dtype: str, where: str) -> ModelRunSpec:
    base_id, workload = _reduced(dims, where)
    return ModelRunSpec(workload, _int(dims, "batch", where), _int(dims, "isl", where), _int(dims, "osl", where),
                        DType(dtype), base_id, dims.get("moe_kernels", "torch_grouped_mm"))  # fmt: skip


_REDUCED = re.compile(  # ModelRunSpec.describe()
    r"^(?P<model>\S+) reduced to (?P<layers>\d+) layers \(hidden (?P<hidden>\d+),.*vocab (?P<vocab>\d+)\)"
)


def legacy_model_dims(row: Mapping[str, str], where: str) -> dict[str, str]:
    """A model row of report.csv: the note is ModelRunSpec.describe(), the name ends batch= isl= osl=."""
    found = _REDUCED.match(row.get("note") or "")
    if found is None:
        raise RooflineError(f"{where}: cannot read the model run from its note '{row.get('note')}'")
    base = get_autoregressive(found["model"])
    divisor = max(1, getattr(base, "hidden_size", 1) // int(found["hidden"]))
    dims = {"model": found["model"], "layers": found["layers"], "width_divisor": str(divisor),
            "vocab": found["vocab"]}  # fmt: skip
    return dims | {k: v for k, v in parse_dims(row.get("name") or "").items() if k in ("batch", "isl", "osl")}


def train_run(row: Mapping[str, str], where: str) -> TrainRunResult:
    """A training-step row of measurements.csv back as the run it measured."""
    dims = parse_dims(row.get("dims") or "")
    base_id, workload = _reduced(dims, where)
    if not isinstance(workload, DenseTransformer):
        raise RooflineError(f"{where}: a training-step run of '{base_id}', which is not a dense model")
    try:
        dtype = DType(row.get("dtype") or "")
    except ValueError:
        raise RooflineError(f"{where}: unknown format '{row.get('dtype')}'") from None
    spec = TrainRunSpec(workload, _int(dims, "batch", where), _int(dims, "seq", where), dtype, base_id)
    samples = tuple(float(s) for s in (row.get("samples_s") or "").split(";") if s)
    peak = _int(dims, "peak_bytes", where) if "peak_bytes" in dims else None
    return TrainRunResult(spec, samples or (_float(row.get("measured_s")),), float(peak) if peak else None)


def _model_runs(rows: list[tuple[dict[str, str], dict[str, str]]], where: str) -> list[ModelRunResult]:
    """Pair the prefill and decode rows of each model-level run (keyed by its parameters)."""
    phases: dict[tuple[str, ...], dict[str, tuple[float, ...]]] = {}
    specs: dict[tuple[str, ...], ModelRunSpec] = {}
    for row, dims in rows:
        key = (*sorted(dims.items()), row["dtype"])
        key_t = tuple(str(k) for k in key)
        specs.setdefault(key_t, model_spec(dims, row["dtype"], where))
        samples = tuple(float(s) for s in (row.get("samples_s") or "").split(";") if s)
        variant = "prefill" if row["variant"].startswith("prefill") else "decode"
        phases.setdefault(key_t, {})[variant] = samples or (_float(row.get("measured_s")),)
    return [ModelRunResult(specs[k], p["prefill"], p["decode"]) for k, p in phases.items()
            if "prefill" in p and "decode" in p]  # fmt: skip


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except OSError as exc:
        raise RooflineError(f"cannot read '{path}': {exc.strerror}") from None


def read_rows(
    path: Path, legacy: bool
) -> tuple[list[Measurement], list[ModelRunResult], list[dict[str, str]], list[TrainRunResult]]:
    """(kernel and collective measurements, model-level runs, host-cost rows, training-step runs) of
    measurements.csv, or of report.csv (`legacy`: parameters from the names; no training rows)."""
    measured, models, host, train = [], [], [], []
    for number, row in enumerate(_rows(path), start=2):
        where = f"{path.name} line {number}"
        family = row.get("family") or ""
        if family == "model":
            models.append((row, legacy_model_dims(row, where) if legacy else parse_dims(row.get("dims") or "")))
        elif family == "host":
            host.append(row)
        elif family == TRAIN_FAMILY:
            if not legacy:  # report.csv's training rows repeat measurements.csv's
                train.append(train_run(row, where))
        elif family == "runtime":  # report.csv: predictions with a runtime profile, not measurements of their own
            continue
        elif family:
            dims = parse_dims(row.get("name" if legacy else "dims") or "")
            case = bench_case(family, row.get("variant") or "", row.get("dtype") or "", dims, where)
            measured.append(_measurement(row, replace(case, held_out=row.get("role") == "held_out")))
    return measured, _model_runs(models, str(path)), host, train


def read_run(run_dir: str | os.PathLike[str]) -> SavedRun:
    """A saved calibration run: measurements.csv + run.json when present, else report.csv, report.md
    and the calibrated YAML of a run written before they existed."""
    directory = Path(run_dir)
    if not directory.is_dir():
        raise RooflineError(f"--from {directory}: no such directory")
    measurements, report = directory / MEASUREMENTS_CSV, directory / "report.csv"
    if not measurements.is_file() and not report.is_file():
        raise RooflineError(
            f"--from {directory}: holds neither {MEASUREMENTS_CSV} nor report.csv (not a `roofline calibrate` output)"
        )
    legacy = not measurements.is_file()
    measured, models, host, train = read_rows(report if legacy else measurements, legacy)
    if not measured:
        raise RooflineError(f"--from {directory}: {(report if legacy else measurements).name} has no kernel rows")
    info = directory / RUN_JSON
    header = _run_from_json(info) if info.is_file() else _run_from_report(directory, measured, models)
    return SavedRun(measurements=tuple(measured), model_runs=tuple(models), host_rows=tuple(host),
                    train_runs=tuple(train), **header)  # fmt: skip


def _run_from_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        device = dict(data["device"])
        device["matmul_dtypes"] = tuple(DType(d) for d in device["matmul_dtypes"])
        device["model_dtype"] = DType(device["model_dtype"])
        return {"device": DeviceInfo(**device), "date": data["date"], "mode": data["mode"], "clock": data["clock"],
                "base_id": data["base_id"], "catalog_differences": tuple(data.get("catalog_differences", ())),
                "notes": tuple(data.get("notes", ())), "interrupted": bool(data.get("interrupted", False))}  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RooflineError(f"cannot read '{path}': {exc}") from None


# ---- a run saved before measurements.csv: the device from report.md and the calibrated YAML -------------


def _profile(directory: Path) -> Accelerator:
    found = sorted(directory.glob("*-calibrated.yaml"))
    if len(found) != 1:
        raise RooflineError(f"--from {directory}: expected one *-calibrated.yaml beside report.csv, found {len(found)}")
    try:
        return Accelerator.model_validate(yaml.safe_load(found[0].read_text(encoding="utf-8")))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise RooflineError(f"cannot read '{found[0]}': {str(exc).splitlines()[0]}") from None


def _device_table(text: str) -> dict[str, str]:
    section = text.split("## Device", 1)[-1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("item", "---"):
            table[cells[0]] = cells[1]
    return table


def _bullets(text: str, heading: str) -> list[str]:
    section = text.split(heading, 1)[1].split("\n## ", 1)[0] if heading in text else ""
    return [line[2:].strip() for line in section.splitlines() if line.startswith("- ")]


def _run_from_report(directory: Path, measured: list[Measurement], models: list[ModelRunResult]) -> dict[str, Any]:
    profile = _profile(directory)
    try:
        text = (directory / "report.md").read_text(encoding="utf-8")
    except OSError:
        raise RooflineError(f"--from {directory}: report.md is missing (it names the device)") from None
    table = _device_table(text)
    name, _, kind = table.get("device", profile.name).rpartition(" (")
    kind = kind.rstrip(")") if kind.rstrip(")") in ("cuda", "cpu") else ("cpu" if profile.vendor == "other" else "cuda")
    date = re.search(r"\((\d{4}-\d\d-\d\d)\)", text.splitlines()[0] if text else "")
    dtypes = tuple(dict.fromkeys(m.case.dtype for m in measured if m.case.family is Family.MATMUL))
    base_id = profile.id.removesuffix("-calibrated")
    entry = re.search(r"calibrated from catalog entry (\S+?)(;|$)", profile.notes or "")
    device = DeviceInfo(
        kind=kind, name=name or profile.name, memory_bytes=profile.memory.capacity,
        free_memory_bytes=profile.memory.capacity, compute_units=profile.sram.sm_count, cache_bytes=profile.sram.l2,
        unit_cache_bytes=profile.sram.shared_memory_per_sm,
        architecture=table.get("architecture", profile.architecture),
        torch_version=table.get("torch", "unknown"), matmul_dtypes=dtypes,
        model_dtype=models[0].spec.dtype if models else (DType.BF16 if kind == "cuda" else DType.FP32),
        cuda_version=table.get("CUDA"), driver_version=table.get("driver"),
    )  # fmt: skip
    return {"device": device, "date": date[1] if date else "unknown", "mode": "full" if "--full`" in text else "quick",
            "clock": table.get("timing", "").split(";")[0], "base_id": entry[1] if entry else base_id,
            "catalog_differences": tuple(line.removeprefix(DIFFERS) for line in _bullets(text, "## Device")
                                         if line.startswith(DIFFERS)),
            "notes": tuple(_bullets(text, "## Notes"))}  # fmt: skip

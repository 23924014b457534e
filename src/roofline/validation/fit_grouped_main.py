"""The grouped-GEMM fit on the kernel tables, as the `families:` YAML of grouped_gemm.yaml:
`main(DIR)` (DIR holds kernels-aic.csv, kernels-h200.csv, kernels.csv); benchmarks/fit_grouped_gemm.py
prints it."""

from __future__ import annotations

from pathlib import Path

from roofline.ir import Op
from roofline.validation.aic_screen import suspect_rows
from roofline.validation.cases import Case, read_cases
from roofline.validation.fit_grouped import compress, fit_rows
from roofline.validation.harness import timing_overhead_s
from roofline.validation.predict_gemm import grouped_gemm_ops
from roofline.validation.predict_moe import row_ops

SOURCES = {
    "kernels-aic.csv": "AIConfigurator 0.12.0 moe_perf (TensorRT-LLM 1.3.0rc20)",
    "kernels-h200.csv": "calibration/h200-2026-12-04 (torch 2.11 torch._grouped_mm)",
    "kernels.csv": "DeepGEMM README 327ec92 (H800)",
}


def build(case: Case) -> tuple[list[Op], float, float]:
    if case.scenario == "grouped_gemm":
        ops = grouped_gemm_ops(case)
        f = case.load_fields
        g, m, n, k = (int(f[x]) for x in ("groups", "m", "n", "k"))
        work = 2.0 * g * m * n * k if case.metric == "tflops" else g * (m * k + k * n + 2 * m * n)
        return ops, work / (case.value * (1e12 if case.metric == "tflops" else 1e9)), 0.0
    return row_ops(case)[0], case.value * 1e-6, timing_overhead_s(case)


def fit_cases(directory: Path) -> list[Case]:
    """The grouped-GEMM and MoE rows of the tables, less the AIC rows that fail the table's own
    consistency screen (validation/aic_screen.py): those are not fitted on."""
    cases = []
    for name in SOURCES:
        rows = read_cases(directory / name)
        suspect = suspect_rows(rows)
        cases += [c for c in rows if c.scenario in ("moe_experts", "grouped_gemm") and c.case_id not in suspect]
    return cases


def main(directory: Path) -> str:
    fits = fit_rows(fit_cases(directory), build)
    lines = ["families:"]
    last: tuple[str, str] = ("", "")
    for key, ((fc, fm, p, k0, lat, setup), ids) in fits.items():
        fam, arch, fmt = key.split("/")
        if fam != last[0]:
            lines.append(f"  {fam}:")
        if (fam, arch) != last:
            lines.append(f"    {arch}:")
        last = (fam, arch)
        lines += [f"      {fmt}:", f"        compute_fraction: {fc}", f"        memory_fraction: {fm}",
                  f"        overlap_exponent: {p:g}", f"        tile_overhead_k: {k0:g}",
                  f"        latency_us: {lat:g}", f"        expert_setup_us: {setup:g}",
                  f"        fitted_on: [{', '.join(compress(ids))}]",
                  f'        source: "fit_grouped on every other row of its group ({len(ids)} rows)"']  # fmt: skip
    return "\n".join(lines)

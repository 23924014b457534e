"""Re-fit the packaged GEMM curve files (simulator/data/gemm/*.yaml) from AIConfigurator's tables.

`python -m roofline.calibration.kernel_table_packaged KERNELS_AIC_CSV KERNELS_CSV` rewrites the files; the
test suite checks that fitting the committed rows reproduces the committed numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TypedDict

from roofline.calibration.kernel_table import curve_file_data, fit_table, read_table, write_curve_file
from roofline.simulator.gemm_efficiency import DATA_DIR

SOURCE = (
    "kernels-aic.csv gemm rows (validation/kernels-aic.csv: NVIDIA AIConfigurator 0.12.0, "
    "systems/data/<system>/gemm/trtllm/1.3.0rc20/gemm_perf.parquet, TensorRT-LLM 1.3.0rc20 PyTorch-flow "
    "GEMMs under CUDA graphs), fitted by roofline.calibration.kernel_table (least squares in log time; "
    "every other (N, K) shape of each format held out); hopper fp8_block@deepgemm from the DeepGEMM README "
    "FP8 GEMM rows of validation/kernels.csv (H800, DeepGEMM 327ec92, April 2025), same hold-out"
)


class Family(TypedDict):
    architectures: list[str]
    measured_on: list[str]
    note: str


FAMILIES: dict[str, Family] = {
    "hopper": {
        "architectures": ["Hopper"],
        "measured_on": ["h100-sxm", "h200-sxm", "h800"],
        "note": (
            "Measured on H100 SXM and H200 SXM (TensorRT-LLM GEMMs) and H800 (DeepGEMM, fp8_block@deepgemm "
            "only); H100 PCIe and GH200 (same sm_90 tensor cores) use these curves by transfer. "
            "No fp4 curve: Hopper has no FP4 tensor cores (FP4 weights run weight-only on the bf16 curve)."
        ),
    },
    "blackwell": {
        "architectures": ["Blackwell", "Rubin"],
        "measured_on": ["b200", "gb200"],
        "note": (
            "Measured on B200 and GB200 (sm_100); B300 / GB300 (Blackwell Ultra, sm_103) and Rubin use these "
            "curves by transfer from Blackwell (no measurement of them), as fractions of their own peaks. "
            "fp4 is NVFP4 (16-value blocks, FP8 scales); MXFP4 runs on the same curve (a prior)."
        ),
    },
}


def main(tables: list[Path]) -> None:
    curves = fit_table([row for table in tables for row in read_table(table)], hold_out="shapes")
    for family, info in FAMILIES.items():
        data = curve_file_data(family, curves[family], SOURCE, info["architectures"], info["measured_on"],
                               info["note"])  # fmt: skip
        write_curve_file(DATA_DIR / f"gemm-{family}.yaml", data)


if __name__ == "__main__":
    main([Path(arg) for arg in sys.argv[1:]])

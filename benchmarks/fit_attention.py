"""Refit the attention curves: print the `families:` section of
src/roofline/simulator/data/attention/kernels.yaml that roofline.validation.attention_fit gives
on a kernels-aic.csv (default: ../shared/validation/kernels-aic.csv)."""

from __future__ import annotations

import sys
from pathlib import Path

from roofline.validation.attention_fit import fit_all, yaml_families

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "validation" / "kernels-aic.csv"


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    print(yaml_families(fit_all(path), path), end="")


if __name__ == "__main__":
    main()

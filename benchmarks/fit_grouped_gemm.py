"""Re-run the grouped-GEMM fit and print the `families:` part of simulator/data/grouped_gemm.yaml:
python benchmarks/fit_grouped_gemm.py ../shared/validation"""

from __future__ import annotations

import sys
from pathlib import Path

from roofline.errors import RooflineError
from roofline.validation.fit_grouped_main import main

if __name__ == "__main__":
    try:
        print(main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/validation")))
    except RooflineError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)

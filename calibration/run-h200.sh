#!/usr/bin/env bash
# One prepared device run for issue 18 (host costs): run it on a machine with one NVIDIA GPU, from the
# repository root, with OUT set to an empty folder (the device tool's $OUT). It writes:
#   $OUT/<hardware>/         roofline calibrate --device cuda --full: kernels, the dense model run
#                            eager and as a CUDA graph, the MoE model run, the host-cost loops
#                            (eager dispatch, CUDA-graph replay), kernels per operator, the
#                            calibrated profiles and report.md / report.csv / measurements.csv / run.json
#   $OUT/<hardware>-refit/   roofline calibrate --from $OUT/<hardware>: the same measurements refit
#                            with no device (checks that the saved run reads back)
#   $OUT/env/                nvidia-smi, lscpu (the host CPU: host costs scale with it), torch build
# Then copy $OUT/<hardware> into calibration/<hardware>/<date>/ and commit it with a README line.
# Usage: OUT=/some/dir [HARDWARE=h200-sxm] [PYTHON=python3] [TIMEOUT_S=480] bash calibration/run-h200.sh
set -euo pipefail

: "${OUT:?set OUT to an empty output folder}"
HARDWARE=${HARDWARE:-h200-sxm}
PYTHON=${PYTHON:-python3}
TIMEOUT_S=${TIMEOUT_S:-480}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
roofline() { "$PYTHON" -c 'import sys; from roofline.cli.app import main; sys.argv[0] = "roofline"; sys.exit(main())' "$@"; }

mkdir -p "$OUT/env"
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.memory,memory.total,power.limit --format=csv \
  > "$OUT/env/smi.txt" 2>&1 || true
lscpu > "$OUT/env/lscpu.txt" 2>&1 || true
"$PYTHON" - > "$OUT/env/torch.txt" 2>&1 <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
print("grouped_mm", hasattr(torch, "_grouped_mm"))
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0))
PY
cat "$OUT/env/torch.txt"

started=$(date +%s)
timeout "$TIMEOUT_S" bash -c "$(declare -f roofline); export PYTHONPATH='$PYTHONPATH' PYTHON='$PYTHON'; \
  roofline calibrate --device cuda --hardware '$HARDWARE' --full --out '$OUT/$HARDWARE' --force" \
  > "$OUT/calibrate.log" 2>&1 || echo "calibrate exited $? (see calibrate.log)"
echo "calibrate: $(( $(date +%s) - started )) s"
tail -n 40 "$OUT/calibrate.log"

if [ -f "$OUT/$HARDWARE/measurements.csv" ]; then
  roofline calibrate --from "$OUT/$HARDWARE" --out "$OUT/$HARDWARE-refit" --force > "$OUT/refit.log" 2>&1 \
    || echo "refit exited $? (see refit.log)"
  grep -A 12 "## Host costs" "$OUT/$HARDWARE/report.md" || true
  grep -A 8 "## Model-level runs" "$OUT/$HARDWARE/report.md" || true
fi

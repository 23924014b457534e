"""Speed of the CLI and the library, each figure with its ratio to a reference measured in the same
run, so that a busy or slow machine still compares. Not a test; run with
`python benchmarks/speed.py [--runs N] [--quick] [--with-validate]`.

Printed as `name  absolute  ratio  (reference, target, PASS/FAIL)`:
- start-up: wall time of `roofline --help` and of `roofline estimate --model llama-3.1-70b --hardware
  h100-sxm --tp 8` over the wall time of `python -c "import numpy, pydantic, typer, rich.console,
  yaml"` (medians, the three commands interleaved in one loop); targets 1.3x and 1.6x (issue 16);
- `rl.estimate` per call after the first, model and hardware objects reused; target < 2 ms; the ratio
  is to summing 1e6 floats in pure Python;
- `roofline plan` for kimi-k2 over up to 1,024 GPUs (wall; target < 2 s);
- the serving simulator's time per simulated step (rl.serve after a warm-up serve of another model
  and GPU, so the timed run includes its own step tables), over the same float sum;
- with --with-validate: `roofline validate --data ../shared/validation/published.csv` (target < 30 s).

The commands run in child processes with Python's bytecode cache allowed (PYTHONDONTWRITEBYTECODE
removed; one warm-up run writes the cache), as in an installed package; --no-bytecode-cache keeps
the environment as it is.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VALIDATION_DATA = REPO.parent / "shared" / "validation" / "published.csv"
REFERENCE_IMPORTS = "import numpy, pydantic, typer, rich.console, yaml"
ESTIMATE_ARGS = ("estimate", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "8")
PLAN_ARGS = ("plan", "--model", "kimi-k2", "--isl", "1024", "--osl", "256", "--rate", "50", "--ttft-p99", "2s",
             "--tpot-p99", "50ms", "--max-gpus", "1024")  # fmt: skip
HELP_TARGET_RATIO = 1.3
ESTIMATE_TARGET_RATIO = 1.6
ESTIMATE_CALL_TARGET_S = 2e-3
PLAN_TARGET_S = 2.0
VALIDATE_TARGET_S = 30.0


def roofline_command() -> list[str]:
    """The `roofline` script beside this Python when installed, else `python -m roofline.cli.app`."""
    script = Path(sys.executable).with_name("roofline")
    return [str(script)] if script.exists() else [sys.executable, "-m", "roofline.cli.app"]


def child_env(bytecode_cache: bool) -> dict[str, str]:
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def wall_s(argv: Sequence[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - start


def interleaved_medians(commands: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, float]:
    """Each command once per round (warm-up round first, not counted); the median over `runs` rounds."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():
        wall_s(argv, env)
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(wall_s(argv, env))
    return {name: statistics.median(values) for name, values in times.items()}


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def line(name: str, absolute: str, ratio: str, note: str) -> None:
    print(f"{name:<34} {absolute:>11}  {ratio:>8}  {note}")


def startup(runs: int, env: dict[str, str]) -> None:
    cli = roofline_command()
    commands = {
        "reference": [sys.executable, "-c", REFERENCE_IMPORTS],
        "roofline --help": [*cli, "--help"],
        "roofline estimate": [*cli, *ESTIMATE_ARGS],
    }
    medians = interleaved_medians(commands, runs, env)
    reference = medians["reference"]
    line("reference (python -c imports)", f"{reference:.3f} s", "1.00x", f"median of {runs}: {REFERENCE_IMPORTS}")
    for name, target in (("roofline --help", HELP_TARGET_RATIO), ("roofline estimate", ESTIMATE_TARGET_RATIO)):
        ratio = medians[name] / reference
        line(name, f"{medians[name]:.3f} s", f"{ratio:.2f}x", f"target <= {target}x {verdict(ratio <= target)}")


def best_s(work: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def float_sum_s() -> float:
    """The pure-Python reference of the library figures: summing 1e6 floats (best of 5)."""
    floats = [float(i) for i in range(1_000_000)]
    return best_s(lambda: sum(floats), 5)


def estimate_call(calls: int, reference: float) -> None:
    import roofline as rl

    model, hardware = rl.model("llama-3.1-70b"), rl.hardware("h100-sxm")
    rl.estimate(model, hardware, tp=8)  # the first call builds what later calls reuse
    per_call = statistics.median(_timed_calls(lambda: rl.estimate(model, hardware, tp=8), calls))
    line("rl.estimate per call", f"{per_call * 1e3:.3f} ms", f"{per_call / reference:.2f}x",
         f"median of {calls} calls; reference: sum of 1e6 floats {reference * 1e3:.2f} ms; "
         f"target < {ESTIMATE_CALL_TARGET_S * 1e3:g} ms {verdict(per_call < ESTIMATE_CALL_TARGET_S)}")  # fmt: skip


def _timed_calls(call: Callable[[], object], calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def plan_wall(runs: int, env: dict[str, str], reference: float) -> None:
    argv = [*roofline_command(), *PLAN_ARGS]
    wall = statistics.median(wall_s(argv, env) for _ in range(runs))
    line("roofline plan kimi-k2 <= 1024 GPUs", f"{wall:.2f} s", f"{wall / reference:.1f}x",
         f"median of {runs}; target < {PLAN_TARGET_S:g} s {verdict(wall < PLAN_TARGET_S)}")  # fmt: skip


def serve_step(reference: float) -> None:
    """`reference`: float_sum_s()."""
    import roofline as rl

    # warm-up on another model and GPU: the modules and catalogs load, the timed run still costs its own steps
    rl.serve("llama-3.1-8b", "a100-sxm-80gb", isl=128, osl=8, request_rate=5, num_requests=5)
    start = time.perf_counter()
    report = rl.serve("llama-3.1-70b", "h100-sxm", tp=8, isl=1024, osl=256, request_rate=20, num_requests=200)
    wall = time.perf_counter() - start
    steps = getattr(getattr(getattr(report, "result", None), "sim", None), "steps", None)
    unit, count = ("step", steps) if isinstance(steps, int) and steps > 0 else ("request", 200)
    per = wall / count
    line(f"serve per simulated {unit}", f"{per * 1e6:.1f} us", f"{per / reference:.3f}x",
         f"{count:,} {unit}s in {wall:.2f} s (llama-3.1-70b, h100-sxm tp 8, 200 requests at 20/s); "
         "reference: sum of 1e6 floats")  # fmt: skip


def validate_wall(env: dict[str, str], reference: float) -> None:
    cli = roofline_command()
    argv = [*cli, "validate", "--data", str(VALIDATION_DATA)]
    options = subprocess.run([*cli, "validate", "--help"], capture_output=True, text=True, env=env).stdout
    if "--jobs" in options:  # parallel validation, where this version has it
        argv += ["--jobs", str(os.cpu_count() or 1)]
    wall = wall_s(argv, env)
    shown = " ".join(argv[len(cli) :])
    target = f"target < {VALIDATE_TARGET_S:g} s {verdict(wall < VALIDATE_TARGET_S)}"
    line("roofline validate published.csv", f"{wall:.1f} s", f"{wall / reference:.1f}x", f"{shown}; {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per timed command (median); default 7")
    parser.add_argument("--quick", action="store_true", help="3 runs, fewer calls")
    parser.add_argument("--with-validate", action="store_true", help="also time roofline validate (minutes)")
    parser.add_argument("--no-bytecode-cache", action="store_true", help="keep PYTHONDONTWRITEBYTECODE as set")
    args = parser.parse_args()
    runs = 3 if args.quick else max(1, args.runs)
    env = child_env(bytecode_cache=not args.no_bytecode_cache)
    sys.path.insert(0, str(REPO / "src"))
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.2f}; bytecode cache {'off' if args.no_bytecode_cache else 'on'}; "
          f"roofline: {shutil.which('roofline') or ' '.join(roofline_command())}")  # fmt: skip
    line("name", "absolute", "ratio", "reference / target")
    startup(runs, env)
    float_sum = float_sum_s()
    estimate_call(50 if args.quick else 500, float_sum)
    serve_step(float_sum)
    imports = statistics.median(wall_s([sys.executable, "-c", REFERENCE_IMPORTS], env) for _ in range(3))
    plan_wall(1 if args.quick else min(runs, 3), env, imports)
    if args.with_validate:
        validate_wall(env, imports)


if __name__ == "__main__":
    main()

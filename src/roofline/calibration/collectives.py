"""All-reduce and all-to-all over every visible GPU through torch.distributed (NCCL).

One process per GPU (torch.multiprocessing.spawn, a TCP rendezvous on localhost). Every rank runs
the same fixed number of warm-ups and repetitions (one collective per repetition, timed with
CUDA events on the rank's stream, which waits for NCCL's), so no rank waits on a collective
another has stopped issuing; rank 0 writes its medians to a JSON file the parent reads. Buffers
are allocated before timing. Only used with more than one GPU.
"""

from __future__ import annotations

import json
import math
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from roofline.calibration.bench import Measurement
from roofline.calibration.cases import BenchCase, Family
from roofline.calibration.timing import Timing, TimingPolicy


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, specs: list[tuple[str, int]], policy: TimingPolicy, out: str) -> None:
    import torch
    import torch.distributed as dist

    from roofline.calibration.timing import CudaClock, measure

    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    clock = CudaClock(torch)
    fixed = replace(policy, min_repetition_s=0.0, max_case_s=math.inf)  # the same count on every rank
    results = []
    try:
        for family, size_bytes in specs:
            elements = max(world, size_bytes // 2 // world * world)
            x = torch.randn(elements, device="cuda", dtype=torch.bfloat16)
            y = torch.empty_like(x)
            if family == Family.ALL_REDUCE.value:
                timing = measure(partial(dist.all_reduce, x), clock, fixed)
            else:
                timing = measure(partial(dist.all_to_all_single, y, x), clock, fixed)
            results.append(list(timing.per_call_s))
            del x, y
        if rank == 0:
            Path(out).write_text(json.dumps(results), encoding="utf-8")
    finally:
        dist.destroy_process_group()


def run_collectives(cases: Sequence[BenchCase], world: int, policy: TimingPolicy) -> list[Measurement]:
    import torch.multiprocessing as mp

    specs = [(c.family.value, c.dim("bytes")) for c in cases]
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "rank0.json")
        try:
            mp.spawn(_worker, args=(world, _free_port(), specs, policy, out), nprocs=world, join=True)
            samples: list[Any] = json.loads(Path(out).read_text(encoding="utf-8"))
        except Exception as exc:  # NCCL missing, a rank failing: report it, keep the rest of the calibration
            reason = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
            return [Measurement(c, None, f"skipped: collective run failed ({reason})") for c in cases]
    return [Measurement(c, Timing(tuple(s), 1)) for c, s in zip(cases, samples, strict=True)]

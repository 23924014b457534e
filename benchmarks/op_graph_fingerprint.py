"""Fingerprint of every operator graph the engine times, for checking that a refactor of the
sharding keeps the same answers.

For every catalog model x parallel plan x step shape it records each op one GPU runs per stage
(name, kind, class, dtype, FLOPs, bytes, count, kernels, GEMM shape, collective) and the memory
figures per GPU; a configuration that is refused records its error message instead.

    python benchmarks/op_graph_fingerprint.py dump out.json
    python benchmarks/op_graph_fingerprint.py compare baseline.json new.json   # 1e-9 relative
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from roofline.errors import RooflineError
from roofline.ir import Op, Phase, StepShape
from roofline.simulator.engine import _stage_ops
from roofline.simulator.plan import ParallelPlan, Scenario, stage_placements
from roofline.workloads.base import Workload
from roofline.workloads.catalog import model_catalog

RTOL = 1e-9

PLANS: dict[str, dict[str, Any]] = {
    "tp1": {},
    "tp2": {"tp": 2},
    "tp4": {"tp": 4},
    "tp8": {"tp": 8},
    "tp16": {"tp": 16},
    "tp8_ep8": {"tp": 8, "ep": 8},
    "tp2_ep2": {"tp": 2, "ep": 2},
    "tp4_attndp2_ep8": {"tp": 4, "attn_dp": 2, "ep": 8},
    "tp1_attndp8_ep8_imb": {"tp": 1, "attn_dp": 8, "ep": 8, "moe_imbalance": 1.3},
    "tp2_cp2": {"tp": 2, "cp": 2},
    "tp4_sp": {"tp": 4, "sp": True},
    "tp8_ep8_sp": {"tp": 8, "ep": 8, "sp": True},
    "tp2_cp2_sp": {"tp": 2, "cp": 2, "sp": True},
    "tp2_pp2": {"tp": 2, "pp": 2},
    "tp1_pp3": {"pp": 3},
    "tp8_mtp2": {"tp": 8, "mtp": 2},
    "tp4_attndp2_ep8_mtp1": {"tp": 4, "attn_dp": 2, "ep": 8, "mtp": 1},
}

STEPS = {
    "prefill": StepShape(Phase.PREFILL, 3, 512, 512),
    "prefill_chunk": StepShape(Phase.PREFILL, 2, 300, 1100),
    "decode": StepShape(Phase.DECODE, 9, 1, 2000),
    "decode_long": StepShape(Phase.DECODE, 2, 1, 200_000),
}


def _op_record(op: Op) -> dict[str, Any]:
    c, s = op.collective, op.shape
    return {
        "name": op.name, "kind": op.kind.value, "class": op.op_class.value, "dtype": op.dtype.value,
        "flops": op.flops, "weight_bytes": op.weight_bytes, "activation_bytes": op.activation_bytes,
        "kv_read_bytes": op.kv_read_bytes, "kv_write_bytes": op.kv_write_bytes, "count": op.count,
        "kernels": op.kernels, "shape": None if s is None else [s.m, s.n, s.k, s.batch],
        "collective": None if c is None else [c.kind.value, c.group, c.message_bytes],
    }  # fmt: skip


def _scenario(spec: dict[str, Any], workload: Workload) -> Scenario:
    plan = ParallelPlan(tp=spec.get("tp", 1), pp=spec.get("pp", 1), ep=spec.get("ep", 1),
                        attn_dp=spec.get("attn_dp", 1), cp=spec.get("cp", 1),
                        moe_imbalance=spec.get("moe_imbalance", 1.0))  # fmt: skip
    return Scenario(batch=8, isl=512, osl=64, precision=workload.shipped_precision, plan=plan,
                    sequence_parallel=spec.get("sp", False), mtp_drafts=spec.get("mtp", 0))  # fmt: skip


def _case(workload: Workload, spec: dict[str, Any]) -> dict[str, Any]:
    try:
        scenario = _scenario(spec, workload)
        placements = stage_placements(workload, scenario.plan)
        if scenario.mtp_drafts and not workload.mtp_layers:
            return {"error": "no mtp"}
        out: dict[str, Any] = {"memory": [], "steps": {}}
        p = scenario.precision
        for pl in placements:
            out["memory"].append([workload.weight_bytes(p, pl), workload.kv_cache_bytes(1000, p, pl),
                                  workload.activation_bytes(STEPS["prefill"], p, pl),
                                  workload.mtp_weight_bytes(p, pl)])  # fmt: skip
        for name, step in STEPS.items():
            if step.phase is Phase.DECODE and scenario.mtp_drafts:
                verify = 1 + scenario.mtp_drafts
                step = StepShape(Phase.DECODE, step.batch, verify, step.context_tokens + verify - 1)
            out["steps"][name] = [[_op_record(op) for op in _stage_ops(workload, step, scenario, pl)]
                                  for pl in placements]  # fmt: skip
        return out
    except RooflineError as e:
        return {"error": str(e)}


def dump(path: str) -> None:
    result: dict[str, Any] = {}
    for model_id, workload in sorted(model_catalog().items()):
        if workload.kind == "dit":
            continue
        for plan_name, spec in PLANS.items():
            result[f"{model_id}/{plan_name}"] = _case(workload, spec)
    with open(path, "w") as f:
        json.dump(result, f)
    errors = sum(1 for v in result.values() if "error" in v)
    print(f"{len(result)} cases ({errors} refused) -> {path}")


def _close(a: Any, b: Any, where: str, problems: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            problems.append(f"{where}: keys {sorted(a)} != {sorted(b)}")
            return
        for k in a:
            _close(a[k], b[k], f"{where}.{k}", problems)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            problems.append(f"{where}: length {len(a)} != {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]", problems)
    elif isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        if not math.isclose(a, b, rel_tol=RTOL, abs_tol=0.0):
            problems.append(f"{where}: {a} != {b}")
    elif a != b:
        problems.append(f"{where}: {a!r} != {b!r}")


def compare(base_path: str, new_path: str) -> int:
    with open(base_path) as f:
        base = json.load(f)
    with open(new_path) as f:
        new = json.load(f)
    problems: list[str] = []
    _close(base, new, "", problems)
    for p in problems[:40]:
        print(p)
    print(f"{len(problems)} differences over {len(base)} cases")
    return 1 if problems else 0


if __name__ == "__main__":
    if sys.argv[1] == "dump":
        dump(sys.argv[2])
    else:
        sys.exit(compare(sys.argv[2], sys.argv[3]))

"""Fitted is not validated: constants name the rows they were fitted on; validate reports the others apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from roofline.errors import RooflineError
from roofline.validation import validate_file
from roofline.validation.fitted import expand_ids, fitted_in, fitted_rows

SHARED = Path(__file__).resolve().parents[2] / "shared" / "validation" / "published.csv"


def test_ids_and_ranges_expand() -> None:
    assert expand_ids("p0368") == ["p0368"]
    assert expand_ids("p0368..p0371") == ["p0368", "p0369", "p0370", "p0371"]
    assert expand_ids("ka00009..ka00011") == ["ka00009", "ka00010", "ka00011"]  # zero padding kept
    for bad in ("p0371..p0368", "p0001..ka00002", "p0001..x"):
        with pytest.raises(RooflineError, match="fitted_on range"):
            expand_ids(bad)


def test_a_document_names_each_constant_and_its_rows() -> None:
    doc = {"efficiency": {"matmul_fraction": {"fp8": 0.7}, "fitted_on": {"matmul_fraction.fp8": ["p0345"],
           "memory_bandwidth_fraction": ["p0368..p0369"]}}, "pipeline": 0.5, "fitted_on": ["p0001"]}  # fmt: skip
    rows = fitted_in(doc, "h200")
    assert rows == {"p0345": ["h200: efficiency.matmul_fraction.fp8"],
                    "p0368": ["h200: efficiency.memory_bandwidth_fraction"],
                    "p0369": ["h200: efficiency.memory_bandwidth_fraction"], "p0001": ["h200"]}  # fmt: skip


def test_the_packaged_constants_name_the_public_rows_they_came_from() -> None:
    rows = fitted_rows()
    assert "h200-sxm: efficiency.memory_bandwidth_fraction" in rows["p0368"]  # STREAM copy on H200
    assert any(c.startswith("nccl: ") and "pipeline_overhead" in c for c in rows["p0390"])  # nccl-tests rows
    assert "b200: efficiency.matmul_fraction.fp8" in rows["p0346"]  # the B200 MAMF fp8 row
    assert any("step_overhead" in c for c in rows["p0300"])  # engine overheads: the request-rate rows
    assert "p0000" not in rows  # a max-throughput row: nothing was fitted on it


@pytest.mark.skipif(not SHARED.is_file(), reason="needs ../shared/validation/published.csv")
def test_summary_reports_held_out_rows_apart(tmp_path: Path) -> None:
    lines = SHARED.read_text().splitlines()
    header = lines[0]
    keep = [line for line in lines[1:] if line.split(",")[0] in ("p0366", "p0367", "p0368", "p0369", "p0344",
                                                                  "p0349", "p0350")]  # fmt: skip
    path = tmp_path / "some.csv"
    path.write_text("\n".join([header, *keep]) + "\n")
    report = validate_file(path)
    by_id = {r.case.case_id: r for r in report.rows}
    assert by_id["p0368"].fitted_on and not by_id["p0349"].fitted_on
    copy = report.summary_for("memory_copy", "gbps")
    assert copy is not None and copy.count == 4 and copy.held_out_count == 0 and copy.held_out_mape is None
    gemm = report.summary_for("gemm", "tflops")
    assert gemm is not None and gemm.count == 3 and gemm.held_out_count == 2
    held = [abs(by_id[i].error) for i in ("p0349", "p0350")]
    assert gemm.held_out_mape == pytest.approx(sum(held) / 2)
    groups = {(s.scenario, s.hardware, s.dtype): s.count for s in report.breakdown}
    assert groups == {("memory_copy", "h100-sxm", ""): 2, ("memory_copy", "h200-sxm", ""): 2,
                      ("gemm", "h100-sxm", "fp8"): 3}  # fmt: skip

"""`roofline plot`: every kind from the CLI (dense and MoE), the artists each figure holds, the
numbers behind them by hand, file formats, --force and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.collections import PathCollection
from typer.testing import CliRunner

from roofline.api.query import LlmOptions, Query, build_query
from roofline.cli.app import app
from roofline.reports import plot_data, plots
from roofline.simulator import estimate

runner = CliRunner()
DENSE = ["-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--isl", "256", "--osl", "8"]
MOE = ["-m", "mixtral-8x7b", "--hardware", "h100-sxm", "--tp", "2", "--isl", "256", "--osl", "8"]
KIND_ARGS = {
    "roofline": ["--batch", "1,8,64"],
    "breakdown": ["--batch", "8"],
    "scaling": ["--batch", "1,4,16,64", "--serve"],
    "compare": ["--batch", "8", "--weight-dtype", "bf16,fp8"],
}


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _query(model: str = "llama-3.1-8b", hardware: str = "h100-sxm", tp: int = 1, batch: int = 8) -> Query:
    return build_query(LlmOptions(model, hardware, tp=tp, batch=batch, isl=256, osl=8))


def _plot(kind: str, base: list[str], out: Path, *extra: str) -> tuple[int, str]:
    args = ["plot", kind, *base, *KIND_ARGS[kind], "-o", str(out), *extra]
    if kind == "compare":  # several accelerators side by side
        args[args.index("h100-sxm")] = "h100-sxm,b200"
    result = runner.invoke(app, args)
    return result.exit_code, result.stderr


@pytest.mark.parametrize("kind", list(KIND_ARGS))
@pytest.mark.parametrize("base", [DENSE, MOE], ids=["dense", "moe"])
def test_every_kind_from_the_cli(kind: str, base: list[str], tmp_path: Path) -> None:
    out = tmp_path / f"{kind}.png"
    code, err = _plot(kind, base, out)
    assert code == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


@pytest.mark.parametrize("suffix, magic", [(".svg", b"<svg"), (".pdf", b"%PDF")])
def test_svg_and_pdf(suffix: str, magic: bytes, tmp_path: Path) -> None:
    out = tmp_path / f"breakdown{suffix}"
    code, err = _plot("breakdown", DENSE, out)
    assert code == 0, err
    assert magic in out.read_bytes()[:400]


def test_existing_file_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "taken.png"
    out.write_bytes(b"keep me")
    code, err = _plot("breakdown", DENSE, out)
    assert code == 2
    assert err.strip().count("\n") == 0 and err.startswith("error:") and "--force" in err
    assert out.read_bytes() == b"keep me"
    code, err = _plot("breakdown", DENSE, out, "--force")
    assert code == 0, err
    assert out.stat().st_size > 10_000


@pytest.mark.parametrize(
    "args, message",
    [
        (["plot", "pie", *DENSE, "-o", "x.png"], "unknown plot kind 'pie'"),
        (["plot", "breakdown", *DENSE, "-o", "x.jpg"], ".png, .svg or .pdf"),
        (["plot", "breakdown", *DENSE, "--batch", "1,8", "-o", "x.png"], "one --batch value"),
        (["plot", "roofline", *DENSE, "--batch", "1,x", "-o", "x.png"], "--batch takes integers"),
        (["plot", "roofline", *DENSE, "--weight-dtype", "bf16,fp8", "-o", "x.png"], "plot compare"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    args = [str(tmp_path / a) if a.startswith("x.") else a for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error:") and result.stderr.strip().count("\n") == 0
    assert message in result.stderr
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- the numbers, by hand


def test_ceilings_and_slope_are_peak_times_fraction() -> None:
    """H100 SXM: bf16 989.4 x 0.803 = 794.5 TFLOP/s, fp8 1978.9 x 0.709 = 1403.0, no fp4;
    HBM 3.35 TB/s x 0.87 = 2.9145 TB/s; bf16 ridge = 794.5 / 2.9145 = 272.6 FLOP/byte."""
    acc = _query().cluster.accelerator
    roofs = {c.dtype: c for c in plot_data.ceilings(acc)}
    assert set(roofs) == {"bf16", "fp8"}
    assert roofs["bf16"].flops_per_s == pytest.approx(989.4e12 * 0.803)
    assert roofs["fp8"].flops_per_s == pytest.approx(1978.9e12 * 0.709)
    (hbm,) = plot_data.memory_slopes(acc)
    assert hbm.bytes_per_s == pytest.approx(3.35e12 * 0.87)
    assert plot_data.ridge_flops_per_byte(roofs["bf16"], hbm) == pytest.approx(272.6, rel=1e-3)
    assert len(plot_data.ceilings(_query(hardware="b200").cluster.accelerator)) == 3  # bf16, fp8, fp4


def test_points_are_flops_over_bytes_and_flops_over_time() -> None:
    q = _query()
    result = estimate(q.workload, q.cluster, q.scenario)
    pts = plot_data.op_points(result.decode, 8)
    rows = {op.name: op for op in result.decode.ops}
    total_s = sum(op.time_s for op in result.decode.ops)
    assert pts.points
    for p in pts.points:
        op = rows[p.name]
        assert p.intensity_flops_per_byte == pytest.approx(op.flops / op.bytes)
        assert p.achieved_flops_per_s == pytest.approx(op.flops / op.time_s)
        assert p.time_share == pytest.approx(op.time_s / total_s)
    comm = {op.name for op in result.decode.ops if op.op_class == "communication"}
    assert comm <= set(pts.omitted) and not comm & {p.name for p in pts.points}


def test_breakdown_adds_up() -> None:
    q = _query("mixtral-8x7b", tp=2)
    result = estimate(q.workload, q.cluster, q.scenario)
    data = plot_data.breakdown_data(result, q.scenario)
    assert sum(data.group_time_s["prefill"].values()) == pytest.approx(result.ttft_s)
    assert sum(data.group_time_s["decode"].values()) == pytest.approx(result.tpot_s)
    m = result.memory
    assert m.fits and sum(data.memory_bytes.values()) == pytest.approx(m.capacity_bytes)
    assert data.memory_bytes["KV cache"] == m.kv_cache_bytes
    mlp = sum(op.time_s for op in result.decode.ops if op.op_class == "mlp")
    scale = result.tpot_s / sum(op.time_s for op in result.decode.ops)
    assert data.group_time_s["decode"]["MLP / experts"] == pytest.approx(mlp * scale)


def test_batch_sweep_per_gpu_and_per_user() -> None:
    q = _query(tp=2)
    for p in plot_data.batch_sweep(q.workload, q.cluster, q.scenario, [1, 16]):
        r = estimate(q.workload, q.cluster, replace(q.scenario, batch=p.batch))
        assert p.tpot_s == r.tpot_s
        assert p.decode_tokens_per_s_per_gpu == pytest.approx(p.batch / r.tpot_s / 2)
        assert p.tokens_per_s_per_user == pytest.approx(1 / r.tpot_s)


# ---------------------------------------------------------------- the artists


def test_roofline_figure_artists() -> None:
    q = _query()
    data = plot_data.roofline_data(q.workload, q.cluster, q.scenario, [1, 8, 64])
    fig = plots.roofline_figure(data)
    axes = fig.axes
    assert len(axes) == 2
    for ax in axes:
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert "FLOP/byte" in ax.get_xlabel()
        roofs = [ln for ln in ax.lines if ln.get_gid() in (plots.CEILING_GID, plots.SLOPE_GID)]
        assert len(roofs) == len(data.ceilings) + len(data.slopes) == 3  # bf16, fp8, HBM
        assert any(isinstance(c, PathCollection) for c in ax.collections)
    assert "TFLOP/s" in axes[0].get_ylabel()
    decode_markers = {c.get_paths()[0].vertices.shape for c in axes[1].collections}
    assert len(decode_markers) == 3  # a marker per batch
    title = fig.get_suptitle()
    assert "llama-3.1-8b" in title and "h100-sxm" in title
    caption = " ".join(t.get_text() for t in fig.texts)
    assert "Left out: communication" in caption and "p-norm" in caption and "isl=256" in caption
    peaks = plots.roofline_figure(data, peaks=True)
    dashed = [ln for ln in peaks.axes[0].lines if ln.get_gid() in (plots.PEAK_GID, plots.PEAK_SLOPE_GID)]
    assert len(dashed) == 3 and all(ln.get_linestyle() == "--" for ln in dashed)


def test_breakdown_figure_bars() -> None:
    q = _query("mixtral-8x7b", tp=2)
    result = estimate(q.workload, q.cluster, q.scenario)
    fig = plots.breakdown_figure(plot_data.breakdown_data(result, q.scenario))
    ax_time, ax_mem = fig.axes
    time_bars = [p for p in ax_time.patches if p.get_gid() == "time-bar"]
    assert len(time_bars) == 2 * len(plot_data.BREAKDOWN_GROUPS)
    for x in (0, 1):  # each phase's bar adds up to 100 %
        heights = [p.get_height() for p in time_bars if abs(p.get_x() + p.get_width() / 2 - x) < 1e-9]
        assert sum(heights) == pytest.approx(100.0)
    assert len([p for p in ax_mem.patches if p.get_gid() == "memory-bar"]) == 5  # weights KV act reserve free
    assert "mixtral-8x7b" in fig.get_suptitle() and "h100-sxm" in fig.get_suptitle()


def test_scaling_and_compare_figures() -> None:
    q = _query(batch=4)
    data = plot_data.scaling_data(q.workload, q.cluster, q.scenario, [1, 4, 16], serve=False)
    assert len(plots.scaling_figure(data).axes) == 4
    fig = plots.scaling_figure(replace(data, serve=True))
    assert len(fig.axes) == 5
    logs = [ax.get_yscale() == "log" for ax in fig.axes if "KV" in ax.get_title() or "interactivity" in ax.get_title()]
    assert logs == [True, True]
    queries = [_query(hardware=h) for h in ("h100-sxm", "b200")]
    results = [estimate(x.workload, x.cluster, x.scenario) for x in queries]
    cmp = plot_data.compare_data(results, [x.cluster.accelerator for x in queries], queries[0].scenario)
    fig = plots.compare_figure(cmp)
    assert [len([p for p in ax.patches if p.get_gid() == "compare-bar"]) for ax in fig.axes] == [2, 2, 2]
    assert "h100-sxm" in fig.get_suptitle() and "b200" in fig.get_suptitle()

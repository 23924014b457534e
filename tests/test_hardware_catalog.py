"""The packaged hardware catalog: every file loads, the numbers match the reference, systems resolve.

Spot values are checked against ../shared/reference/hardware.md (cited as "hw §N") and, for the
efficiency priors, against the kernel rows of ../shared/validation/published.csv (cited by case id).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from roofline.errors import RooflineError
from roofline.hardware_specs import load_catalog, resolve_cluster
from roofline.hardware_specs.catalog import DATA_DIR, ENV_VAR, HardwareCatalog, _load
from roofline.hardware_specs.schema import Accelerator, HostCpu, Link, System, Wiring

ACCELERATORS = [
    "a100-sxm-80gb", "h100-sxm", "h100-pcie", "h200-sxm", "h800", "gh200-96gb", "gh200-144gb",
    "b200", "gb200", "b300", "gb300", "rubin", "l40s", "mi300x", "mi325x", "mi355x",
]  # fmt: skip
LINKS = [
    "nvlink3", "nvlink4", "nvlink5", "nvlink6", "pcie4", "pcie5", "pcie6", "ib-hdr", "ib-ndr",
    "ib-xdr", "roce-400g", "roce-800g", "nvlink-c2c", "infinity-fabric", "infinity-fabric-cdna4",
]  # fmt: skip
SYSTEMS = [
    "dgx-a100", "dgx-h100", "dgx-h200", "hgx-h800", "hgx-b200", "hgx-b300", "gb200-nvl72",
    "gb300-nvl72", "vr-nvl72", "mi300x-8", "mi325x-8", "mi355x-8", "h100-pcie-8", "l40s-8",
    "gh200-96gb-node", "gh200-144gb-node",
]  # fmt: skip
DEFAULT_SYSTEMS = {
    "a100-sxm-80gb": "dgx-a100", "h100-sxm": "dgx-h100", "h100-pcie": "h100-pcie-8",
    "h200-sxm": "dgx-h200", "h800": "hgx-h800", "gh200-96gb": "gh200-96gb-node",
    "gh200-144gb": "gh200-144gb-node", "b200": "hgx-b200", "gb200": "gb200-nvl72",
    "b300": "hgx-b300", "gb300": "gb300-nvl72", "rubin": "vr-nvl72", "l40s": "l40s-8",
    "mi300x": "mi300x-8", "mi325x": "mi325x-8", "mi355x": "mi355x-8",
}  # fmt: skip
GiB = 2**30
MiB = 2**20
TERA = 1e12


@pytest.fixture(autouse=True)
def _packaged_catalog_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run each test without the user's ROOFLINE_HARDWARE_PATH, and drop what it loaded afterwards.

    load_catalog() is cached per ROOFLINE_HARDWARE_PATH value, and `--hardware ./file.yaml` adds
    the file to that cached catalog, so a test that loads a user file must not leak it.
    """
    monkeypatch.delenv(ENV_VAR, raising=False)
    yield
    _load.cache_clear()


def _catalog() -> HardwareCatalog:
    return load_catalog()


# ---- every file loads ------------------------------------------------------------------------


HOST_CPUS = ["xeon-8480c", "xeon-8570", "xeon-6776p", "epyc-7742", "epyc-9654", "grace"]


def test_systems_name_their_host_cpu() -> None:
    """Host time scales with the host CPU: the DGX / HGX / NVL72 nodes name theirs, with a source."""
    catalog = _catalog()
    assert set(HOST_CPUS) == set(catalog.host_cpus)
    assert catalog.system("dgx-h100").host_cpu == "xeon-8480c"
    assert catalog.system("gb200-nvl72").host_cpu == "grace"
    assert catalog.host_cpu("xeon-8480c").single_thread_speed == 1.0  # the reference
    assert catalog.host_cpu("grace").single_thread_speed < 1.0
    assert all(len(cpu.source) > 20 for cpu in catalog.host_cpus.values())


def test_every_listed_id_loads() -> None:
    catalog = _catalog()
    assert set(ACCELERATORS) <= set(catalog.accelerators)
    assert set(LINKS) <= set(catalog.links)
    assert set(SYSTEMS) <= set(catalog.systems)
    catalog.check_references()


def test_file_name_is_the_id() -> None:
    kinds = {"accelerators": Accelerator, "links": Link, "systems": System, "host_cpus": HostCpu}
    paths = sorted(DATA_DIR.rglob("*.yaml"))
    assert len(paths) == len(ACCELERATORS) + len(LINKS) + len(SYSTEMS) + len(HOST_CPUS)
    for path in paths:
        item = HardwareCatalog().add_file(path)
        assert isinstance(item, kinds[path.parent.name]), path
        assert item.id == path.stem, path  # type: ignore[attr-defined]


@pytest.mark.parametrize("accelerator_id", ACCELERATORS)
def test_default_system_holds_the_accelerator(accelerator_id: str) -> None:
    catalog = _catalog()
    accelerator = catalog.accelerator(accelerator_id)
    assert accelerator.default_system == DEFAULT_SYSTEMS[accelerator_id]
    assert catalog.system(DEFAULT_SYSTEMS[accelerator_id]).accelerator == accelerator_id


# ---- spot values against the reference ---------------------------------------------------------


@pytest.mark.parametrize(
    ("accelerator_id", "field", "expected"),
    [
        ("h100-sxm", "compute.bf16", 989.4 * TERA),  # hw §2: 1979 sparse / 2
        ("h100-sxm", "memory.capacity", 81559 * MiB),  # hw §0-1: nvidia-smi 81559 MiB = 79.65 GiB
        ("h100-sxm", "memory.bandwidth", 3.35 * TERA),  # hw §1 and §13 #8
        ("h200-sxm", "memory.bandwidth", 4.8 * TERA),  # hw §1
        ("h200-sxm", "memory.capacity", 143771 * MiB),  # hw §1: nvidia-smi 143771 MiB
        ("a100-sxm-80gb", "memory.capacity", 80 * GiB),  # hw §1: AIC 85899345920 B
        ("a100-sxm-80gb", "memory.bandwidth", 2.039 * TERA),  # hw §1
        ("a100-sxm-80gb", "compute.bf16", 312 * TERA),  # hw §2
        ("h100-pcie", "compute.bf16", 756 * TERA),  # hw §2
        ("h100-pcie", "memory.bandwidth", 2.0 * TERA),  # hw §1
        ("h800", "compute.fp8", 1978.9 * TERA),  # hw §2 (H100 SXM compute)
        ("gh200-96gb", "memory.bandwidth", 4.0 * TERA),  # NVIDIA GH200 datasheet "up to 4TB/s"
        ("gh200-96gb", "memory.capacity", 97871 * MiB),  # nvidia-smi GH200 480GB
        ("gh200-144gb", "memory.bandwidth", 4.9 * TERA),  # GH200 datasheet; hw §12 GenZ 4900
        ("gh200-144gb", "memory.capacity", 153008209920),  # cuDeviceTotalMem of GH200 144G HBM3e
        ("b200", "compute.fp4", 9000 * TERA),  # hw §2: 18 PF sparse / 2
        ("b200", "compute.fp6", 4500 * TERA),  # hw §2: FP6 runs at the FP8 rate on NVIDIA
        ("b200", "memory.capacity", 183359 * MiB),  # hw §0: nvidia-smi 183359 MiB = 179.1 GiB
        ("b200", "memory.bandwidth", 7.7 * TERA),  # hw §13 #3
        ("gb200", "compute.bf16", 2500 * TERA),  # hw §2
        ("gb200", "memory.bandwidth", 8.0 * TERA),  # hw §13 #3
        ("b300", "compute.fp4", 14000 * TERA),  # hw §13 #1: 14 PF for HGX B300
        ("gb300", "compute.fp4", 15000 * TERA),  # hw §13 #1: 15 PF for GB300
        ("gb300", "compute.int8", 165 * TERA),  # hw §13 #2: Blackwell Ultra INT8 cut to ~165
        ("gb300", "memory.capacity", 284208 * MiB),  # hw §13 #5: nvidia-smi value
        ("rubin", "memory.bandwidth", 22 * TERA),  # hw §13 #6
        ("rubin", "compute.bf16", 4000 * TERA),  # hw §13 #7
        ("rubin", "compute.fp8", 17500 * TERA),  # hw §13 #7
        ("rubin", "compute.fp4", 35000 * TERA),  # hw §13 #7 (50 PF is marketing)
        ("l40s", "compute.bf16", 362.05 * TERA),  # hw §13 #10: dense, not sparse
        ("l40s", "memory.capacity", 46068 * MiB),  # hw §1
        ("mi300x", "memory.capacity", 192 * GiB),  # hw §1: 8 x 24 GiB
        ("mi300x", "compute.bf16", 1307.4 * TERA),  # hw §13 #11
        ("mi300x", "sram.sm_count", 304),  # hw §3: CUs
        ("mi325x", "memory.capacity", 256 * GiB),  # hw §1
        ("mi325x", "memory.bandwidth", 6.0 * TERA),  # hw §1
        ("mi355x", "compute.bf16", 2516.6 * TERA),  # hw §13 #12
        ("mi355x", "compute.fp4", 10066 * TERA),  # hw §13 #12
        ("mi355x", "memory.capacity", 288 * GiB),  # hw §1
    ],
)
def test_accelerator_spot_values(accelerator_id: str, field: str, expected: float) -> None:
    value: object = _catalog().accelerator(accelerator_id)
    for part in field.split("."):
        value = getattr(value, part)
    assert value == pytest.approx(expected, rel=2e-3)


def test_blackwell_ultra_int8_is_cut() -> None:
    # hw §2 and §13 #2: ~150 (B300) / ~165 (GB300) dense TOP/s, not B200's 4500
    catalog = _catalog()
    assert catalog.accelerator("b300").compute.int8 == pytest.approx(150 * TERA, rel=0.05)
    assert catalog.accelerator("gb300").compute.int8 == pytest.approx(165 * TERA, rel=0.01)
    assert catalog.accelerator("b200").compute.int8 == pytest.approx(4500 * TERA)


@pytest.mark.parametrize(
    ("link_id", "per_port_bytes_per_s", "wiring"),
    [
        ("nvlink3", 25e9, Wiring.SWITCHED),  # hw §5: 25 GB/s per link per direction
        ("nvlink4", 25e9, Wiring.SWITCHED),  # hw §5
        ("nvlink5", 50e9, Wiring.SWITCHED),  # hw §5
        ("pcie4", 31.5e9, Wiring.ROOT_COMPLEX),  # hw §7
        ("pcie5", 63e9, Wiring.ROOT_COMPLEX),  # hw §7
        ("pcie6", 121e9, Wiring.ROOT_COMPLEX),  # hw §7
        ("ib-hdr", 25e9, Wiring.SWITCHED),  # hw §8: 200 Gb/s
        ("ib-ndr", 50e9, Wiring.SWITCHED),  # hw §8: 400 Gb/s
        ("ib-xdr", 100e9, Wiring.SWITCHED),  # hw §8: 800 Gb/s
        ("roce-400g", 50e9, Wiring.SWITCHED),  # hw §8
        ("roce-800g", 100e9, Wiring.SWITCHED),  # hw §8
        ("nvlink-c2c", 450e9, Wiring.POINT_TO_POINT),  # hw §5: 900 GB/s bidirectional
        ("infinity-fabric", 64e9, Wiring.POINT_TO_POINT),  # hw §4: 64 GB/s each way per link
    ],
)
def test_link_spot_values(link_id: str, per_port_bytes_per_s: float, wiring: Wiring) -> None:
    link = _catalog().link(link_id)
    assert link.bandwidth_per_port == pytest.approx(per_port_bytes_per_s, rel=1e-3)
    assert link.wiring is wiring


@pytest.mark.parametrize(
    ("system_id", "scale_up_per_gpu", "scale_out_per_gpu"),
    [
        ("dgx-a100", 300e9, 25e9),  # hw §4: NVLink 3 600 GB/s bidir; HDR 200G per GPU
        ("dgx-h100", 450e9, 50e9),  # hw §4: NVLink 4 900 GB/s bidir; CX-7 400G per GPU
        ("dgx-h200", 450e9, 50e9),  # hw §4
        ("hgx-h800", 200e9, 50e9),  # hw §5: H800 8 links = 400 GB/s bidir
        ("hgx-b200", 900e9, 50e9),  # hw §4, §13 #15: 400G default for B200
        ("hgx-b300", 900e9, 100e9),  # hw §4, §13 #15: 800G for B300
        ("gb200-nvl72", 900e9, 50e9),  # hw §4, §9
        ("gb300-nvl72", 900e9, 100e9),  # hw §4, §9
        ("vr-nvl72", 1800e9, 200e9),  # hw §4: 3.6 TB/s bidir; ConnectX-9 1.6 Tb/s
        ("mi300x-8", 448e9, 50e9),  # hw §4: 7 x 64 GB/s aggregate per direction
        ("mi355x-8", 537.6e9, 50e9),  # hw §4: 7 x 153.6 GB/s bidir (derived)
        ("h100-pcie-8", 63e9, 50e9),  # hw §4, §7: GPU-GPU over PCIe Gen5
        ("l40s-8", 31.5e9, 50e9),  # hw §4, §7: PCIe Gen4
    ],
)
def test_system_bandwidths_per_gpu_per_direction(
    system_id: str, scale_up_per_gpu: float, scale_out_per_gpu: float
) -> None:
    cluster = resolve_cluster(system=system_id)
    assert cluster.scale_up.bandwidth_per_gpu_bytes_per_s == pytest.approx(scale_up_per_gpu, rel=1e-3)
    assert cluster.scale_out is not None
    assert cluster.scale_out.bandwidth_per_gpu_bytes_per_s == pytest.approx(scale_out_per_gpu, rel=1e-3)


def test_scale_up_wiring_of_the_non_switched_systems() -> None:
    catalog = _catalog()
    for system_id in ("mi300x-8", "mi325x-8", "mi355x-8"):  # hw §4: xGMI full mesh
        assert resolve_cluster(system=system_id, catalog=catalog).scale_up.wiring is Wiring.POINT_TO_POINT
    for system_id in ("h100-pcie-8", "l40s-8"):  # no NVLink: through the root complex
        assert resolve_cluster(system=system_id, catalog=catalog).scale_up.wiring is Wiring.ROOT_COMPLEX


def test_nvl72_racks_are_trays_of_four_in_a_72_gpu_domain() -> None:
    # hw §9: 18 compute trays x 4 GPUs, one NVLink domain of 72
    catalog = _catalog()
    for system_id in ("gb200-nvl72", "gb300-nvl72", "vr-nvl72"):
        system = catalog.system(system_id)
        assert (system.gpus_per_node, system.gpus_per_domain) == (4, 72)


def test_gh200_nodes_hold_one_superchip() -> None:
    catalog = _catalog()
    for system_id in ("gh200-96gb-node", "gh200-144gb-node"):
        system = catalog.system(system_id)
        assert (system.gpus_per_node, system.gpus_per_domain) == (1, 1)
        assert system.host_link is not None and system.host_link.link == "nvlink-c2c"


@pytest.mark.parametrize(
    ("accelerator_id", "low", "high"),
    [
        ("h100-sxm", 2900 / 3350, 2970 / 3350),  # published.csv p0366-p0367 (STREAM copy / triad)
        ("h200-sxm", 4010 / 4800, 4150 / 4800),  # published.csv p0368-p0369
        ("a100-sxm-80gb", 1610 / 2039, 1700 / 2039),  # published.csv p0370-p0371
    ],
)
def test_memory_fraction_within_the_measured_copy_triad_range(accelerator_id: str, low: float, high: float) -> None:
    fraction = _catalog().accelerator(accelerator_id).efficiency.memory_bandwidth_fraction
    assert low - 0.005 <= fraction <= high + 0.005


@pytest.mark.parametrize(
    ("accelerator_id", "dtype", "measured_flops_per_s"),
    [
        ("a100-sxm-80gb", "bf16", 271.2 * TERA),  # published.csv p0337 (MAMF)
        ("h100-sxm", "bf16", 794.5 * TERA),  # p0338
        ("gh200-144gb", "bf16", 828.6 * TERA),  # p0339
        ("b200", "bf16", 1745.0 * TERA),  # p0340
        ("gb200", "bf16", 1822.0 * TERA),  # p0341
        ("mi300x", "bf16", 668.4 * TERA),  # p0342 (theory 1300 in the source, 1307.4 here)
        ("mi325x", "bf16", 784.9 * TERA),  # p0343
        ("h100-sxm", "fp8", 1402.6 * TERA),  # p0344
        ("h200-sxm", "fp8", 1453.4 * TERA),  # p0345
        ("b200", "fp8", 3432.5 * TERA),  # p0346
        ("gb200", "fp8", 3615.6 * TERA),  # p0347
    ],
)
def test_matmul_fraction_reproduces_the_mamf_row(accelerator_id: str, dtype: str, measured_flops_per_s: float) -> None:
    from roofline.dtypes import DType

    accelerator = _catalog().accelerator(accelerator_id)
    peak = accelerator.compute.peak_flops_per_s(DType(dtype))
    assert peak is not None
    fraction = accelerator.efficiency.matmul_fraction_for(DType(dtype))
    assert fraction * peak == pytest.approx(measured_flops_per_s, rel=0.02)


# ---- invariants over the whole catalog ---------------------------------------------------------


@pytest.mark.parametrize("accelerator_id", ACCELERATORS)
def test_low_precision_is_never_slower(accelerator_id: str) -> None:
    compute = _catalog().accelerator(accelerator_id).compute
    ladder = [peak for peak in (compute.bf16, compute.fp8, compute.fp4) if peak is not None]
    assert ladder == sorted(ladder), f"{accelerator_id}: bf16 <= fp8 <= fp4 violated"
    assert compute.bf16 is not None and compute.fp32 is not None and compute.fp32 <= compute.bf16
    assert compute.fp16 == compute.bf16
    if compute.fp6 is not None:  # fp6 runs at the fp8 rate (NVIDIA) or the fp4 rate (AMD CDNA4)
        assert compute.fp8 is not None and compute.fp8 <= compute.fp6 <= (compute.fp4 or compute.fp6)


@pytest.mark.parametrize("accelerator_id", ACCELERATORS)
def test_efficiency_fractions_are_plausible(accelerator_id: str) -> None:
    from roofline.dtypes import DType

    accelerator = _catalog().accelerator(accelerator_id)
    efficiency = accelerator.efficiency
    fractions = [efficiency.memory_bandwidth_fraction, efficiency.attention_fraction]
    fractions += list(efficiency.matmul_fraction.values())
    assert all(0.0 < f <= 1.0 for f in fractions)
    # fused attention does not beat the best-shape GEMM of the same format
    assert efficiency.attention_fraction <= efficiency.matmul_fraction_for(DType.BF16)
    assert 1e-6 <= efficiency.kernel_overhead <= 10e-6
    assert 0 < accelerator.runtime_reserve < 0.1 * accelerator.memory.capacity
    for dtype in efficiency.matmul_fraction:  # a fraction for a format the chip cannot run is a typo
        if dtype != "default":
            assert accelerator.compute.peak_flops_per_s(DType(dtype)) is not None, dtype


@pytest.mark.parametrize("link_id", LINKS)
def test_link_fractions_and_latency(link_id: str) -> None:
    link = _catalog().link(link_id)
    assert 0.0 < link.achievable_fraction <= 1.0
    assert 0.1e-6 <= link.latency <= 20e-6
    expected = {
        "nvlink": Wiring.SWITCHED, "pcie": Wiring.ROOT_COMPLEX, "infiniband": Wiring.SWITCHED,
        "ethernet": Wiring.SWITCHED, "xgmi": Wiring.POINT_TO_POINT, "c2c": Wiring.POINT_TO_POINT,
    }  # fmt: skip
    assert link.wiring is expected[link.family]


def test_every_block_has_a_source() -> None:
    catalog = _catalog()
    for accelerator in catalog.accelerators.values():
        blocks = (accelerator.memory, accelerator.compute, accelerator.sram, accelerator.efficiency)
        for block in (*blocks, accelerator.power):
            assert block.source.strip(), f"{accelerator.id}: {type(block).__name__} has no source"
    for item in (*catalog.links.values(), *catalog.systems.values()):
        assert item.source.strip(), item.id


def test_pre_release_parts_are_marked() -> None:
    catalog = _catalog()
    rubin, vr = catalog.accelerator("rubin"), catalog.system("vr-nvl72")
    assert rubin.status == "pre-release" and "pre-release" in rubin.notes.lower()
    assert vr.status == "pre-release" and "pre-release" in vr.notes.lower()
    released = [a.id for a in catalog.accelerators.values() if a.status == "released"]
    assert set(released) == set(ACCELERATORS) - {"rubin"}
    pre_release_systems = {s.id for s in catalog.systems.values() if s.status == "pre-release"}
    assert pre_release_systems == {"vr-nvl72"}


# ---- resolving clusters -----------------------------------------------------------------------


def test_default_system_spans_nodes() -> None:
    cluster = resolve_cluster(hardware="h100-sxm", num_gpus=16)
    assert cluster.system.id == "dgx-h100"
    assert cluster.num_nodes == 2
    assert cluster.domain_size == 8
    assert cluster.scale_out is not None and cluster.scale_out.link.id == "ib-ndr"


def test_explicit_system() -> None:
    cluster = resolve_cluster(hardware="h200-sxm", system="dgx-h200", num_gpus=8)
    assert (cluster.system.id, cluster.accelerator.id, cluster.num_nodes) == ("dgx-h200", "h200-sxm", 1)
    rack = resolve_cluster(system="gb200-nvl72", num_gpus=72)
    assert (rack.accelerator.id, rack.num_nodes, rack.domain_size) == ("gb200", 18, 72)


def test_hardware_and_system_mismatch_is_an_error() -> None:
    with pytest.raises(RooflineError, match="dgx-h200"):
        resolve_cluster(hardware="h100-sxm", system="dgx-h200")


@pytest.mark.parametrize("accelerator_id", ACCELERATORS)
def test_every_accelerator_resolves_to_two_nodes(accelerator_id: str) -> None:
    catalog = _catalog()
    per_node = catalog.system(DEFAULT_SYSTEMS[accelerator_id]).gpus_per_node
    cluster = resolve_cluster(hardware=accelerator_id, num_gpus=2 * per_node, catalog=catalog)
    assert cluster.num_nodes == 2
    assert cluster.scale_out is not None


# ---- user files -------------------------------------------------------------------------------


def _write_user_accelerator(directory: Path, new_id: str, **changes: object) -> Path:
    data = yaml.safe_load((DATA_DIR / "accelerators" / "h100-sxm.yaml").read_text(encoding="utf-8"))
    data.update(id=new_id, name=f"user copy {new_id}", **changes)
    path = directory / f"{new_id}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_user_accelerator_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_user_accelerator(tmp_path, "my-h100")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))  # load_catalog caches per value; tmp_path is fresh
    catalog = load_catalog()
    assert "my-h100" in catalog.accelerators
    assert set(ACCELERATORS) <= set(catalog.accelerators)
    cluster = resolve_cluster(hardware="my-h100", num_gpus=8)
    assert cluster.accelerator.id == "my-h100"
    assert cluster.system.id == "dgx-h100"  # the copy keeps h100-sxm's default system


def test_user_file_replaces_a_packaged_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write_user_accelerator(tmp_path, "h100-sxm")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["memory"]["bandwidth"] = "3.9 TB/s"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert load_catalog().accelerator("h100-sxm").memory.bandwidth == pytest.approx(3.9e12)


def test_user_accelerator_by_path(tmp_path: Path) -> None:
    path = _write_user_accelerator(tmp_path, "my-gpu")
    cluster = resolve_cluster(hardware=str(path), num_gpus=8)
    assert cluster.accelerator.id == "my-gpu"
    assert cluster.accelerator.compute.bf16 == pytest.approx(989.4e12)
    assert cluster.system.id == "dgx-h100"


def test_missing_hardware_file(tmp_path: Path) -> None:
    with pytest.raises(RooflineError, match="does not exist"):
        resolve_cluster(hardware=str(tmp_path / "nope.yaml"))


def test_environment_naming_a_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x", encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, str(not_a_dir))
    with pytest.raises(RooflineError, match=ENV_VAR):
        load_catalog()


# ---- bad files --------------------------------------------------------------------------------


def _broken_copy(directory: Path, old: str, new: str) -> Path:
    text = (DATA_DIR / "accelerators" / "h100-sxm.yaml").read_text(encoding="utf-8")
    assert old in text
    path = directory / "broken-gpu.yaml"
    path.write_text(text.replace("id: h100-sxm", "id: broken-gpu").replace(old, new), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "field", "says"),
    [
        ("bandwidth: 3.35 TB/s", "bandwidth: 3350", "memory.bandwidth", "no unit"),
        ("bandwidth: 3.35 TB/s", "bandwidth: 3.35 TFLOP/s", "memory.bandwidth", "expected bytes/s"),
        ('notes: ""', 'note: ""', "note", "unknown field"),
        # a misspelled required key names the typo and the field it was meant to be
        ("sm_count: 132", "sm_cuont: 132", "sram.sm_cuont", "misspelled 'sram.sm_count'"),
        ("runtime_reserve: 3 GiB", "runtime_reserv: 3 GiB", "runtime_reserv", "misspelled 'runtime_reserve'"),
    ],
)
def test_bad_file_names_the_file_and_the_field(tmp_path: Path, old: str, new: str, field: str, says: str) -> None:
    path = _broken_copy(tmp_path, old, new)
    with pytest.raises(RooflineError) as caught:
        HardwareCatalog().add_file(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"'{field}'" in message
    assert says in message


def test_bad_file_in_the_environment_fails_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _broken_copy(tmp_path, "bandwidth: 3.35 TB/s", "bandwidth: 3350")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(RooflineError, match="memory.bandwidth") as caught:
        load_catalog()
    assert str(path) in str(caught.value)


def test_bad_file_by_path_fails_resolving(tmp_path: Path) -> None:
    path = _broken_copy(tmp_path, "bandwidth: 3.35 TB/s", "bandwidth: 3.35 TFLOP/s")
    with pytest.raises(RooflineError, match="memory.bandwidth"):
        resolve_cluster(hardware=str(path))

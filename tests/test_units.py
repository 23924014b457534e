import pytest

from roofline.units import Dimension, format_bytes, format_count, format_rate, format_time, parse_quantity


@pytest.mark.parametrize(
    ("text", "dimension", "expected"),
    [
        ("3.35 TB/s", Dimension.BANDWIDTH, 3.35e12),
        ("400 Gb/s", Dimension.BANDWIDTH, 50e9),  # bits per second: /8
        ("80 GiB", Dimension.BYTES, 80 * 2**30),
        ("80 GB", Dimension.BYTES, 80e9),
        ("989.4 TFLOP/s", Dimension.FLOP_RATE, 989.4e12),
        ("1978.9 TOP/s", Dimension.FLOP_RATE, 1978.9e12),
        ("2 us", Dimension.TIME, 2e-6),
        ("1.5 ms", Dimension.TIME, 1.5e-3),
        ("700 W", Dimension.POWER, 700.0),
        ("1830 MHz", Dimension.FREQUENCY, 1.83e9),
    ],
)
def test_parse_quantity(text: str, dimension: Dimension, expected: float) -> None:
    assert parse_quantity(text, dimension) == pytest.approx(expected)


@pytest.mark.parametrize("bad", [3.35, 80, "3.35", "3.35 furlongs", "fast", None, True])
def test_bare_numbers_and_unknown_units_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_quantity(bad, Dimension.BANDWIDTH)


def test_wrong_dimension_is_rejected_with_both_dimensions_named() -> None:
    with pytest.raises(ValueError, match="FLOP/s quantity, expected bytes/s"):
        parse_quantity("3.35 TFLOP/s", Dimension.BANDWIDTH)


def test_formatting_is_decimal_for_rates_and_counts() -> None:
    assert format_rate(3.35e12, "B/s") == "3.35 TB/s"
    assert format_count(70.55e9) == "70.55 B"  # never 1024-based
    assert format_bytes(80 * 2**30, binary=True) == "80 GiB"
    assert format_bytes(80e9) == "80 GB"
    assert format_time(17.9e-3) == "17.9 ms"

"""Resource quantities parse, round and fail exactly like apimachinery's ParseQuantity."""

from __future__ import annotations

from decimal import Decimal

import pytest

from machinery.quantity import FORMAT_ERROR, QuantityError, cpu_millis, parse_quantity, to_bytes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", "0"),
        ("1", "1"),
        ("100m", "0.1"),
        ("1.5", "1.5"),
        ("+2", "2"),
        ("-2", "-2"),
        ("1n", "0.000000001"),
        ("1u", "0.000001"),
        ("1k", "1000"),
        ("1M", "1000000"),
        ("1G", "1000000000"),
        ("1T", "1000000000000"),
        ("1P", "1000000000000000"),
        ("1E", "1000000000000000000"),
        ("1Ki", "1024"),
        ("1Mi", "1048576"),
        ("1.5Gi", "1610612736"),
        ("1Ti", str(2**40)),
        ("1Pi", str(2**50)),
        ("1Ei", str(2**60)),
        ("1e3", "1000"),
        ("1E3", "1000"),
        ("1e-3", "0.001"),
        ("1.5e+2", "150"),
        ("0.1n", "0.000000001"),  # rounded up to the nano minimum, never to zero
        ("-0.1n", "-0.000000001"),
        (".5", "0.5"),
        ("5.", "5"),
        ("007", "7"),
        (3, "3"),
        (0.5, "0.5"),
        (2.0, "2"),
    ],
)
def test_parse_quantity(text: str | int | float, expected: str) -> None:
    assert parse_quantity(text) == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", FORMAT_ERROR),
        ("abc", FORMAT_ERROR),
        ("1 Gi", FORMAT_ERROR),
        ("1Gi ", FORMAT_ERROR),
        ("1Z", FORMAT_ERROR),
        ("1e3.5", FORMAT_ERROR),
        ("--1", "unable to parse quantity's suffix"),
        ("1Mm", "unable to parse quantity's suffix"),
        ("1e", "unable to parse quantity's suffix"),
        ("1ki", "unable to parse quantity's suffix"),
        ("1KiB", FORMAT_ERROR),
        ("1e99999999999999999999", "unable to parse quantity's suffix"),
    ],
)
def test_parse_quantity_rejects(text: str, message: str) -> None:
    with pytest.raises(QuantityError) as info:
        parse_quantity(text)
    assert str(info.value) == message


@pytest.mark.parametrize("value", [True, None, [], {}, float("nan"), float("inf")])
def test_parse_quantity_rejects_non_numbers(value: object) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(value)  # type: ignore[arg-type]


def test_error_message_is_kubernetes_regex() -> None:
    assert FORMAT_ERROR == "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    assert issubclass(QuantityError, ValueError)


@pytest.mark.parametrize(
    ("text", "millis"),
    [("100m", 100), ("1", 1000), ("0.5", 500), ("2.5", 2500), ("1.0001", 1001), ("0.0001", 1),
     ("1n", 1), ("250m", 250), ("1k", 1_000_000), ("-1.0001", -1001), (2, 2000), ("0", 0)],
)
def test_cpu_millis_rounds_up(text: str | int, millis: int) -> None:
    assert cpu_millis(text) == millis


@pytest.mark.parametrize(
    ("text", "count"),
    [("1Ki", 1024), ("1.5k", 1500), ("128Mi", 134217728), ("1Gi", 1073741824), ("0.5", 1),
     ("100m", 1), ("1e3", 1000), ("10", 10)],
)
def test_to_bytes(text: str, count: int) -> None:
    assert to_bytes(text) == count


def test_huge_values_are_clamped_cheaply() -> None:
    assert to_bytes("1e999999999") == 2**63 - 1
    assert cpu_millis("-1e999999999") == -(2**63)
    assert parse_quantity("100Ei") == Decimal(2**63 - 1)  # binary SI is capped like Kubernetes
    assert parse_quantity("1e-999999999") == Decimal("1e-9")

"""Kubernetes resource quantities ("500m", "1.5Gi", "1e3"), parsed exactly like apimachinery.

Role: the one place that turns the strings users write under ``resources``, ``capacity`` and
``allocatable`` into numbers. Data flow: the apiserver's validation calls ``parse_quantity`` to
reject malformed values (with Kubernetes' own error text); the scheduler and the kubelet call
``cpu_millis`` and ``to_bytes`` on already-valid objects to do arithmetic.

The grammar and rounding follow ``k8s.io/apimachinery/pkg/api/resource/quantity.go``:
``<sign><digits>[.<digits>]<suffix>`` where the suffix is a decimal SI one (n u m "" k M G T P E),
a binary SI one (Ki Mi Gi Ti Pi Ei) or a decimal exponent (e3, E-2). Values are exact decimals,
never floats, and non-zero values are rounded up (away from zero) to nano precision, so that
"0.1n" still asks for *some* resource.
"""

from __future__ import annotations

import decimal
import math
from decimal import ROUND_UP, Decimal

_SPLIT_RE_TEXT = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
FORMAT_ERROR = f"quantities must match the regular expression '{_SPLIT_RE_TEXT}'"
NUMERIC_ERROR = "unable to parse numeric part of quantity"
SUFFIX_ERROR = "unable to parse quantity's suffix"

_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")
_DECIMAL_SUFFIXES: dict[str, int] = {
    "n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18,
}
_BINARY_SUFFIXES: dict[str, int] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_NANO = Decimal("1e-9")
# Kubernetes caps binary-SI quantities at the int64 maximum; integer results are clamped the same way.
_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity; the message is Kubernetes' own."""


def _split(text: str) -> tuple[bool, str, str, str]:
    """Scan ``text`` into (positive, integer digits, fraction digits, suffix) like parseQuantityString."""
    positive = True
    pos, end = 0, len(text)
    if text[0] in "+-":
        positive = text[0] == "+"
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        # Only a sign and zeros: Kubernetes reads this as zero.
        return positive, "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos != end:
        raise QuantityError(FORMAT_ERROR)
    return positive, num, denom, text[suffix_start:end]


def _interpret_suffix(suffix: str) -> tuple[int, int]:
    """Return (base, exponent) for a suffix, e.g. "Mi" -> (2, 20), "k" -> (10, 3), "e-2" -> (10, -2)."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix]
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix]
    if len(suffix) > 1 and suffix[0] in "eE":
        rest = suffix[1:]
        body = rest[1:] if rest[0] in "+-" else rest
        if body and body.isdigit() and body.isascii() and _INT64_MIN <= int(rest) <= _INT64_MAX:
            return 10, int(rest)
    raise QuantityError(SUFFIX_ERROR)


def _number_text(value: str | int | float) -> str:
    """The literal a JSON decoder would hand to Kubernetes for this value."""
    if isinstance(value, bool):
        raise QuantityError(FORMAT_ERROR)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(FORMAT_ERROR)
        return repr(value)
    if isinstance(value, str):
        return value
    raise QuantityError(FORMAT_ERROR)


def parse_quantity(value: str | int | float) -> Decimal:
    """Parse a quantity into its exact decimal value; raise ``QuantityError`` like ParseQuantity."""
    text = _number_text(value)
    if not text:
        raise QuantityError(FORMAT_ERROR)
    positive, num, denom, suffix = _split(text)
    base, exponent = _interpret_suffix(suffix)
    digits = num + denom
    # Enough precision that no arithmetic below ever rounds: the result has at most the input's
    # digits plus the 19 digits of 2**60 plus the 9 nano digits.
    ctx = decimal.Context(
        prec=len(digits) + 40, rounding=ROUND_UP, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN,
        traps=[decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero],
    )
    try:
        scale = exponent if base == 10 else 0
        amount = Decimal(f"{num}.{denom or '0'}E{scale}")
        if base == 2:
            amount = ctx.multiply(amount, Decimal(2**exponent))
        exponent_of_amount = amount.as_tuple().exponent  # an int: the traps above keep it finite
        if isinstance(exponent_of_amount, int) and exponent_of_amount < -9:
            amount = amount.quantize(_NANO, rounding=ROUND_UP, context=ctx)
        if base == 2 and amount > _INT64_MAX:
            amount = Decimal(_INT64_MAX)
    except (decimal.DecimalException, ValueError) as exc:
        raise QuantityError(NUMERIC_ERROR) from exc
    return amount if positive else amount.copy_negate()


def _shift(amount: Decimal, places: int) -> Decimal:
    """Multiply by 10**places exactly (no context rounding, whatever the digit count)."""
    sign, digits, exponent = amount.as_tuple()
    return Decimal((sign, digits, int(exponent) + places))


def _clamp_int64(amount: Decimal) -> int:
    """Round up away from zero to an integer, clamped to int64 so huge inputs stay cheap."""
    if amount >= _INT64_MAX:
        return _INT64_MAX
    if amount <= _INT64_MIN:
        return _INT64_MIN
    return int(amount.to_integral_value(rounding=ROUND_UP))


def cpu_millis(value: str | int | float) -> int:
    """Milli-units of a quantity, rounded up like Quantity.MilliValue ("100m" -> 100, "0.5" -> 500)."""
    return _clamp_int64(_shift(parse_quantity(value), 3))


def to_bytes(value: str | int | float) -> int:
    """Whole units of a quantity, rounded up like Quantity.Value ("1Ki" -> 1024, "1.5k" -> 1500)."""
    return _clamp_int64(parse_quantity(value))

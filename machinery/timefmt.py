"""Timestamps and ages as Kubernetes prints them, shared by the apiserver's tables and mkctl.

Data flow: an object's RFC 3339 timestamp (``metav1.Time`` or ``MicroTime``) -> ``parse_time`` ->
aware datetime -> ``age_since(value, now)`` -> ``human_duration`` (apimachinery's
``duration.HumanDuration``: "5s", "3m20s", "2d3h", "3y").
"""

from __future__ import annotations

import re

from datetime import datetime, timezone
from typing import Any


def human_duration(seconds: float) -> str:
    """A duration as apimachinery's ``duration.HumanDuration`` writes it: "5s", "3m20s", "2d3h"."""
    whole = int(seconds)  # truncates toward zero, like Go's int(d.Seconds())
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 60 * 2:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if rest == 0 else f"{hours // 24 // 365}y{rest}d"
    return f"{hours // 24 // 365}y"


def aware(moment: datetime) -> datetime:
    """``moment`` with UTC assumed when it carries no timezone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime; None when unset, not a string or unparsable."""
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return aware(moment)


def age_since(value: Any, now: datetime) -> str:
    """``translateTimestampSince``: the age of a timestamp at ``now``, "<unknown>" when unset."""
    moment = parse_time(value)
    if moment is None:
        return "<unknown>"
    return human_duration((aware(now) - moment).total_seconds())


def parse_rfc3339(text: str) -> datetime:
    """A strict RFC 3339 timestamp (``Z`` or an offset, any number of fraction digits) as UTC.

    Raises ``ValueError`` for anything else (no time zone, no ``T``), as Go's time.Parse does for
    ``sinceTime`` and friends; ``parse_time`` is the lenient reader of stored timestamps.
    """
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    if "." in s:
        head, rest = s.split(".", 1)
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        s = head + "." + (rest[:i] + "000000")[:6] + rest[i:]
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None or "T" not in s.upper():
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    return dt.astimezone(timezone.utc)


_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str) -> float:
    """Seconds of a Go-style duration as Kubernetes tools take it: ``30s``, ``1m30s``, ``1h``,
    ``500ms``, or a bare number of seconds; raises ``ValueError`` naming the value otherwise."""
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f'invalid duration "{value}": the duration must be like 30s, 1m or 1h')
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


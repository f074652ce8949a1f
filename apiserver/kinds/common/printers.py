"""Cell formatters several kinds' tables share, as Kubernetes' printers format them.

The columns and cells of each kind live in its strategy module (``columns``/``row``); these are
the small pieces they have in common (label maps, selectors, host:port, "+ N more...").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def format_labels(labels: Mapping[str, str] | None) -> str:
    """``labels.FormatLabels``: "a=1,b=2" sorted by key, "<none>" when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


def _requirement(expression: Mapping[str, Any]) -> str:
    key, operator = expression.get("key", ""), expression.get("operator", "")
    values = ",".join(sorted(expression.get("values") or []))
    if operator == "In":
        return f"{key} in ({values})"
    if operator == "NotIn":
        return f"{key} notin ({values})"
    if operator == "Exists":
        return str(key)
    if operator == "DoesNotExist":
        return f"!{key}"
    raise ValueError(f"unknown label selector operator {operator!r}")


def selector_string(selector: Mapping[str, Any] | None) -> str:
    """``LabelSelectorAsSelector(sel).String()``: requirements sorted by key; raises if invalid."""
    if not selector:
        return ""
    pairs = [(key, f"{key}={value}") for key, value in (selector.get("matchLabels") or {}).items()]
    pairs += [(expr.get("key", ""), _requirement(expr)) for expr in selector.get("matchExpressions") or []]
    return ",".join(text for _, text in sorted(pairs, key=lambda pair: pair[0]))


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """``metav1.FormatLabelSelector``: like the selector string, "<none>" when empty."""
    try:
        text = selector_string(selector)
    except ValueError:
        return "<error>"
    return text or "<none>"


def join_host_port(host: str, port: Any) -> str:
    """``net.JoinHostPort``: brackets around IPv6 addresses."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def with_more(items: list[str], *, total: int, limit: int = 3) -> str:
    text = ",".join(items[:limit])
    return f"{text} + {total - limit} more..." if total > limit else text


def load_balancer_addresses(status: Mapping[str, Any]) -> str:
    """``loadBalancerStatusStringer`` (wide): sorted unique IPs, else hostnames, comma-joined."""
    found = {entry.get("ip") or entry.get("hostname") for entry in (status.get("ingress") or [])}
    return ",".join(sorted(address for address in found if address))

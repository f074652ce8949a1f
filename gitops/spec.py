"""A GitSync object read into typed settings (pure).

Data flow: the GitSync from the informer cache (a plain dict, defaults already applied by the CRD's
schema, but older objects or hand-made ones may lack them) -> ``parse(obj)`` -> ``SyncSpec`` or
``SpecError`` with a message that names the field, which the reconciler reports as the ``Stalled``
reason instead of retrying.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from machinery.timefmt import parse_duration

from .source import Ref

SOURCE_SECRET_KEYS = ("username", "password", "identity", "known_hosts")
WEBHOOK_SECRET_KEY = "token"


class SpecError(ValueError):
    """The GitSync's spec cannot be used as it is; the message names the field."""


@dataclass(frozen=True)
class SyncSpec:
    url: str
    ref: Ref
    path: str
    interval: float
    timeout: float
    prune: bool = True
    allow_empty: bool = False
    self_heal: bool = True
    suspend: bool = False
    target_namespace: str | None = None
    secret_name: str | None = None
    webhook_secret_name: str | None = None


def _duration(spec: Mapping[str, Any], field: str, default: str) -> float:
    raw = spec.get(field, default)
    try:
        seconds = parse_duration(str(raw))
    except ValueError as e:
        raise SpecError(f"spec.{field}: {e}") from None
    if seconds <= 0:
        raise SpecError(f'spec.{field}: must be more than 0, not "{raw}"')
    return seconds


def _ref(raw: Any) -> Ref:
    ref = raw if isinstance(raw, Mapping) else {}
    chosen = {k: str(ref[k]) for k in ("branch", "tag", "commit") if ref.get(k)}
    if not chosen:
        return Ref(branch="main")
    if len(chosen) > 1:
        raise SpecError(f"spec.ref: set exactly one of branch, tag or commit, not {', '.join(sorted(chosen))}")
    try:
        return Ref(**chosen)
    except ValueError as e:
        raise SpecError(f"spec.ref: {e}") from None


def _secret_name(raw: Any) -> str | None:
    if isinstance(raw, Mapping) and raw.get("name"):
        return str(raw["name"])
    return None


def parse(obj: Mapping[str, Any]) -> SyncSpec:
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    url = str(spec.get("url") or "").strip()
    if not url:
        raise SpecError("spec.url: Required value")
    webhook = spec.get("webhook") if isinstance(spec.get("webhook"), Mapping) else {}
    assert isinstance(webhook, Mapping)
    return SyncSpec(
        url=url, ref=_ref(spec.get("ref")), path=str(spec.get("path") or ""),
        interval=_duration(spec, "interval", "15s"), timeout=_duration(spec, "timeout", "1m"),
        prune=bool(spec.get("prune", True)), allow_empty=bool(spec.get("allowEmpty", False)),
        self_heal=bool(spec.get("selfHeal", True)), suspend=bool(spec.get("suspend", False)),
        target_namespace=str(spec.get("targetNamespace") or "") or None,
        secret_name=_secret_name(spec.get("secretRef")),
        webhook_secret_name=_secret_name(webhook.get("secretRef")))

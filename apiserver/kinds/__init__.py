"""Every kind the API server serves, one strategy module each (``apiserver/kinds/<group>/<kind>.py``).

Data flow: ``builtin()`` imports every module of the group packages below and collects their
``STRATEGY`` objects -> ``apiserver.resources.ResourceTable`` -> registry, discovery, OpenAPI,
tables and the protobuf decoder ask the strategies. Adding a kind is adding one module (plus its
tests); nothing else lists the kinds. ``common/`` holds what several kinds share (meta and pod
template facts, printers) and defines no kind itself.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Iterable, Mapping

from machinery.errors import StatusCause

from ..openapi.facts import Facts
from ..validation.objectmeta import validate_object_meta
from .base import Strategy, collect_type_facts
from .common import meta, podspec_messages, podtemplate

_GROUP_PACKAGES = ("core", "apps", "batch", "autoscaling", "policy", "storage", "networking", "coordination",
                   "apiextensions", "discovery", "rbac", "authentication", "authorization")


@functools.cache
def builtin() -> tuple[Strategy, ...]:
    """The builtin kinds, core group first, then by group and kind (Kubernetes' discovery order)."""
    found: list[Strategy] = []
    for group in _GROUP_PACKAGES:
        try:
            package = importlib.import_module(f"{__name__}.{group}")
        except ModuleNotFoundError:
            continue
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            strategy = getattr(module, "STRATEGY", None)
            if isinstance(strategy, Strategy):
                found.append(strategy)
            # Other served versions of the same kind (converted by their from_storage and decode).
            found.extend(s for s in getattr(module, "MORE_VERSIONS", ()) if isinstance(s, Strategy))
    return tuple(sorted(found, key=lambda s: (s.group != "", s.group, s.plural)))


def by_kind(kind: str, group: str | None = None) -> Strategy:
    """A builtin strategy by kind (and group when given); KeyError if none."""
    for strategy in builtin():
        if strategy.kind == kind and (group is None or strategy.group == group):
            return strategy
    raise KeyError(kind)


def type_facts(strategies: Iterable[Strategy]) -> dict[str, dict[str, Facts]]:
    """Every type's merge facts: the shared meta and pod template types plus each kind's own."""
    return collect_type_facts(strategies, meta.TYPE_FACTS, podtemplate.TYPE_FACTS)


def protobuf_messages(strategies: Iterable[Strategy]) -> Mapping[str, str]:
    """Every protobuf message table: the shared ones plus each kind's own."""
    out: dict[str, str] = {**meta.PROTOBUF_MESSAGES, **podspec_messages.PROTOBUF_MESSAGES}
    for strategy in strategies:
        out.update(strategy.protobuf_messages)
    return out


def validate_object(strategy: Strategy, obj: object, *, old: object = None) -> list[StatusCause]:
    """Every validation problem of ``obj`` (already defaulted) as Kubernetes field causes.

    ObjectMeta first, then the kind's rules, then the create-only rules or (``old`` given: an
    update) the rules that compare with the stored object. Never raises, whatever JSON ``obj``
    holds: a validator bug becomes a cause, never a 500.
    """
    if not isinstance(obj, dict):
        return [StatusCause("FieldValueInvalid", "Invalid value: must be of type object", "")]
    try:
        causes = validate_object_meta(obj, name_fn=strategy.name_errors, namespaced=strategy.namespaced)
        causes += strategy.validate(obj)
        if isinstance(old, dict):
            causes += strategy.validate_update(obj, old)
        else:
            causes += strategy.validate_create(obj)
    except Exception as exc:  # noqa: BLE001 - a validator bug must become a 422 cause, never a 500
        return [StatusCause("InternalError", f"Internal error: {exc!r}", "")]
    return causes


__all__ = ["Strategy", "builtin", "by_kind", "protobuf_messages", "type_facts", "validate_object"]

"""Type facts: how each field of a generated model merges, as Kubernetes' struct tags say.

Role: the per-kind strategy modules transcribe the ``patchStrategy``/``patchMergeKey`` and
``+listType``/``+listMapKey``/``+mapType`` tags (and the few defaults that server-side apply
needs for list-map keys, e.g. a port's ``protocol: TCP``) of k8s.io/api into ``Facts``. The
OpenAPI builder renders them as the ``x-kubernetes-*`` extensions Kubernetes publishes; kubectl
(client-side apply), strategic merge patch and server-side apply then read them back from the
schemas (``machinery.schemaview``).

A facts table is ``{generated model name: {JSON field name: Facts}}``, e.g.
``{"V1PodSpec": {"containers": keyed("name")}}``. The key ``""`` names the type itself: a
type-level ``map_type`` (``{"V1LabelSelector": {"": ATOMIC}}``) becomes the component schema's
``x-kubernetes-map-type``, as Kubernetes publishes ``+structType=atomic``.

A fact applies by the shape of the node it lands on: on an array only ``list_type``,
``map_keys``, ``patch_strategy`` and ``merge_key`` mean anything; on an object (a struct or a
map) only ``map_type`` and ``patch_strategy`` (``retainKeys``). So ``ATOMIC`` says "atomic,
whatever this is" and fits lists, maps and structs alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final


class _NoDefault:
    """The sentinel for "no default published" (``None`` is a valid JSON default)."""

    _instance: "_NoDefault | None" = None

    def __new__(cls) -> "_NoDefault":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_DEFAULT"

    def __reduce__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Final = _NoDefault()


@dataclass(frozen=True)
class Facts:
    """The merge facts of one field (or, under the key ``""``, of one type)."""

    patch_strategy: str | None = None  # "merge", "retainKeys", "merge,retainKeys", "replace"
    merge_key: str | None = None  # x-kubernetes-patch-merge-key
    list_type: str | None = None  # "atomic" | "set" | "map"
    map_keys: tuple[str, ...] = ()  # x-kubernetes-list-map-keys (list_type "map")
    map_type: str | None = None  # "atomic" | "granular", for structs and maps
    default: Any = NO_DEFAULT

    def __post_init__(self) -> None:
        if self.list_type not in (None, "atomic", "set", "map"):
            raise ValueError(f"list_type must be atomic, set or map, not {self.list_type!r}")
        if self.map_type not in (None, "atomic", "granular"):
            raise ValueError(f"map_type must be atomic or granular, not {self.map_type!r}")
        if self.list_type == "map" and not self.map_keys:
            raise ValueError("list_type map needs map_keys")
        if self.merge_key is not None and "merge" not in (self.patch_strategy or "").split(","):
            raise ValueError("a merge_key needs patch_strategy merge")

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT

    def list_extensions(self) -> dict[str, Any]:
        """The ``x-kubernetes-*`` extensions these facts put on an array node."""
        out: dict[str, Any] = {}
        if self.list_type:
            out["x-kubernetes-list-type"] = self.list_type
        if self.map_keys:
            out["x-kubernetes-list-map-keys"] = list(self.map_keys)
        if self.merge_key:
            out["x-kubernetes-patch-merge-key"] = self.merge_key
        if self.patch_strategy:
            out["x-kubernetes-patch-strategy"] = self.patch_strategy
        return out

    def object_extensions(self) -> dict[str, Any]:
        """The ``x-kubernetes-*`` extensions these facts put on a struct or map node."""
        out: dict[str, Any] = {}
        if self.map_type:
            out["x-kubernetes-map-type"] = self.map_type
        if self.patch_strategy:
            out["x-kubernetes-patch-strategy"] = self.patch_strategy
        return out


FactsTable = Mapping[str, Mapping[str, Facts]]


def keyed(key: str, *more_ssa_keys: str, retain_keys: bool = False) -> Facts:
    """A list of objects merged by ``key`` (strategic merge) and keyed by ``key, *more`` (SSA).

    ``keyed("containerPort", "protocol")`` is Container.ports: ``patchMergeKey=containerPort``,
    ``+listType=map +listMapKey=containerPort +listMapKey=protocol``.
    """
    return Facts(patch_strategy="merge,retainKeys" if retain_keys else "merge", merge_key=key,
                 list_type="map", map_keys=(key, *more_ssa_keys))


SET: Final = Facts(list_type="set")  # +listType=set (no strategic-merge strategy)
MERGED_SET: Final = Facts(patch_strategy="merge", list_type="set")  # finalizers, podCIDRs
ATOMIC: Final = Facts(list_type="atomic", map_type="atomic")  # atomic list, map or struct
RETAIN_KEYS: Final = Facts(patch_strategy="retainKeys")  # DeploymentSpec.strategy and the like

__all__ = ["ATOMIC", "Facts", "FactsTable", "MERGED_SET", "NO_DEFAULT", "RETAIN_KEYS", "SET", "keyed"]

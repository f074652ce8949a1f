"""A CRD version's schema applied to custom objects: pruning, defaulting and validation.

Role: what apiextensions-apiserver does to every custom object with the structural schema of its
version, in the same order and with the same field paths and messages:

- ``prune(obj)`` on decoding (``pruning.PruneWithOptions`` with the object as resource root, then
  ``PruneNonNullableNullsWithoutDefaults``, then the ObjectMeta coercion of embedded resources):
  unknown fields are dropped unless ``x-kubernetes-preserve-unknown-fields``; ``apiVersion``,
  ``kind`` and ``metadata`` are kept at the root and in ``x-kubernetes-embedded-resource`` objects;
  non-nullable nulls without a default are dropped. Returns the dropped paths ("spec.foo",
  "spec.items[0].bar") for the ``unknown field "spec.foo"`` warnings or the 422 of
  ``fieldValidation=Strict``.
- ``default(obj)`` after decoding and when reading from storage (``defaulting.Default``).
- ``validate(obj, old=None)`` on create and update (the strategy's order: kube-openapi value
  validation with ratcheting on update, embedded ObjectMeta/TypeMeta, list-type map/set
  uniqueness); ``validate_status`` for the status subresource; ``scale_errors`` for CRDs with a
  scale subresource.

Data flow: ``StructuralSchema.compile(raw)`` once per CRD version (the schema has passed
``structural_errors`` when the CRD was written) -> the server calls ``prune``, ``default``,
``validate`` per request and ``machinery.errors.invalid`` wraps the causes.

Out of scope: ``x-kubernetes-validations`` (CEL rules) are neither compiled nor evaluated; CRD
writes only get the static checks of the rule fields (``schemacheck``). The root ``metadata`` is
ObjectMeta and validated generically by the server; the schema can only add constraints on
``metadata.name``/``generateName``, which ``validate`` applies (the whole object goes through the
schema, as in Kubernetes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from machinery.errors import StatusCause
from machinery.gofmt import go_number, go_sprint, go_type_name

from . import gofmt
from . import algorithms as algo
from .schema import Node
from .schemacheck import structural_errors
from .values import NO_OLD, validate_value

__all__ = ["StructuralSchema", "scale_errors", "structural_errors"]


@dataclass(frozen=True)
class StructuralSchema:
    """The compiled ``openAPIV3Schema`` of one CRD version."""

    root: Node

    @classmethod
    def compile(cls, open_api_v3_schema: dict[str, Any]) -> StructuralSchema:
        return cls(Node.parse(open_api_v3_schema))

    # ================================================================== pruning

    def prune(self, obj: dict[str, Any]) -> list[str]:
        """Drop unknown fields and non-nullable nulls without a default, in place; return the dropped paths."""
        paths = algo.Paths()
        algo.prune(obj, self.root, paths, embedded=True)
        pruned = sorted(paths.pruned)
        algo.prune_nulls(obj, self.root)
        meta_paths: list[str] = []
        algo.coerce_embedded(obj, self.root, "", meta_paths, root=True)
        return pruned + sorted(meta_paths)

    # ================================================================== defaulting

    def default(self, obj: dict[str, Any]) -> None:
        """Apply the schema's defaults in place where a field is absent (or a non-nullable null)."""
        algo.default(obj, self.root)

    # ================================================================== validation

    def validate(self, obj: dict[str, Any], *, old: dict[str, Any] | None = None,
                 scale: dict[str, Any] | None = None) -> list[StatusCause]:
        """Create (``old`` None) or update validation of a custom object against the schema.

        ``scale`` is the version's ``subresources.scale``: its replica and selector paths are checked
        where Kubernetes checks them, after the schema. TypeMeta (kind and apiVersion match the CRD)
        and the root ObjectMeta are the server's generic checks.
        """
        causes = validate_value(self.root, obj, old=NO_OLD if old is None else old)
        if scale:
            causes += scale_errors(obj, scale)
        causes += algo.validate_embedded(obj, self.root, "")
        list_causes = algo.list_sets_and_maps(obj, self.root, "")
        if old is None or not algo.list_sets_and_maps(old, self.root, ""):
            causes += list_causes  # an update only fails on list uniqueness the old object kept
        return causes

    def validate_status(self, obj: dict[str, Any], *, old: dict[str, Any] | None = None,
                        scale: dict[str, Any] | None = None) -> list[StatusCause]:
        """The status subresource: only ``status`` is validated, against ``properties.status``."""
        causes: list[StatusCause] = []
        status_schema = self.root.properties.get("status")
        if "status" in obj and status_schema is not None:
            old_status = old.get("status", NO_OLD) if isinstance(old, dict) else NO_OLD
            causes += validate_value(status_schema, obj["status"], prefix="status", old=old_status)
        if scale:
            causes += scale_errors(obj, scale, status_only=True)
        new_list = algo.list_sets_and_maps(obj, self.root, "")
        if new_list and (old is None or not algo.list_sets_and_maps(old, self.root, "")):
            causes += new_list
        return causes


# ====================================================================== scale subresource

def _nested(obj: dict[str, Any], json_path: str, expected: type, go_expected: str) -> tuple[Any, str | None]:
    """unstructured.NestedInt64/NestedString: (value or None when absent, accessor error)."""
    fields = json_path.removeprefix(".").split(".")
    val: Any = obj
    for i, name in enumerate(fields):
        if val is None:
            return None, None
        if not isinstance(val, dict):
            at = "." + ".".join(fields[:i + 1])
            return None, (f"{at} accessor error: {go_sprint(val)} is of the type {go_type_name(val)}, "
                          "expected map[string]interface{}")
        if name not in val:
            return None, None
        val = val[name]
    ok = isinstance(val, expected) and not isinstance(val, bool) and go_number(val) is val
    if not ok:
        return None, (f".{'.'.join(fields)} accessor error: {go_sprint(val)} is of the type "
                      f"{go_type_name(val)}, expected {go_expected}")
    return val, None


def scale_errors(obj: dict[str, Any], scale: dict[str, Any], *, status_only: bool = False) -> list[StatusCause]:
    """ValidateScaleSpec/ValidateScaleStatus of a CRD's ``subresources.scale`` paths (status_only: /status)."""
    causes: list[StatusCause] = []
    paths = [("statusReplicasPath", scale.get("statusReplicasPath"))]
    if not status_only:
        paths.insert(0, ("specReplicasPath", scale.get("specReplicasPath")))
    for _, json_path in paths:
        if not isinstance(json_path, str) or not json_path:
            continue
        value, err = _nested(obj, json_path, int, "int64")
        replicas = value or 0
        if err:
            causes.append(gofmt.invalid(json_path, 0, err))
        elif replicas < 0:
            causes.append(gofmt.invalid(json_path, replicas, "should be a non-negative integer"))
        elif replicas > 2**31 - 1:
            causes.append(gofmt.invalid(json_path, replicas, "should be less than or equal to 2147483647"))
    selector_path = scale.get("labelSelectorPath")
    if isinstance(selector_path, str) and selector_path:
        _, err = _nested(obj, selector_path, str, "string")
        if err:
            causes.append(gofmt.invalid(selector_path, "", err))
    return causes

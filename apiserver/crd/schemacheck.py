"""The checks a CRD's ``openAPIV3Schema`` must pass when the CRD is written (apiextensions v1 rules).

Role: ``structural_errors(schema, path)`` returns, in Kubernetes' order and words, what
``validateCustomResourceDefinitionValidation`` reports for one schema:

1. the root restrictions of the status subresource and ``nullable`` at the root;
2. ``ValidateStructural`` (sorted, as Kubernetes sorts them): a type everywhere except under
   ``x-kubernetes-int-or-string``/``x-kubernetes-preserve-unknown-fields``, ``items`` for arrays,
   no ``additionalProperties`` at the root, ``metadata`` restricted to name/generateName,
   embedded-resource rules, nothing but value validation under allOf/anyOf/oneOf/not, and every
   property named there also defined structurally; or, when the schema is structural,
   ``ValidateDefaults``: every default is pruned already and validates against its schema;
3. ``ValidateCustomResourceDefinitionOpenAPISchema``: forbidden keywords ($ref, definitions,
   dependencies, patternProperties, additionalItems, id, uniqueItems: true, type null, items
   arrays), additionalProperties beside properties, defaults in metadata, the
   ``x-kubernetes-list-type``/``-list-map-keys``/``-map-type`` rules, and the static rules of
   ``x-kubernetes-validations`` entries (their CEL is neither compiled nor checked: out of scope).

A keyword of the wrong JSON type fails Kubernetes' decoding before any of this; those are reported
first and alone ("must be of type string").

Data flow: ``validation.validate_crd`` -> ``structural_errors(raw, "spec.versions[0].schema.openAPIV3Schema")``
-> ``list[StatusCause]``.
"""

from __future__ import annotations

import copy
from typing import Any

from apiserver.validation import forbidden, invalid, required
from machinery.errors import StatusCause

from . import gofmt
from .algorithms import Paths, prune, validate_embedded
from .goregex import go_regex_error
from .keywords import (Raw, decode_errors, is_zero, key_path, openapi_errors, props_of, schema_type, schemas_of,
                       status_root_errors, sub_path, sub_schema)
from .schema import Node
from .values import go_deep_equal, validate_value

_META = ("metadata", "kind", "apiVersion")
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]


# ============================================================================ structural

def _non_structural_keyword(s: Raw) -> bool:
    """NewStructural fails on these (validation reports them as forbidden keywords instead)."""
    if any(not is_zero(s.get(k)) for k in ("id", "$schema", "$ref", "patternProperties", "dependencies",
                                         "definitions")) or "additionalItems" in s:
        return True
    if (isinstance(s.get("items"), list) and s["items"]) or s.get("x-kubernetes-preserve-unknown-fields") is False:
        return True
    children = list(props_of(s).values()) + schemas_of(s, "allOf") + schemas_of(s, "anyOf") + schemas_of(s, "oneOf")
    children += [c for c in (sub_schema(s, "not"), sub_schema(s, "items"), sub_schema(s, "additionalProperties")) if c is not None]
    return any(_non_structural_keyword(c) for c in children)


def _invariants(s: Raw, level: str, path: str) -> list[StatusCause]:
    """validateStructuralInvariants (level: root, items or field)."""
    causes: list[StatusCause] = []
    typ, props = schema_type(s), props_of(s)
    items = sub_schema(s, "items")
    if typ == "array" and items is None:
        causes.append(required(sub_path(path, "items"), "must be specified"))
    if items is not None:
        causes += _invariants(items, "items", sub_path(path, "items"))
    for name, prop in props.items():
        causes += _invariants(prop, "field", key_path(sub_path(path, "properties"), name))
    if "additionalProperties" in s:
        if level == "root":
            causes.append(forbidden(sub_path(path, "additionalProperties"), "must not be used at the root"))
        if sub_schema(s, "additionalProperties") is not None:
            causes += _invariants(s["additionalProperties"], "field", sub_path(path, "additionalProperties"))
    int_or_string = s.get("x-kubernetes-int-or-string") is True
    preserve = s.get("x-kubernetes-preserve-unknown-fields") is True
    embedded = s.get("x-kubernetes-embedded-resource") is True
    if int_or_string and preserve:
        causes.append(invalid(sub_path(path, "x-kubernetes-preserve-unknown-fields"), True,
                              "must be false if x-kubernetes-int-or-string is true"))
    if int_or_string and embedded:
        causes.append(invalid(sub_path(path, "x-kubernetes-embedded-resource"), True,
                              "must be false if x-kubernetes-int-or-string is true"))
    skip_any_of = schemas_of(s, "anyOf") == _INT_OR_STRING_ANY_OF and len(s.get("anyOf") or []) == 2
    all_of = schemas_of(s, "allOf")
    skip_first_all_of = bool(all_of) and schemas_of(all_of[0], "anyOf") == _INT_OR_STRING_ANY_OF
    causes += _value_validation(s, skip_any_of, skip_first_all_of, path)
    if embedded and typ != "object":
        detail = "must be object if x-kubernetes-embedded-resource is true"
        causes.append(required(sub_path(path, "type"), detail) if not typ else invalid(sub_path(path, "type"), typ, detail))
    elif not typ and not int_or_string and not preserve:
        detail = {"root": "must not be empty at the root", "items": "must not be empty for specified array items",
                  "field": "must not be empty for specified object fields"}[level]
        causes.append(required(sub_path(path, "type"), detail))
    if embedded and "additionalProperties" in s:
        causes.append(forbidden(sub_path(path, "additionalProperties"),
                                "must not be used if x-kubernetes-embedded-resource is set"))
    if level == "root" and typ and typ != "object":
        causes.append(invalid(sub_path(path, "type"), typ, "must be object at the root"))
    check_metadata = level == "root" or embedded
    for name in ("kind", "apiVersion"):
        if name in props and check_metadata and schema_type(props[name]) != "string":
            causes.append(invalid(sub_path(key_path(sub_path(path, "properties"), name), "type"), schema_type(props[name]), "must be string"))
    if "metadata" in props:
        causes += _metadata_invariants(props["metadata"], check_metadata, level == "root",
                                       key_path(sub_path(path, "properties"), "metadata"))
    if embedded and not preserve and not props:
        causes.append(required(sub_path(path, "properties"), "must not be empty if x-kubernetes-embedded-resource is "
                                                       "true without x-kubernetes-preserve-unknown-fields"))
    return causes


def _metadata_invariants(s: Raw, check_metadata: bool, root: bool, path: str) -> list[StatusCause]:
    causes: list[StatusCause] = []
    if check_metadata and schema_type(s) != "object":
        causes.append(invalid(sub_path(path, "type"), schema_type(s), "must be object"))
    if root:
        props = set(props_of(s))
        rest = {k: v for k, v in s.items() if k not in ("type", "default", "properties")}
        if (props and not props <= {"name", "generateName"}) or any(not is_zero(v) for v in rest.values()):
            causes.append(forbidden(path, "must not specify anything other than name and generateName, but "
                                          "metadata is implicitly specified"))
    return causes


def _value_validation(s: Raw, skip_any_of: bool, skip_first_all_of_any_of: bool, path: str) -> list[StatusCause]:
    causes: list[StatusCause] = []
    if not skip_any_of:
        for i, sub in enumerate(schemas_of(s, "anyOf")):
            causes += _nested(sub, False, f"{sub_path(path, 'anyOf')}[{i}]")
    for i, sub in enumerate(schemas_of(s, "allOf")):
        causes += _nested(sub, skip_first_all_of_any_of and i == 0, f"{sub_path(path, 'allOf')}[{i}]")
    for i, sub in enumerate(schemas_of(s, "oneOf")):
        causes += _nested(sub, False, f"{sub_path(path, 'oneOf')}[{i}]")
    if sub_schema(s, "not") is not None:
        causes += _nested(s["not"], False, sub_path(path, "not"))
    pattern = s.get("pattern")
    if isinstance(pattern, str) and pattern and (err := go_regex_error(pattern)):
        causes.append(invalid(sub_path(path, "pattern"), pattern, f"must be a valid regular expression, but isn't: {err}"))
    return causes


_NESTED_FORBIDDEN = [
    ("title", "must be empty to be structural"), ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
]


def _nested(s: Raw, skip_any_of: bool, path: str) -> list[StatusCause]:
    """validateNestedValueValidation: only value validation may sit under allOf/anyOf/oneOf/not."""
    causes = _value_validation(s, skip_any_of, False, path)
    if sub_schema(s, "items") is not None:
        causes += _nested(s["items"], False, sub_path(path, "items"))
    for name, prop in props_of(s).items():
        causes += _nested(prop, False, key_path(sub_path(path, "properties"), name))
    if schema_type(s):
        causes.append(forbidden(sub_path(path, "type"), "must be empty to be structural"))
    if sub_schema(s, "additionalProperties") is not None or s.get("additionalProperties") is True:
        causes.append(forbidden(sub_path(path, "additionalProperties"), "must be undefined to be structural"))
    if s.get("default") is not None:
        causes.append(forbidden(sub_path(path, "default"), "must be undefined to be structural"))
    for name, detail in _NESTED_FORBIDDEN:
        if not is_zero(s.get(name)):
            causes.append(forbidden(sub_path(path, name), detail))
    for name in ("x-kubernetes-list-type", "x-kubernetes-map-type"):
        if s.get(name) is not None:
            causes.append(forbidden(sub_path(path, name), "must be undefined to be structural"))
    if not is_zero(s.get("x-kubernetes-validations")):
        causes.append(forbidden(sub_path(path, "x-kubernetes-validations"), "must be empty to be structural"))
    if "metadata" in props_of(s):
        causes.append(forbidden(key_path(sub_path(path, "properties"), "metadata"), "must not be specified in a nested context"))
    return causes


def _completeness(v: Raw, s: Raw | None, s_path: str, v_path: str) -> list[StatusCause]:
    """validateNestedValueValidationCompleteness: what allOf/anyOf/oneOf/not name must exist structurally."""
    if s is None:
        return [required(s_path, f"because it is defined in {v_path}")]
    causes = _junctor_completeness(v, s, s_path, v_path)
    if sub_schema(v, "items") is not None:
        causes += _completeness(v["items"], sub_schema(s, "items"), sub_path(s_path, "items"), sub_path(v_path, "items"))
    s_props = props_of(s)
    for name, v_prop in props_of(v).items():
        sp, vp = key_path(sub_path(s_path, "properties"), name), key_path(sub_path(v_path, "properties"), name)
        if name not in s_props:
            causes.append(required(sp, f"because it is defined in {vp}"))
        else:
            causes += _completeness(v_prop, s_props[name], sp, vp)
    return causes


def _junctor_completeness(v: Raw, s: Raw, s_path: str, v_path: str) -> list[StatusCause]:
    causes: list[StatusCause] = []
    if sub_schema(v, "not") is not None:
        causes += _completeness(v["not"], s, s_path, sub_path(v_path, "not"))
    for name in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(schemas_of(v, name)):
            causes += _completeness(sub, s, s_path, f"{sub_path(v_path, name)}[{i}]")
    return causes


def validate_structural(schema: Raw, path: str) -> list[StatusCause]:
    """ValidateStructural: the invariants and completeness of a structural schema, sorted as Kubernetes does."""
    causes = _invariants(schema, "root", path) + _junctor_completeness(schema, schema, path, path)
    return sorted(causes, key=str)


# ============================================================================ defaults

def _default_errors(node: Node, path: str, *, inside_meta: bool, embedded_root: bool) -> list[StatusCause]:
    """ValidateDefaults: each default is pruned and valid against its own schema."""
    causes: list[StatusCause] = []
    embedded = node.embedded or embedded_root
    if node.embedded:
        inside_meta = False
    if node.has_default:
        dpath = sub_path(path, "default")
        if not inside_meta:
            pruned = copy.deepcopy(node.default)
            prune(pruned, node, Paths(), embedded=embedded)
            if not go_deep_equal(pruned, node.default):
                causes.append(gofmt.invalid(dpath, node.default, "must not have unknown fields"))
            meta_errors = validate_embedded(node.default, node, dpath, as_resource=embedded)
            if meta_errors:
                causes += meta_errors
                return causes + _default_children(node, path, inside_meta, embedded)
        causes += validate_value(node, node.default, prefix=dpath, for_defaults=True)
    return causes + _default_children(node, path, inside_meta, embedded)


def _default_children(node: Node, path: str, inside_meta: bool, embedded: bool) -> list[StatusCause]:
    causes: list[StatusCause] = []
    if node.items is not None:
        causes += _default_errors(node.items, sub_path(path, "items"), inside_meta=inside_meta, embedded_root=False)
    for name, prop in node.properties.items():
        sub_meta = inside_meta or (embedded and name in _META)
        causes += _default_errors(prop, key_path(sub_path(path, "properties"), name), inside_meta=sub_meta, embedded_root=False)
    return causes


def structural_errors(schema: Any, path: str, *, status_enabled: bool = False) -> list[StatusCause]:
    """Everything wrong with one CRD version's ``openAPIV3Schema`` at ``path``; empty means it is accepted."""
    if errors := decode_errors(schema, path):
        return errors
    causes: list[StatusCause] = []
    if status_enabled:
        causes += status_root_errors(schema, path)
    if schema.get("nullable") is True:
        causes.append(forbidden(f"{path}.nullable", "nullable cannot be true at the root"))
    if not _non_structural_keyword(schema):
        if structural := validate_structural(schema, path):
            causes += structural
        else:
            causes += _default_errors(Node.parse(schema), path, inside_meta=False, embedded_root=True)
    causes += openapi_errors(schema, path, allow_defaults=True, reason="", inside_meta=False, root=True)
    return causes

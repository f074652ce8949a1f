"""The OpenAPI keyword rules of a CRD schema (``ValidateCustomResourceDefinitionOpenAPISchema``).

Role: what apiextensions forbids or constrains keyword by keyword, independent of structurality:
$ref, definitions, dependencies, patternProperties, additionalItems, id, ``uniqueItems: true``,
``type: null``, ``items`` arrays, ``additionalProperties`` beside ``properties``, defaults in the
top-level metadata, the ``x-kubernetes-list-type``/``-list-map-keys``/``-map-type`` rules, the
static rules of ``x-kubernetes-validations`` entries (their CEL is neither compiled nor checked:
out of scope), the root restrictions of the status subresource; and, before all of these, the
keywords of the wrong JSON type that Kubernetes would already fail to decode.

Data flow: ``schemacheck.structural_errors`` -> ``decode_errors``, ``status_root_errors``,
``openapi_errors`` -> ``list[StatusCause]``.
"""

from __future__ import annotations

from typing import Any

from apiserver.validation import forbidden, invalid, not_supported, required
from machinery.errors import StatusCause

from . import gofmt

Raw = dict[str, Any]
_OPENAPI_TYPES = ["array", "boolean", "integer", "number", "object", "string"]
_META = ("metadata", "kind", "apiVersion")
# JSONSchemaProps' fields in declaration order, with the Go names the status-subresource rule prints.
_ROOT_FIELDS = [
    ("id", "ID"), ("$schema", "Schema"), ("$ref", "Ref"), ("description", "Description"), ("type", "Type"),
    ("nullable", "Nullable"), ("format", "Format"), ("title", "Title"), ("default", "Default"),
    ("maximum", "Maximum"), ("exclusiveMaximum", "ExclusiveMaximum"), ("minimum", "Minimum"),
    ("exclusiveMinimum", "ExclusiveMinimum"), ("maxLength", "MaxLength"), ("minLength", "MinLength"),
    ("pattern", "Pattern"), ("maxItems", "MaxItems"), ("minItems", "MinItems"), ("uniqueItems", "UniqueItems"),
    ("multipleOf", "MultipleOf"), ("enum", "Enum"), ("maxProperties", "MaxProperties"),
    ("minProperties", "MinProperties"), ("required", "Required"), ("items", "Items"), ("allOf", "AllOf"),
    ("oneOf", "OneOf"), ("anyOf", "AnyOf"), ("not", "Not"), ("properties", "Properties"),
    ("additionalProperties", "AdditionalProperties"), ("patternProperties", "PatternProperties"),
    ("dependencies", "Dependencies"), ("additionalItems", "AdditionalItems"), ("definitions", "Definitions"),
    ("externalDocs", "ExternalDocs"), ("example", "Example"),
    ("x-kubernetes-preserve-unknown-fields", "XPreserveUnknownFields"),
    ("x-kubernetes-embedded-resource", "XEmbeddedResource"), ("x-kubernetes-int-or-string", "XIntOrString"),
    ("x-kubernetes-list-map-keys", "XListMapKeys"), ("x-kubernetes-list-type", "XListType"),
    ("x-kubernetes-map-type", "XMapType"), ("x-kubernetes-validations", "XValidations")]
_ROOT_ALLOWED = ["Description", "Type", "Format", "Title", "Maximum", "ExclusiveMaximum", "Minimum",
                 "ExclusiveMinimum", "MaxLength", "MinLength", "Pattern", "MaxItems", "MinItems", "UniqueItems",
                 "MultipleOf", "Required", "Items", "Properties", "ExternalDocs", "Example",
                 "XPreserveUnknownFields", "XValidations"]
_RULE_REASONS = ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"]


def sub_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def key_path(path: str, name: str) -> str:
    return f"{path}[{name}]"


def is_zero(value: Any) -> bool:
    """Go's zero value of a JSONSchemaProps field, as JSON: absent, false, "", [] or {}."""
    return value is None or value is False or value == "" or value == [] or value == {}


def schema_type(s: Raw) -> str:
    value = s.get("type")
    return value if isinstance(value, str) else ""


def props_of(s: Raw) -> dict[str, Raw]:
    value = s.get("properties")
    return {k: v for k, v in value.items() if isinstance(v, dict)} if isinstance(value, dict) else {}


def schemas_of(s: Raw, name: str) -> list[Raw]:
    value = s.get(name)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def sub_schema(s: Raw, name: str) -> Raw | None:
    value = s.get(name)
    return value if isinstance(value, dict) else None


def dict_at(obj: Any, name: str) -> dict[str, Any]:
    """``obj[name]`` when it is an object, else {} (for reading CRDs that may be malformed)."""
    value = obj.get(name) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def list_at(obj: Any, name: str) -> list[Any]:
    value = obj.get(name) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def str_at(obj: Any, name: str) -> str:
    value = obj.get(name) if isinstance(obj, dict) else None
    return value if isinstance(value, str) else ""


# ============================================================================ decoding

_STRING_KEYS = ("id", "$schema", "$ref", "description", "type", "format", "title", "pattern",
                "x-kubernetes-list-type", "x-kubernetes-map-type")
_BOOL_KEYS = ("nullable", "exclusiveMaximum", "exclusiveMinimum", "uniqueItems",
              "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string")
_NUMBER_KEYS = ("maximum", "minimum", "multipleOf")
_INT_KEYS = ("maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties")


def decode_errors(s: Any, path: str) -> list[StatusCause]:
    """Keywords of the wrong JSON type: Kubernetes cannot even decode such a JSONSchemaProps."""
    if not isinstance(s, dict):
        return [invalid(path, s, "must be of type object")]
    causes: list[StatusCause] = []

    def expect(name: str, ok: bool, what: str) -> None:
        if name in s and s[name] is not None and not ok:
            causes.append(invalid(sub_path(path, name), s[name], f"must be of type {what}"))

    for name in _STRING_KEYS:
        expect(name, isinstance(s.get(name), str), "string")
    for name in _BOOL_KEYS:
        expect(name, isinstance(s.get(name), bool), "boolean")
    for name in _NUMBER_KEYS:
        expect(name, isinstance(s.get(name), (int, float)) and not isinstance(s.get(name), bool), "number")
    for name in _INT_KEYS:
        v = s.get(name)
        expect(name, isinstance(v, int) and not isinstance(v, bool), "integer")
    for name in ("required", "x-kubernetes-list-map-keys"):
        v = s.get(name)
        expect(name, isinstance(v, list) and all(isinstance(x, str) for x in v), "array of strings")
    expect("enum", isinstance(s.get("enum"), list), "array")
    expect("x-kubernetes-validations", isinstance(s.get("x-kubernetes-validations"), list), "array")
    for name in ("allOf", "anyOf", "oneOf"):
        if isinstance(s.get(name), list):
            for i, sub in enumerate(s[name]):
                causes += decode_errors(sub, f"{sub_path(path, name)}[{i}]")
        else:
            expect(name, False, "array")
    for name in ("properties", "patternProperties", "definitions"):
        if isinstance(s.get(name), dict):
            for k, sub in s[name].items():
                causes += decode_errors(sub, key_path(sub_path(path, name), k))
        else:
            expect(name, False, "object")
    for name in ("not", "additionalProperties", "additionalItems", "items"):
        v = s.get(name)
        if isinstance(v, dict):
            causes += decode_errors(v, sub_path(path, name))
        elif name == "items" and isinstance(v, list):
            for i, sub in enumerate(v):
                causes += decode_errors(sub, f"{sub_path(path, name)}[{i}]")
        else:
            expect(name, name in ("additionalProperties", "additionalItems") and isinstance(v, bool), "object")
    return causes


# ============================================================================ OpenAPI keyword rules

def openapi_errors(s: Raw, path: str, *, allow_defaults: bool, reason: str, inside_meta: bool, root: bool) -> list[StatusCause]:
    """ValidateCustomResourceDefinitionOpenAPISchema (its CEL compilation left out)."""
    causes: list[StatusCause] = []
    typ = schema_type(s)
    if typ and typ not in _OPENAPI_TYPES:
        causes.append(not_supported(sub_path(path, "type"), typ, _OPENAPI_TYPES))
    if s.get("default") is not None and not allow_defaults:
        causes.append(forbidden(sub_path(path, "default"), "must not be set" + (f" {reason}" if reason else "")))
    for name, detail in (("id", "id is not supported"), ("additionalItems", "additionalItems is not supported"),
                         ("patternProperties", "patternProperties is not supported"),
                         ("definitions", "definitions is not supported"),
                         ("dependencies", "dependencies is not supported"), ("$ref", "$ref is not supported")):
        present = name in s and s[name] is not None if name in ("additionalItems", "dependencies", "$ref") \
            else not is_zero(s.get(name))
        if present:
            causes.append(forbidden(sub_path(path, name), detail))
    if typ == "null":
        causes.append(forbidden(sub_path(path, "type"), "type cannot be set to null, use nullable as an alternative"))
    if isinstance(s.get("items"), list) and s["items"]:
        causes.append(forbidden(sub_path(path, "items"), "items must be a schema object and not an array"))
    if inside_meta and s.get("x-kubernetes-embedded-resource") is True:
        causes.append(forbidden(sub_path(path, "x-kubernetes-embedded-resource"), "must not be used inside of resource meta"))
    if s.get("uniqueItems") is True:
        causes.append(forbidden(sub_path(path, "uniqueItems"),
                                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"))
    props = props_of(s)
    sub_args = dict(allow_defaults=allow_defaults, reason=reason, inside_meta=inside_meta, root=False)
    if "additionalProperties" in s:
        ap = s["additionalProperties"]
        if props and (ap is False or isinstance(ap, dict)):
            causes.append(forbidden(sub_path(path, "additionalProperties"), "additionalProperties and properties are mutual exclusive"))
        if isinstance(ap, dict):
            ap_args = dict(sub_args)
            if inside_meta:
                ap_args.update(allow_defaults=False, reason="inside additionalProperties applying to object metadata")
            causes += openapi_errors(ap, sub_path(path, "additionalProperties"), **ap_args)  # type: ignore[arg-type]
    for name, prop in props.items():
        prop_args = dict(sub_args)
        if (root or s.get("x-kubernetes-embedded-resource") is True) and name in _META:
            prop_args["inside_meta"] = True
            if root:
                prop_args.update(allow_defaults=False, reason=f"in top-level {name}")
        causes += openapi_errors(prop, key_path(sub_path(path, "properties"), name), **prop_args)  # type: ignore[arg-type]
    if sub_schema(s, "not") is not None:
        causes += openapi_errors(s["not"], sub_path(path, "not"), **sub_args)  # type: ignore[arg-type]
    for name in ("allOf", "oneOf", "anyOf"):
        for i, sub in enumerate(schemas_of(s, name)):
            causes += openapi_errors(sub, f"{sub_path(path, name)}[{i}]", **sub_args)  # type: ignore[arg-type]
    if isinstance(s.get("definitions"), dict):
        for name, sub in s["definitions"].items():
            if isinstance(sub, dict):
                causes += openapi_errors(sub, key_path(sub_path(path, "definitions"), name), **sub_args)  # type: ignore[arg-type]
    if sub_schema(s, "items") is not None:
        causes += openapi_errors(s["items"], sub_path(path, "items"), **sub_args)  # type: ignore[arg-type]
    elif isinstance(s.get("items"), list):
        for i, sub in enumerate(schemas_of(s, "items")):
            causes += openapi_errors(sub, f"{sub_path(path, 'items')}[{i}]", **sub_args)  # type: ignore[arg-type]
    if isinstance(s.get("dependencies"), dict):
        for name, sub in s["dependencies"].items():
            if isinstance(sub, dict):
                causes += openapi_errors(sub, key_path(sub_path(path, "dependencies"), name), **sub_args)  # type: ignore[arg-type]
    return causes + _extension_rules(s, path)


def _extension_rules(s: Raw, path: str) -> list[StatusCause]:
    causes: list[StatusCause] = []
    typ = schema_type(s)
    if s.get("x-kubernetes-preserve-unknown-fields") is False:
        causes.append(invalid(sub_path(path, "x-kubernetes-preserve-unknown-fields"), False, "must be true or undefined"))
    map_type, list_type = s.get("x-kubernetes-map-type"), s.get("x-kubernetes-list-type")
    keys = s.get("x-kubernetes-list-map-keys") or []
    items = sub_schema(s, "items")
    for ext, want, value in (("x-kubernetes-map-type", "object", map_type), ("x-kubernetes-list-type", "array", list_type)):
        if value is not None and typ != want:
            detail = f"must be {want} if {ext} is specified"
            causes.append(required(sub_path(path, "type"), detail) if not typ else invalid(sub_path(path, "type"), typ, detail))
    if map_type is not None and map_type not in ("atomic", "granular"):
        causes.append(not_supported(sub_path(path, "x-kubernetes-map-type"), map_type, ["atomic", "granular"]))
    if list_type == "set" and typ == "array" and items is not None:
        item_type = schema_type(items)
        if item_type == "array" and items.get("x-kubernetes-list-type") not in (None, "atomic"):
            causes.append(invalid(sub_path(sub_path(path, "items"), "x-kubernetes-list-type"), items["x-kubernetes-list-type"],
                                  "must be atomic as item of a list with x-kubernetes-list-type=set"))
        if item_type == "object" and items.get("x-kubernetes-map-type") != "atomic":
            causes.append(gofmt.invalid(sub_path(sub_path(path, "items"), "x-kubernetes-map-type"), items.get("x-kubernetes-list-type"),
                                        "must be atomic as item of a list with x-kubernetes-list-type=set"))
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        causes.append(not_supported(sub_path(path, "x-kubernetes-list-type"), list_type, ["atomic", "set", "map"]))
    if keys:
        if list_type is None:
            causes.append(required(sub_path(path, "x-kubernetes-list-type"), "must be map if x-kubernetes-list-map-keys is non-empty"))
        elif list_type != "map":
            causes.append(invalid(sub_path(path, "x-kubernetes-list-type"), list_type,
                                  "must be map if x-kubernetes-list-map-keys is non-empty"))
    if list_type == "map":
        if not keys:
            causes.append(required(sub_path(path, "x-kubernetes-list-map-keys"), "must not be empty if x-kubernetes-list-type is map"))
        if "items" not in s or s["items"] is None:
            causes.append(required(sub_path(path, "items"), "must have a schema if x-kubernetes-list-type is map"))
        elif items is None:
            causes.append(gofmt.invalid(sub_path(path, "items"), s["items"], "must only have a single schema if x-kubernetes-list-type is map"))
        elif schema_type(items) != "object":
            causes.append(invalid(sub_path(sub_path(path, "items"), "type"), schema_type(items), "must be object if parent array's x-kubernetes-list-type is map"))
        else:
            item_props, seen = props_of(items), set()
            for k in keys:
                if k in item_props:
                    if schema_type(item_props[k]) in ("array", "object"):
                        causes.append(invalid(sub_path(key_path(sub_path(sub_path(path, "items"), "properties"), k), "type"), schema_type(items),
                                              "must be a scalar type if parent array's x-kubernetes-list-type is map"))
                else:
                    causes.append(gofmt.invalid(sub_path(path, "x-kubernetes-list-map-keys"), keys, "entries must all be names of item properties"))
                if k in seen:
                    causes.append(gofmt.invalid(sub_path(path, "x-kubernetes-list-map-keys"), keys, "must not contain duplicate entries"))
                seen.add(k)
    if items is not None and list_type in ("set", "map"):
        if items.get("nullable") is True:
            causes.append(forbidden(sub_path(sub_path(path, "items"), "nullable"), f"cannot be nullable when x-kubernetes-list-type is {list_type}"))
        if list_type == "map":
            item_props, required_keys = props_of(items), set(items.get("required") or [])
            for k in keys:
                if k not in item_props:
                    continue
                kp = key_path(sub_path(sub_path(path, "items"), "properties"), k)
                if k not in required_keys and item_props[k].get("default") is None:
                    causes.append(required(sub_path(kp, "default"), "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"))
                if item_props[k].get("nullable") is True:
                    causes.append(forbidden(sub_path(kp, "nullable"), "this property is in x-kubernetes-list-map-keys, so it cannot be nullable"))
    return causes + _rule_errors(s, path)


def _has_newline(text: str) -> bool:
    return "\n" in text or "\r" in text


def _rule_errors(s: Raw, path: str) -> list[StatusCause]:
    """The static checks of x-kubernetes-validations entries (CEL compilation is out of scope)."""
    causes: list[StatusCause] = []
    for i, rule in enumerate(s.get("x-kubernetes-validations") or []):
        p = f"{sub_path(path, 'x-kubernetes-validations')}[{i}]"
        rule = rule if isinstance(rule, dict) else {}
        text, message = str(rule.get("rule") or ""), str(rule.get("message") or "")
        message_expr, field_path = str(rule.get("messageExpression") or ""), str(rule.get("fieldPath") or "")
        if not text.strip():
            causes.append(required(sub_path(p, "rule"), "rule is not specified"))
        elif message and not message.strip():
            causes.append(invalid(sub_path(p, "message"), message, "must be non-empty if specified"))
        elif _has_newline(message.strip()):
            causes.append(invalid(sub_path(p, "message"), message, "must not contain line breaks"))
        elif _has_newline(text.strip()) and not message.strip():
            causes.append(required(sub_path(p, "message"), "message must be specified if rule contains line breaks"))
        if message_expr and not message_expr.strip():
            causes.append(required(sub_path(p, "messageExpression"), "messageExpression must be non-empty if specified"))
        if rule.get("reason") is not None and rule["reason"] not in _RULE_REASONS:
            causes.append(not_supported(sub_path(p, "reason"), rule["reason"], _RULE_REASONS))
        if field_path and not field_path.strip():
            causes.append(invalid(sub_path(p, "fieldPath"), field_path, "must be non-empty if specified"))
        if _has_newline(field_path):
            causes.append(invalid(sub_path(p, "fieldPath"), field_path, "must not contain line breaks"))
    return causes


def status_root_errors(schema: Raw, path: str) -> list[StatusCause]:
    for json_name, go_name in _ROOT_FIELDS:
        if is_zero(schema.get(json_name)):
            continue
        if go_name == "Type":
            if schema["type"] != "object":
                return [invalid(f"{path}.type", schema["type"],
                                'only "object" is allowed as the type at the root of the schema if the status '
                                "subresource is enabled")]
            continue
        if go_name not in _ROOT_ALLOWED:
            return [gofmt.invalid(path, schema, f"only [{' '.join(_ROOT_ALLOWED)}] fields are allowed at the root "
                                                "of the schema if the status subresource is enabled")]
    return []

"""Validation of API objects, returning every problem as a Kubernetes field error.

Role: mirror ``pkg/apis/core/validation``, ``pkg/apis/apps/validation``,
``pkg/apis/networking/validation``, ``pkg/apis/coordination/validation`` and apimachinery's
ObjectMeta/name/label rules for the kinds minik8s serves, with Kubernetes' own field paths,
reasons and messages (``field.Error`` shapes), so that clients see the same 422 they would from a
real cluster.

Data flow: the apiserver decodes a body -> ``apiserver.defaults.apply_defaults`` ->
``validate_object(kind, obj, old=..., namespaced=...)`` -> an empty list means valid; otherwise the
apiserver wraps the causes with ``machinery.errors.invalid`` into a 422 ``Status``.

Objects arrive as plain JSON, possibly garbage. Where Go would have failed to decode a value of the
wrong JSON type, this module reports a ``FieldValueInvalid`` "must be of type ..." cause and then
treats the field as its Go zero value, so one bad field never hides the others and nothing raises.
"""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from apiserver.defaults import PROBES, VOLUME_SOURCES
from machinery import selectors
from machinery.errors import StatusCause
from machinery.quantity import QuantityError, parse_quantity

Obj = dict[str, Any]
Causes = list[StatusCause]

INT32_MAX = 2**31 - 1
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
CONFIGMAP_MAX_SIZE = 1024 * 1024
NODE_PORT_RANGE = (30000, 32767)
FIELD_IMMUTABLE = "field is immutable"
POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


# ============================================================================ field.Error shapes

def _fmt(value: Any) -> str:
    """Render a bad value the way field.Error does: strings quoted, numbers bare, null for nil."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return repr(value)


def required(path: str, detail: str = "") -> StatusCause:
    return StatusCause("FieldValueRequired", "Required value" + (f": {detail}" if detail else ""), path)


def invalid(path: str, value: Any, detail: str) -> StatusCause:
    message = f"Invalid value: {_fmt(value)}" + (f": {detail}" if detail else "")
    return StatusCause("FieldValueInvalid", message, path)


def not_supported(path: str, value: Any, supported: Iterable[str]) -> StatusCause:
    quoted = ", ".join(json.dumps(v) for v in supported)
    return StatusCause("FieldValueNotSupported", f"Unsupported value: {_fmt(value)}: supported values: {quoted}", path)


def duplicate(path: str, value: Any) -> StatusCause:
    return StatusCause("FieldValueDuplicate", f"Duplicate value: {_fmt(value)}", path)


def forbidden(path: str, detail: str) -> StatusCause:
    return StatusCause("FieldValueForbidden", f"Forbidden: {detail}", path)


def too_long(path: str, max_bytes: int) -> StatusCause:
    return StatusCause("FieldValueTooLong", f"Too long: must have at most {max_bytes} bytes", path)


def not_found(path: str, value: Any) -> StatusCause:
    return StatusCause("FieldValueNotFound", f"Not found: {_fmt(value)}", path)


def _each(path: str, value: Any, messages: Iterable[str]) -> Causes:
    return [invalid(path, value, msg) for msg in messages]


def child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


# ============================================================================ typed reads
# Each reader returns the Go zero value for absent, null or mistyped fields and records a cause
# for the mistyped ones, so validators read like the Go code they mirror.

_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean"}


def _type_error(path: str, value: Any, expected: str) -> StatusCause:
    return invalid(path, value, f"must be of type {expected}")


def _str(obj: Obj, name: str, path: str, causes: Causes) -> str:
    value = obj.get(name)
    if value is None or isinstance(value, str):
        return value or ""
    causes.append(_type_error(child(path, name), value, "string"))
    return ""


def _int(obj: Obj, name: str, path: str, causes: Causes, *, bits: int = 32) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    limit = 2 ** (bits - 1)
    if isinstance(value, bool) or not isinstance(value, int):
        causes.append(_type_error(child(path, name), value, f"int{bits}"))
        return None
    if not -limit <= value < limit:
        causes.append(_type_error(child(path, name), value, f"int{bits}"))
        return None
    return value


def _bool(obj: Obj, name: str, path: str, causes: Causes) -> bool | None:
    value = obj.get(name)
    if value is None or isinstance(value, bool):
        return value
    causes.append(_type_error(child(path, name), value, "boolean"))
    return None


def _map(obj: Obj, name: str, path: str, causes: Causes) -> Obj:
    value = obj.get(name)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    causes.append(_type_error(child(path, name), value, "object"))
    return {}


def _dict_at(obj: Obj, name: str) -> Obj:
    """``obj[name]`` when it is a map, else an empty one (for checks that only compare)."""
    value = obj.get(name)
    return value if isinstance(value, dict) else {}


def _opt_map(obj: Obj, name: str, path: str, causes: Causes) -> Obj | None:
    """A pointer-to-struct field: None when absent or mistyped."""
    if obj.get(name) is None:
        return None
    value = _map(obj, name, path, causes)
    return value if isinstance(obj.get(name), dict) else None


def _list(obj: Obj, name: str, path: str, causes: Causes) -> list[Any]:
    value = obj.get(name)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    causes.append(_type_error(child(path, name), value, "array"))
    return []


def _maps(obj: Obj, name: str, path: str, causes: Causes) -> list[tuple[str, Obj]]:
    """(item path, item) for a list of objects; non-object items are reported and skipped."""
    base = child(path, name)
    items: list[tuple[str, Obj]] = []
    for i, item in enumerate(_list(obj, name, path, causes)):
        if isinstance(item, dict):
            items.append((index(base, i), item))
        else:
            causes.append(_type_error(index(base, i), item, "object"))
    return items


def _strs(obj: Obj, name: str, path: str, causes: Causes) -> list[str]:
    base = child(path, name)
    out: list[str] = []
    for i, item in enumerate(_list(obj, name, path, causes)):
        if isinstance(item, str):
            out.append(item)
        else:
            causes.append(_type_error(index(base, i), item, "string"))
    return out


def _str_map(obj: Obj, name: str, path: str, causes: Causes) -> dict[str, str]:
    base = child(path, name)
    out: dict[str, str] = {}
    for k, v in _map(obj, name, path, causes).items():
        if isinstance(v, str):
            out[k] = v
        elif v is not None:
            causes.append(_type_error(key(base, k), v, "string"))
    return out


def _int_or_string(obj: Obj, name: str, path: str, causes: Causes) -> int | str | None:
    value = obj.get(name)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31:
        return value
    causes.append(_type_error(child(path, name), value, "integer or string"))
    return None


# ============================================================================ format checks
# Each returns the detail messages of the matching apimachinery function (empty = valid).

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_WILDCARD_FMT = "\\*\\." + _DNS1123_SUBDOMAIN_FMT
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_PERCENT_FMT = "[0-9]+%"

_DNS1123_LABEL_RE = re.compile(f"^{_DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_DNS1035_LABEL_RE = re.compile(f"^{_DNS1035_LABEL_FMT}$")
_WILDCARD_RE = re.compile(f"^{_WILDCARD_FMT}$")
_CONFIG_KEY_RE = re.compile(f"^{_CONFIG_KEY_FMT}$")
_PERCENT_RE = re.compile(f"^{_PERCENT_FMT}$")
_PORT_NAME_CHARSET_RE = re.compile("^[-a-z0-9]+$")
_PORT_NAME_LETTER_RE = re.compile("[a-z]")


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """RegexError: the message, examples and the regex Kubernetes shows to users."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}'" for e in examples)
    return f"{msg} (e.g. {shown}, regex used for validation is '{fmt}')"


def _full(regex: re.Pattern[str], value: str) -> bool:
    # fullmatch, not match: Python's $ also matches before a trailing newline, Go's does not.
    return regex.fullmatch(value) is not None


def dns1123_label_errors(value: str) -> list[str]:
    errs = [_max_len(63)] if len(value) > 63 else []
    if not _full(_DNS1123_LABEL_RE, value):
        if _full(_DNS1123_SUBDOMAIN_RE, value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                "and must start and end with an alphanumeric character",
                _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def _format_errors(value: str, *, max_len: int, regex: re.Pattern[str], fmt: str, msg: str,
                   examples: tuple[str, ...]) -> list[str]:
    """A length limit and a pattern, checked as the IsDNS1123Subdomain family checks them."""
    errs = [_max_len(max_len)] if len(value) > max_len else []
    if not _full(regex, value):
        errs.append(regex_error(msg, fmt, *examples))
    return errs


def dns1123_subdomain_errors(value: str) -> list[str]:
    return _format_errors(
        value, max_len=253, regex=_DNS1123_SUBDOMAIN_RE, fmt=_DNS1123_SUBDOMAIN_FMT, examples=("example.com",),
        msg="a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character")


def dns1035_label_errors(value: str) -> list[str]:
    return _format_errors(
        value, max_len=63, regex=_DNS1035_LABEL_RE, fmt=_DNS1035_LABEL_FMT, examples=("my-name", "abc-123"),
        msg="a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character")


def wildcard_subdomain_errors(value: str) -> list[str]:
    return _format_errors(
        value, max_len=253, regex=_WILDCARD_RE, fmt=_WILDCARD_FMT, examples=("*.example.com",),
        msg="a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which "
            "must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric "
            "character")


def qualified_name_errors(value: str) -> list[str]:
    """IsQualifiedName / IsLabelKey: ``[prefix/]name`` with a DNS subdomain prefix."""
    return selectors.qualified_name_errors(
        value, noun="a valid label key", regex_error=regex_error, subdomain_errors=dns1123_subdomain_errors)


def label_value_errors(value: str) -> list[str]:
    return selectors.label_value_errors(value, regex_error=regex_error)


def port_name_errors(value: str) -> list[str]:
    """IsValidPortName: an IANA_SVC_NAME."""
    errs = [_max_len(15)] if len(value) > 15 else []
    if not _full(_PORT_NAME_CHARSET_RE, value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER_RE.search(value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def _range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def port_num_errors(value: int) -> list[str]:
    return [] if 1 <= value <= 65535 else [_range_error(1, 65535)]


def config_map_key_errors(value: str) -> list[str]:
    errs = [_max_len(253)] if len(value) > 253 else []
    if not _full(_CONFIG_KEY_RE, value):
        errs.append(regex_error("a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                                _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def env_var_name_errors(value: str) -> list[str]:
    """IsRelaxedEnvVarName (RelaxedEnvironmentVariableValidation is on by default)."""
    if any(not (" " <= ch <= "~") or ch == "=" for ch in value):
        return ["a valid environment variable name must consist only of printable ASCII characters other than '='"]
    return []


def ip_errors(value: str) -> list[str]:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    return []


def _mask_trailing_dash(name: str) -> str:
    """A generateName may end in '-': the generated suffix makes the final name valid."""
    return name[:-1] + "a" if len(name) > 1 and name.endswith("-") else name


NameFn = Callable[[str], list[str]]


def _path_segment_errors(name: str) -> list[str]:
    """IsValidPathSegmentName: every name is also a URL path segment."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


# ============================================================================ shared pieces

def _nonnegative(path: str, value: int | None) -> Causes:
    return [invalid(path, value, "must be greater than or equal to 0")] if value is not None and value < 0 else []


def validate_labels(labels: dict[str, str], path: str) -> Causes:
    causes: Causes = []
    for k, v in labels.items():
        causes += _each(path, k, qualified_name_errors(k))
        causes += _each(path, v, label_value_errors(v))
    return causes


def _read_labels(obj: Obj, name: str, path: str, causes: Causes) -> dict[str, str]:
    labels = _str_map(obj, name, path, causes)
    causes += validate_labels(labels, child(path, name))
    return labels


def validate_annotations(annotations: dict[str, str], path: str) -> Causes:
    causes: Causes = []
    for k in annotations:
        causes += _each(path, k, qualified_name_errors(k.lower()))
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return causes


_STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def _finalizer_causes(names: list[str], path: str) -> Causes:
    causes: Causes = []
    for i, name in enumerate(names):
        causes += _each(path, name, qualified_name_errors(name))
        if name not in _STANDARD_FINALIZERS and "/" not in name:
            causes.append(invalid(index(path, i), name, "name is neither a standard finalizer name nor is it fully qualified"))
    if "orphan" in names and "foregroundDeletion" in names:
        causes.append(invalid(path, names, "finalizer orphan and foregroundDeletion cannot be both set"))
    return causes


def _owner_reference_causes(meta: Obj, path: str, causes: Causes) -> None:
    refs_path = child(path, "ownerReferences")
    controller = ""
    for _, ref in _maps(meta, "ownerReferences", path, causes):
        api_version = _str(ref, "apiVersion", refs_path, causes)
        kind = _str(ref, "kind", refs_path, causes)
        name = _str(ref, "name", refs_path, causes)
        uid = _str(ref, "uid", refs_path, causes)
        if not api_version.rsplit("/", 1)[-1]:
            causes.append(invalid(child(refs_path, "apiVersion"), api_version, "version must not be empty"))
        for field_name, value in (("kind", kind), ("name", name), ("uid", uid)):
            if not value:
                causes.append(invalid(child(refs_path, field_name), value, "must not be empty"))
        if api_version == "v1" and kind == "Event":
            causes.append(invalid(refs_path, ref, "/v1, Kind=Event is disallowed from being an owner"))
        if _bool(ref, "controller", refs_path, causes):
            if controller:
                causes.append(invalid(refs_path, meta.get("ownerReferences"),
                                      f'Only one reference can have Controller set to true. Found "true" in references for {controller} and {kind}/{name}'))
            else:
                controller = f"{kind}/{name}"


def validate_object_meta(obj: Obj, *, name_fn: NameFn, namespaced: bool, path: str = "metadata") -> Causes:
    """ValidateObjectMeta: name/generateName, namespace, labels, annotations, owners, finalizers."""
    causes: Causes = []
    meta = _map(obj, "metadata", "", causes)
    name = _str(meta, "name", path, causes)
    generate_name = _str(meta, "generateName", path, causes)
    if generate_name:
        causes += _each(child(path, "generateName"), generate_name, name_fn(_mask_trailing_dash(generate_name)))
    if name:
        causes += _each(child(path, "name"), name, name_fn(name) + _path_segment_errors(name))
    elif not generate_name:
        causes.append(required(child(path, "name"), "name or generateName is required"))
    namespace = _str(meta, "namespace", path, causes)
    if namespaced:
        if not namespace:
            causes.append(required(child(path, "namespace")))
        else:
            causes += _each(child(path, "namespace"), namespace, dns1123_label_errors(namespace))
    elif namespace:
        causes.append(forbidden(child(path, "namespace"), "not allowed on this type"))
    causes += _nonnegative(child(path, "generation"), _int(meta, "generation", path, causes, bits=64))
    _read_labels(meta, "labels", path, causes)
    causes += validate_annotations(_str_map(meta, "annotations", path, causes), child(path, "annotations"))
    _owner_reference_causes(meta, path, causes)
    causes += _finalizer_causes(_strs(meta, "finalizers", path, causes), child(path, "finalizers"))
    return causes


# ---------------------------------------------------------------------------- label selectors

_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _validate_label_selector(selector: Obj, path: str, causes: Causes) -> bool:
    """ValidateLabelSelector; returns whether the selector is usable for matching."""
    before = len(causes)
    _read_labels(selector, "matchLabels", path, causes)
    for item_path, expr in _maps(selector, "matchExpressions", path, causes):
        operator = _str(expr, "operator", item_path, causes)
        values = _strs(expr, "values", item_path, causes)
        if operator in ("In", "NotIn"):
            if not values:
                causes.append(required(child(item_path, "values"), "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                causes.append(forbidden(child(item_path, "values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            causes.append(not_supported(child(item_path, "operator"), operator, _SELECTOR_OPERATORS))
        expr_key = _str(expr, "key", item_path, causes)
        causes += _each(child(item_path, "key"), expr_key, qualified_name_errors(expr_key))
        for value in values:
            causes += _each(child(item_path, "values"), value, label_value_errors(value))
    return len(causes) == before


def selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    """Match a (valid) LabelSelector dict against a label set."""
    match_labels = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        k, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = k in labels
        if op == "In" and not (present and labels[k] in values):
            return False
        if op == "NotIn" and present and labels[k] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


# ============================================================================ pod spec

_PROTOCOLS = ("SCTP", "TCP", "UDP")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_TOLERATION_OPERATORS = ("Equal", "Exists")
_HTTP_SCHEMES = ("HTTP", "HTTPS")
_STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
_ENV_FIELD_PATHS = (
    "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
    "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
)


def _enum(path: str, value: str, allowed: tuple[str, ...], *, required_if_empty: bool = True) -> Causes:
    if not value:
        return [required(path)] if required_if_empty else []
    return [] if value in allowed else [not_supported(path, value, allowed)]


def _port_num_or_name(obj: Obj, name: str, path: str, causes: Causes) -> Causes:
    """ValidatePortNumOrName for an IntOrString port (a missing port is the int 0)."""
    port = _int_or_string(obj, name, path, causes)
    port_path = child(path, name)
    if isinstance(port, str):
        return _each(port_path, port, port_name_errors(port))
    value = port or 0
    return _each(port_path, value, port_num_errors(value))


def _validate_handler(handler: Obj, path: str, causes: Causes, *, kinds: tuple[str, ...]) -> None:
    """validateHandler: exactly one of exec/httpGet/tcpSocket/grpc/sleep."""
    seen = 0
    for kind in kinds:
        if handler.get(kind) is None:
            continue
        body_path = child(path, kind)
        if seen:
            causes.append(forbidden(body_path, "may not specify more than 1 handler type"))
            continue
        seen += 1
        body = _map(handler, kind, path, causes)
        if kind == "exec" and not _strs(body, "command", body_path, causes):
            causes.append(required(child(body_path, "command")))
        elif kind == "httpGet":
            if not _str(body, "path", body_path, causes):
                causes.append(required(child(body_path, "path")))
            causes.extend(_port_num_or_name(body, "port", body_path, causes))
            causes.extend(_enum(child(body_path, "scheme"), _str(body, "scheme", body_path, causes), _HTTP_SCHEMES))
            for header_path, header in _maps(body, "httpHeaders", body_path, causes):
                header_name = _str(header, "name", header_path, causes)
                if not re.fullmatch("[-A-Za-z0-9]+", header_name):
                    causes.append(invalid(child(body_path, "httpHeaders"), header_name, regex_error(
                        "a valid HTTP header must consist of alphanumeric characters or '-'", "[-A-Za-z0-9]+", "X-Header-Name")))
        elif kind == "tcpSocket":
            causes.extend(_port_num_or_name(body, "port", body_path, causes))
        elif kind == "grpc":
            port = _int(body, "port", body_path, causes) or 0
            causes.extend(_each(child(body_path, "port"), port, port_num_errors(port)))
        elif kind == "sleep":
            causes.extend(_nonnegative(child(body_path, "seconds"), _int(body, "seconds", body_path, causes, bits=64)))
    if not seen:
        causes.append(required(path, "must specify a handler type"))


def _validate_probe(probe: Obj, path: str, causes: Causes) -> None:
    _validate_handler(probe, path, causes, kinds=("exec", "httpGet", "tcpSocket", "grpc"))
    for name in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        causes.extend(_nonnegative(child(path, name), _int(probe, name, path, causes)))
    grace = _int(probe, "terminationGracePeriodSeconds", path, causes, bits=64)
    if grace is not None and grace <= 0:
        causes.append(invalid(child(path, "terminationGracePeriodSeconds"), grace, "must be greater than 0"))


def _validate_ports(container: Obj, path: str, causes: Causes) -> None:
    names: set[str] = set()
    for port_path, port in _maps(container, "ports", path, causes):
        name = _str(port, "name", port_path, causes)
        if name:
            errs = port_name_errors(name)
            if errs:
                causes.extend(_each(child(port_path, "name"), name, errs))
            elif name in names:
                causes.append(duplicate(child(port_path, "name"), name))
            names.add(name)
        container_port = _int(port, "containerPort", port_path, causes) or 0
        if container_port == 0:
            causes.append(required(child(port_path, "containerPort")))
        else:
            causes.extend(_each(child(port_path, "containerPort"), container_port, port_num_errors(container_port)))
        host_port = _int(port, "hostPort", port_path, causes) or 0
        if host_port:
            causes.extend(_each(child(port_path, "hostPort"), host_port, port_num_errors(host_port)))
        causes.extend(_enum(child(port_path, "protocol"), _str(port, "protocol", port_path, causes), _PROTOCOLS))
        host_ip = _str(port, "hostIP", port_path, causes)
        if host_ip:
            causes.extend(_each(child(port_path, "hostIP"), host_ip, ip_errors(host_ip)))


def _validate_key_selector(selector: Obj, path: str, causes: Causes) -> None:
    name = _str(selector, "name", path, causes)
    if name:
        causes.extend(_each(child(path, "name"), name, dns1123_subdomain_errors(name)))
    selector_key = _str(selector, "key", path, causes)
    if not selector_key:
        causes.append(required(child(path, "key")))
    else:
        causes.extend(_each(child(path, "key"), selector_key, config_map_key_errors(selector_key)))


def _validate_env(container: Obj, path: str, causes: Causes) -> None:
    for env_path, env in _maps(container, "env", path, causes):
        name = _str(env, "name", env_path, causes)
        if not name:
            causes.append(required(child(env_path, "name")))
        else:
            causes.extend(_each(child(env_path, "name"), name, env_var_name_errors(name)))
        value = _str(env, "value", env_path, causes)
        value_from = _opt_map(env, "valueFrom", env_path, causes)
        if value_from is None:
            continue
        from_path = child(env_path, "valueFrom")
        sources = 0
        field_ref = _opt_map(value_from, "fieldRef", from_path, causes)
        if field_ref is not None:
            sources += 1
            ref_path = child(from_path, "fieldRef")
            field_path = _str(field_ref, "fieldPath", ref_path, causes)
            if not _str(field_ref, "apiVersion", ref_path, causes):
                causes.append(required(child(ref_path, "apiVersion")))
            elif not field_path:
                causes.append(required(child(ref_path, "fieldPath")))
            else:
                base = field_path.split("[", 1)[0]
                subscripted = "[" in field_path
                if subscripted and base not in ("metadata.labels", "metadata.annotations"):
                    causes.append(invalid(ref_path, base, "does not support subscript"))
                elif not subscripted and base not in _ENV_FIELD_PATHS:
                    causes.append(not_supported(child(ref_path, "fieldPath"), field_path, sorted(_ENV_FIELD_PATHS)))
        resource_ref = _opt_map(value_from, "resourceFieldRef", from_path, causes)
        if resource_ref is not None:
            sources += 1
            if not _str(resource_ref, "resource", child(from_path, "resourceFieldRef"), causes):
                causes.append(required(child(child(from_path, "resourceFieldRef"), "resource")))
        for ref_name in ("configMapKeyRef", "secretKeyRef"):
            ref = _opt_map(value_from, ref_name, from_path, causes)
            if ref is not None:
                sources += 1
                _validate_key_selector(ref, child(from_path, ref_name), causes)
        if sources == 0:
            causes.append(invalid(from_path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
        elif value:
            causes.append(invalid(from_path, "", "may not be specified when `value` is not empty"))
        elif sources > 1:
            causes.append(invalid(from_path, "", "may not have more than one field specified at a time"))
    for env_path, env_from in _maps(container, "envFrom", path, causes):
        prefix = _str(env_from, "prefix", env_path, causes)
        causes.extend(_each(child(env_path, "prefix"), prefix, env_var_name_errors(prefix)))
        refs = [name for name in ("configMapRef", "secretRef") if _opt_map(env_from, name, env_path, causes) is not None]
        if not refs:
            causes.append(invalid(child(path, "envFrom"), "", "must specify one of: `configMapRef` or `secretRef`"))
        elif len(refs) > 1:
            causes.append(invalid(child(path, "envFrom"), "", "may not have more than one field specified at a time"))


def _quantity(value: Any, path: str, causes: Causes) -> Any:
    """Parse one ResourceList value; report it with Kubernetes' parse error. Returns Decimal | None."""
    try:
        amount = parse_quantity(value)
    except QuantityError as exc:
        causes.append(invalid(path, value, str(exc)))
        return None
    if amount < 0:
        causes.append(invalid(path, value, "must be greater than or equal to 0"))
    return amount


def _resource_name_errors(name: str, path: str) -> Causes:
    if "/" not in name:
        if name in _STANDARD_CONTAINER_RESOURCES or name.startswith("hugepages-"):
            return []
        return [invalid(path, name, "must be a standard resource for containers")]
    errs = qualified_name_errors(name)
    if errs:
        return _each(path, name, errs)
    if name.split("/", 1)[0].endswith("kubernetes.io"):
        return [invalid(path, name, "must be a standard resource for containers")]
    return []


def _resource_list(resources: Obj, name: str, path: str, causes: Causes) -> dict[str, Any]:
    list_path = child(path, name)
    amounts: dict[str, Any] = {}
    for resource, value in _map(resources, name, path, causes).items():
        item_path = key(list_path, resource)
        causes.extend(_resource_name_errors(resource, item_path))
        amount = _quantity(value, item_path, causes)
        if amount is not None:
            amounts[resource] = (value, amount)
    return amounts


def _validate_resources(container: Obj, path: str, causes: Causes) -> None:
    """ValidateResourceRequirements: names, quantities, requests <= limits (== for extended ones)."""
    resources = _map(container, "resources", path, causes)
    res_path = child(path, "resources")
    limits = _resource_list(resources, "limits", res_path, causes)
    requests = _resource_list(resources, "requests", res_path, causes)
    req_path = child(res_path, "requests")
    for resource, (raw, amount) in requests.items():
        if resource not in limits:
            continue
        limit_raw, limit = limits[resource]
        overcommit = "/" not in resource and not resource.startswith("hugepages-")
        if not overcommit and amount != limit:
            causes.append(invalid(req_path, str(raw), f"must be equal to {resource} limit of {limit_raw}"))
        elif amount > limit:
            causes.append(invalid(req_path, str(raw), f"must be less than or equal to {resource} limit of {limit_raw}"))


def _validate_volume_mounts(container: Obj, path: str, volumes: set[str], causes: Causes) -> None:
    mount_points: set[str] = set()
    for mount_path, mount in _maps(container, "volumeMounts", path, causes):
        name = _str(mount, "name", mount_path, causes)
        if not name:
            causes.append(required(child(mount_path, "name")))
        if name not in volumes:
            causes.append(not_found(child(mount_path, "name"), name))
        target = _str(mount, "mountPath", mount_path, causes)
        if not target:
            causes.append(required(child(mount_path, "mountPath")))
        if target in mount_points:
            causes.append(invalid(child(mount_path, "mountPath"), target, "must be unique"))
        mount_points.add(target)
        _bool(mount, "readOnly", mount_path, causes)
        sub_path = _str(mount, "subPath", mount_path, causes)
        if sub_path.startswith("/"):
            causes.append(invalid(child(mount_path, "subPath"), sub_path, "must be a relative path"))
        if ".." in sub_path.split("/"):
            causes.append(invalid(child(mount_path, "subPath"), sub_path, "must not contain '..'"))


def _validate_container(container: Obj, path: str, *, volumes: set[str], init: bool, is_pod: bool, causes: Causes) -> None:
    name = _str(container, "name", path, causes)
    if not name:
        causes.append(required(child(path, "name")))
    else:
        causes.extend(_each(child(path, "name"), name, dns1123_label_errors(name)))
    image = _str(container, "image", path, causes)
    if not image:
        causes.append(required(child(path, "image")))
    elif is_pod and image != image.strip():
        causes.append(invalid(child(path, "image"), image, "must not have leading or trailing whitespace"))
    _strs(container, "command", path, causes)
    _strs(container, "args", path, causes)
    _str(container, "workingDir", path, causes)
    sidecar = False
    if init:
        restart = _str(container, "restartPolicy", path, causes)
        sidecar = restart == "Always"
        if restart and not sidecar:
            causes.append(not_supported(child(path, "restartPolicy"), restart, ("Always",)))
    elif container.get("restartPolicy") is not None:
        causes.append(forbidden(child(path, "restartPolicy"), "may not be set for non-init containers"))
    lifecycle = _opt_map(container, "lifecycle", path, causes)
    if lifecycle is not None:
        if init and not sidecar:
            causes.append(invalid(child(path, "lifecycle"), lifecycle, "must not be set for init containers"))
        for hook in ("postStart", "preStop"):
            handler = _opt_map(lifecycle, hook, child(path, "lifecycle"), causes)
            if handler is not None:
                _validate_handler(handler, child(child(path, "lifecycle"), hook), causes,
                                  kinds=("exec", "httpGet", "tcpSocket", "sleep"))
    for probe_name in PROBES:
        probe = _opt_map(container, probe_name, path, causes)
        if probe is None:
            continue
        probe_path = child(path, probe_name)
        if init and not sidecar:
            causes.append(invalid(probe_path, probe, "must not be set for init containers"))
            continue
        _validate_probe(probe, probe_path, causes)
        threshold = probe.get("successThreshold")
        if probe_name != "readinessProbe" and isinstance(threshold, int) and not isinstance(threshold, bool) and threshold != 1:
            causes.append(invalid(child(probe_path, "successThreshold"), threshold, "must be 1"))
        if probe_name == "readinessProbe" and probe.get("terminationGracePeriodSeconds") is not None:
            causes.append(invalid(child(probe_path, "terminationGracePeriodSeconds"), probe["terminationGracePeriodSeconds"],
                                  "must not be set for readinessProbes"))
    policy = _str(container, "terminationMessagePolicy", path, causes)
    if not policy:
        causes.append(required(child(path, "terminationMessagePolicy"), "must be 'File' or 'FallbackToLogsOnError'"))
    elif policy not in ("File", "FallbackToLogsOnError"):
        causes.append(invalid(child(path, "terminationMessagePolicy"), policy, "must be 'File' or 'FallbackToLogsOnError'"))
    _str(container, "terminationMessagePath", path, causes)
    _validate_ports(container, path, causes)
    _validate_env(container, path, causes)
    _validate_volume_mounts(container, path, volumes, causes)
    causes.extend(_enum(child(path, "imagePullPolicy"), _str(container, "imagePullPolicy", path, causes), _PULL_POLICIES))
    _validate_resources(container, path, causes)
    _opt_map(container, "securityContext", path, causes)
    for flag in ("stdin", "stdinOnce", "tty"):
        _bool(container, flag, path, causes)


def _host_port_conflicts(containers: list[tuple[str, Obj]]) -> Causes:
    """AccumulateUniqueHostPorts: one host port per protocol/hostIP across containers."""
    seen: set[str] = set()
    causes: Causes = []
    for container_path, container in containers:
        ports = container.get("ports")
        for i, port in enumerate(ports if isinstance(ports, list) else []):
            if not isinstance(port, dict):
                continue
            host_port = port.get("hostPort")
            if not isinstance(host_port, int) or isinstance(host_port, bool) or host_port == 0:
                continue
            slot = f"{port.get('protocol') or ''}/{port.get('hostIP') or ''}/{host_port}"
            if slot in seen:
                causes.append(duplicate(child(index(child(container_path, "ports"), i), "hostPort"), slot))
            seen.add(slot)
    return causes


def _validate_volumes(spec: Obj, path: str, causes: Causes) -> set[str]:
    names: set[str] = set()
    for volume_path, volume in _maps(spec, "volumes", path, causes):
        errs: Causes = []
        name = _str(volume, "name", volume_path, errs)
        if not name:
            errs.append(required(child(volume_path, "name")))
        else:
            errs.extend(_each(child(volume_path, "name"), name, dns1123_label_errors(name)))
        if name in names:
            errs.append(duplicate(child(volume_path, "name"), name))
        sources = [s for s in VOLUME_SOURCES if volume.get(s) is not None]
        if not sources:
            errs.append(required(volume_path, "must specify a volume type"))
        for extra in sources[1:]:
            errs.append(forbidden(child(volume_path, extra), "may not specify more than 1 volume type"))
        for source in sources[:1]:
            body = _map(volume, source, volume_path, errs)
            source_path = child(volume_path, source)
            if source == "hostPath" and not _str(body, "path", source_path, errs):
                errs.append(required(child(source_path, "path")))
            elif source == "persistentVolumeClaim" and not _str(body, "claimName", source_path, errs):
                errs.append(required(child(source_path, "claimName")))
            elif source == "emptyDir" and body.get("sizeLimit") is not None:
                _quantity(body["sizeLimit"], child(source_path, "sizeLimit"), errs)
        # Like Kubernetes, only volumes without errors can be mounted.
        if not errs:
            names.add(name)
        causes.extend(errs)
    return names


def _validate_tolerations(spec: Obj, path: str, causes: Causes) -> None:
    for tol_path, tol in _maps(spec, "tolerations", path, causes):
        tol_key = _str(tol, "key", tol_path, causes)
        operator = _str(tol, "operator", tol_path, causes)
        value = _str(tol, "value", tol_path, causes)
        effect = _str(tol, "effect", tol_path, causes)
        seconds = _int(tol, "tolerationSeconds", tol_path, causes, bits=64)
        if tol_key:
            causes.extend(_each(child(tol_path, "key"), tol_key, qualified_name_errors(tol_key)))
        elif operator != "Exists":
            causes.append(invalid(child(tol_path, "operator"), operator,
                                  'operator must be Exists when `key` is empty, which means "match all values and all keys"'))
        if seconds is not None and effect != "NoExecute":
            causes.append(invalid(child(tol_path, "effect"), effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if operator in ("Equal", ""):
            errs = label_value_errors(value)
            if errs:
                causes.append(invalid(child(tol_path, "operator"), value, ";".join(errs)))
        elif operator == "Exists":
            if value:
                causes.append(invalid(child(tol_path, "operator"), tol, "value must be empty when `operator` is 'Exists'"))
        else:
            causes.append(not_supported(child(tol_path, "operator"), operator, _TOLERATION_OPERATORS))
        if effect and effect not in _TAINT_EFFECTS:
            causes.append(not_supported(child(tol_path, "effect"), effect, _TAINT_EFFECTS))


def validate_pod_spec(spec: Obj, path: str, *, is_pod: bool) -> Causes:
    """ValidatePodSpec (plus the pod-only container checks when ``is_pod``)."""
    causes: Causes = []
    volumes = _validate_volumes(spec, path, causes)
    containers = _maps(spec, "containers", path, causes)
    init_containers = _maps(spec, "initContainers", path, causes)
    if not containers:
        causes.append(required(child(path, "containers")))
    names: set[str] = set()
    for container_path, container in containers:
        _validate_container(container, container_path, volumes=volumes, init=False, is_pod=is_pod, causes=causes)
        name = container.get("name")
        if isinstance(name, str):
            if name in names:
                causes.append(duplicate(child(container_path, "name"), name))
            names.add(name)
    for container_path, container in init_containers:
        _validate_container(container, container_path, volumes=volumes, init=True, is_pod=is_pod, causes=causes)
        name = container.get("name")
        if isinstance(name, str):
            if name in names:
                causes.append(duplicate(child(container_path, "name"), name))
            if name:
                names.add(name)
    causes.extend(_host_port_conflicts(containers))
    for pair in init_containers:
        causes.extend(_host_port_conflicts([pair]))
    causes.extend(_enum(child(path, "restartPolicy"), _str(spec, "restartPolicy", path, causes), _RESTART_POLICIES))
    dns_policy = _str(spec, "dnsPolicy", path, causes)
    causes.extend(_enum(child(path, "dnsPolicy"), dns_policy, _DNS_POLICIES))
    dns_config = _opt_map(spec, "dnsConfig", path, causes)
    if dns_policy == "None":
        if dns_config is None:
            causes.append(required(child(path, "dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"))
        elif not _strs(dns_config, "nameservers", child(path, "dnsConfig"), causes):
            causes.append(required(child(child(path, "dnsConfig"), "nameservers"),
                                   "must provide at least one DNS nameserver when `dnsPolicy` is None"))
    _read_labels(spec, "nodeSelector", path, causes)
    grace = _int(spec, "terminationGracePeriodSeconds", path, causes, bits=64)
    causes.extend(_nonnegative(child(path, "terminationGracePeriodSeconds"), grace))
    deadline = _int(spec, "activeDeadlineSeconds", path, causes, bits=64)
    if deadline is not None and not 1 <= deadline <= INT32_MAX:
        causes.append(invalid(child(path, "activeDeadlineSeconds"), deadline, _range_error(1, INT32_MAX)))
    for field_name, check in (("serviceAccountName", dns1123_subdomain_errors), ("nodeName", dns1123_subdomain_errors),
                              ("priorityClassName", dns1123_subdomain_errors), ("hostname", dns1123_label_errors),
                              ("subdomain", dns1123_label_errors), ("schedulerName", lambda _v: [])):
        value = _str(spec, field_name, path, causes)
        if value:
            causes.extend(_each(child(path, field_name), value, check(value)))
    _validate_tolerations(spec, path, causes)
    for flag in ("hostNetwork", "hostPID", "hostIPC", "enableServiceLinks", "automountServiceAccountToken"):
        _bool(spec, flag, path, causes)
    _int(spec, "priority", path, causes)
    _opt_map(spec, "securityContext", path, causes)
    _opt_map(spec, "affinity", path, causes)
    for secret_path, secret in _maps(spec, "imagePullSecrets", path, causes):
        _str(secret, "name", secret_path, causes)
    return causes


def _validate_template(spec: Obj, path: str, causes: Causes, *, owner: str) -> tuple[Obj, dict[str, str]]:
    """ValidatePodTemplateSpec for a controller's template; returns (template, its labels)."""
    template_path = child(path, "template")
    template = _map(spec, "template", path, causes)
    meta = _map(template, "metadata", template_path, causes)
    meta_path = child(template_path, "metadata")
    labels = _read_labels(meta, "labels", meta_path, causes)
    causes.extend(validate_annotations(_str_map(meta, "annotations", meta_path, causes), child(meta_path, "annotations")))
    pod_spec_path = child(template_path, "spec")
    pod_spec = _map(template, "spec", template_path, causes)
    causes.extend(validate_pod_spec(pod_spec, pod_spec_path, is_pod=False))
    restart = pod_spec.get("restartPolicy")
    if isinstance(restart, str) and restart in _RESTART_POLICIES and restart != "Always":
        causes.append(not_supported(child(pod_spec_path, "restartPolicy"), restart, ("Always",)))
    if pod_spec.get("activeDeadlineSeconds") is not None:
        causes.append(forbidden(child(pod_spec_path, "activeDeadlineSeconds"), f"activeDeadlineSeconds in {owner} is not Supported"))
    return template, labels


# ============================================================================ kinds

def _validate_pod(obj: Obj) -> Causes:
    causes: Causes = []
    spec = _map(obj, "spec", "", causes)
    return causes + validate_pod_spec(spec, "spec", is_pod=True)


def _validate_replicated(obj: Obj, *, owner: str) -> tuple[Causes, Obj]:
    """The replicas/selector/template rules Deployments and ReplicaSets share."""
    causes: Causes = []
    spec = _map(obj, "spec", "", causes)
    causes.extend(_nonnegative("spec.replicas", _int(spec, "replicas", "spec", causes)))
    causes.extend(_nonnegative("spec.minReadySeconds", _int(spec, "minReadySeconds", "spec", causes)))
    selector = _opt_map(spec, "selector", "spec", causes)
    usable = False
    if selector is None:
        causes.append(required("spec.selector"))
    else:
        usable = _validate_label_selector(selector, "spec.selector", causes)
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            usable = False
            # Kubernetes says "for deployment" for ReplicaSets too.
            causes.append(invalid("spec.selector", selector, "empty selector is invalid for deployment"))
    _, labels = _validate_template(spec, "spec", causes, owner=owner)
    if usable and selector is not None and not selector_matches(selector, labels):
        causes.append(invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`"))
    return causes, spec


def _percent_value(value: int | str | None) -> int:
    """getIntOrPercentValue: a valid percent string's number, an int, else 0."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if _full(_PERCENT_RE, value):
            return int(value[:-1])
        return int(value) if value.lstrip("-").isdigit() and value.isascii() else 0
    return 0


def _int_or_percent(rolling: Obj, name: str, path: str, causes: Causes) -> int | str | None:
    value = _int_or_string(rolling, name, path, causes)
    field_path = child(path, name)
    if isinstance(value, str) and not _full(_PERCENT_RE, value):
        causes.append(invalid(field_path, value, regex_error(
            "a valid percent string must be a numeric string followed by an ending '%'", _PERCENT_FMT, "1%", "93%")))
    elif isinstance(value, int):
        causes.extend(_nonnegative(field_path, value))
    return value


def _validate_strategy(spec: Obj, causes: Causes) -> None:
    strategy = _map(spec, "strategy", "spec", causes)
    kind = _str(strategy, "type", "spec.strategy", causes)
    rolling = _opt_map(strategy, "rollingUpdate", "spec.strategy", causes)
    if kind == "Recreate":
        if rolling is not None:
            causes.append(forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"))
    elif kind == "RollingUpdate":
        if rolling is None:
            causes.append(required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"))
            return
        path = "spec.strategy.rollingUpdate"
        unavailable = _int_or_percent(rolling, "maxUnavailable", path, causes)
        surge = _int_or_percent(rolling, "maxSurge", path, causes)
        if _percent_value(unavailable) == 0 and _percent_value(surge) == 0:
            causes.append(invalid(child(path, "maxUnavailable"), unavailable if unavailable is not None else 0,
                                  "may not be 0 when `maxSurge` is 0"))
        if isinstance(unavailable, str) and _full(_PERCENT_RE, unavailable) and int(unavailable[:-1]) > 100:
            causes.append(invalid(child(path, "maxUnavailable"), unavailable, "must not be greater than 100%"))
    else:
        causes.append(not_supported("spec.strategy", kind, ("Recreate", "RollingUpdate")))


def _validate_deployment(obj: Obj) -> Causes:
    causes, spec = _validate_replicated(obj, owner="ReplicaSet")
    _validate_strategy(spec, causes)
    history = _int(spec, "revisionHistoryLimit", "spec", causes)
    causes.extend(_nonnegative("spec.revisionHistoryLimit", history))
    deadline = _int(spec, "progressDeadlineSeconds", "spec", causes)
    if deadline is not None:
        causes.extend(_nonnegative("spec.progressDeadlineSeconds", deadline))
        min_ready = spec.get("minReadySeconds")
        if deadline <= (min_ready if isinstance(min_ready, int) else 0):
            causes.append(invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
    _bool(spec, "paused", "spec", causes)
    return causes


def _validate_replica_set(obj: Obj) -> Causes:
    causes, _ = _validate_replicated(obj, owner="ReplicaSet")
    return causes


def _validate_service_port(port: Obj, path: str, *, require_name: bool, names: set[str], causes: Causes) -> None:
    name = _str(port, "name", path, causes)
    if require_name and not name:
        causes.append(required(child(path, "name")))
    elif name:
        causes.extend(_each(child(path, "name"), name, dns1123_label_errors(name)))
        if name in names:
            causes.append(duplicate(child(path, "name"), name))
        names.add(name)
    number = _int(port, "port", path, causes) or 0
    causes.extend(_each(child(path, "port"), number, port_num_errors(number)))
    causes.extend(_enum(child(path, "protocol"), _str(port, "protocol", path, causes), _PROTOCOLS))
    causes.extend(_port_num_or_name(port, "targetPort", path, causes))
    _str(port, "appProtocol", path, causes)


def _validate_service(obj: Obj) -> Causes:
    causes: Causes = []
    spec = _map(obj, "spec", "", causes)
    kind = _str(spec, "type", "spec", causes)
    cluster_ip = _str(spec, "clusterIP", "spec", causes)
    headless = cluster_ip == "None"
    ports = _maps(spec, "ports", "spec", causes)
    if not ports and not headless and kind != "ExternalName":
        causes.append(required("spec.ports"))
    if kind in ("LoadBalancer", "NodePort") and headless:
        causes.append(invalid("spec.clusterIP", cluster_ip, f"may not be set to 'None' for {kind} services"))
    if kind == "ExternalName":
        if cluster_ip:
            causes.append(forbidden("spec.clusterIP", "must be empty for ExternalName services"))
        external_name = _str(spec, "externalName", "spec", causes)
        if external_name:
            causes.extend(_each("spec.externalName", external_name, dns1123_subdomain_errors(external_name.removesuffix("."))))
        else:
            causes.append(required("spec.externalName"))
    names: set[str] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    seen_node_ports: set[tuple[Any, Any]] = set()
    for port_path, port in ports:
        _validate_service_port(port, port_path, require_name=len(ports) > 1, names=names, causes=causes)
        pair = (port.get("protocol"), port.get("port"))
        if all(isinstance(v, (str, int)) for v in pair):
            if pair in seen_ports:
                causes.append(duplicate(port_path, {"port": pair[1], "protocol": pair[0]}))
            seen_ports.add(pair)
        node_port = _int(port, "nodePort", port_path, causes) or 0
        if not node_port:
            continue
        if kind == "ClusterIP":
            causes.append(forbidden(child(port_path, "nodePort"), "may not be used when `type` is 'ClusterIP'"))
        elif kind in ("NodePort", "LoadBalancer") and not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
            causes.append(invalid(child(port_path, "nodePort"), node_port,
                                  "provided port is not in the valid range. The range of valid ports is %d-%d" % NODE_PORT_RANGE))
        if (port.get("protocol"), node_port) in seen_node_ports:
            causes.append(duplicate(child(port_path, "nodePort"), node_port))
        seen_node_ports.add((port.get("protocol"), node_port))
    _read_labels(spec, "selector", "spec", causes)
    affinity = _str(spec, "sessionAffinity", "spec", causes)
    causes.extend(_enum("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    affinity_config = _opt_map(spec, "sessionAffinityConfig", "spec", causes)
    if affinity == "None" and affinity_config is not None:
        causes.append(forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"))
    elif affinity == "ClientIP":
        client_ip = _opt_map(affinity_config or {}, "clientIP", "spec.sessionAffinityConfig", causes)
        timeout = _int(client_ip or {}, "timeoutSeconds", "spec.sessionAffinityConfig.clientIP", causes)
        if affinity_config is None:
            causes.append(required("spec.sessionAffinityConfig", "when session affinity type is ClientIP"))
        elif client_ip is None:
            causes.append(required("spec.sessionAffinityConfig.clientIP", "when session affinity type is ClientIP"))
        elif timeout is None:
            causes.append(required("spec.sessionAffinityConfig.clientIP.timeoutSeconds", "when session affinity type is ClientIP"))
        elif not 0 < timeout <= 86400:
            causes.append(invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout, "must be greater than 0 and less than 86400"))
    if cluster_ip and not headless:
        if ip_errors(cluster_ip):
            causes.append(invalid("spec.clusterIP", cluster_ip, "must be empty, 'None', or a valid IP address"))
    for i, ip in enumerate(_strs(spec, "externalIPs", "spec", causes)):
        causes.extend(_each(index("spec.externalIPs", i), ip, ip_errors(ip)))
    causes.extend(_enum("spec.type", kind, ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")))
    external_policy = _str(spec, "externalTrafficPolicy", "spec", causes)
    accessible = kind in ("NodePort", "LoadBalancer") or (kind == "ClusterIP" and bool(spec.get("externalIPs")))
    if external_policy:
        if not accessible:
            causes.append(invalid("spec.externalTrafficPolicy", external_policy, "may only be set for externally-accessible services"))
        else:
            causes.extend(_enum("spec.externalTrafficPolicy", external_policy, ("Cluster", "Local")))
    elif accessible:
        causes.append(required("spec.externalTrafficPolicy"))
    internal_policy = _str(spec, "internalTrafficPolicy", "spec", causes)
    if kind != "ExternalName":
        causes.extend(_enum("spec.internalTrafficPolicy", internal_policy, ("Cluster", "Local")))
    policy = _str(spec, "ipFamilyPolicy", "spec", causes)
    causes.extend(_enum("spec.ipFamilyPolicy", policy, ("PreferDualStack", "RequireDualStack", "SingleStack"), required_if_empty=False))
    families = _strs(spec, "ipFamilies", "spec", causes)
    for i, family in enumerate(families):
        causes.extend(_enum(index("spec.ipFamilies", i), family, ("IPv4", "IPv6")))
        if family in families[:i]:
            causes.append(duplicate(index("spec.ipFamilies", i), family))
    if len(families) > 2:
        causes.append(invalid("spec.ipFamilies", families, "may specify no more than one IP for each IP family, i.e 192.168.0.0/16,fd00::/8"))
    return causes


def _validate_namespace(obj: Obj) -> Causes:
    causes: Causes = []
    spec = _map(obj, "spec", "", causes)
    for i, name in enumerate(_strs(spec, "finalizers", "spec", causes)):
        causes.extend(_finalizer_causes([name], index("spec.finalizers", i)))
    status = _map(obj, "status", "", causes)
    causes.extend(_enum("status.phase", _str(status, "phase", "status", causes), ("Active", "Terminating"), required_if_empty=False))
    return causes


def _validate_node(obj: Obj) -> Causes:
    causes: Causes = []
    spec = _map(obj, "spec", "", causes)
    seen: set[tuple[str, str]] = set()
    for taint_path, taint in _maps(spec, "taints", "spec", causes):
        taint_key = _str(taint, "key", taint_path, causes)
        if not taint_key:
            causes.append(required(child(taint_path, "key")))
        else:
            causes.extend(_each(child(taint_path, "key"), taint_key, qualified_name_errors(taint_key)))
        value = _str(taint, "value", taint_path, causes)
        causes.extend(_each(child(taint_path, "value"), value, label_value_errors(value)))
        effect = _str(taint, "effect", taint_path, causes)
        causes.extend(_enum(child(taint_path, "effect"), effect, _TAINT_EFFECTS))
        if (taint_key, effect) in seen:
            causes.append(duplicate("spec.taints", f"{taint_key}:{effect}"))
        seen.add((taint_key, effect))
    for field_name in ("podCIDR",):
        cidr = _str(spec, field_name, "spec", causes)
        if cidr:
            causes.extend(_cidr_causes(cidr, child("spec", field_name)))
    for i, cidr in enumerate(_strs(spec, "podCIDRs", "spec", causes)):
        causes.extend(_cidr_causes(cidr, index("spec.podCIDRs", i)))
    _bool(spec, "unschedulable", "spec", causes)
    status = _map(obj, "status", "", causes)
    for list_name in ("capacity", "allocatable"):
        list_path = child("status", list_name)
        for resource, value in _map(status, list_name, "status", causes).items():
            _quantity(value, key(list_path, resource), causes)
    for address_path, address in _maps(status, "addresses", "status", causes):
        _str(address, "type", address_path, causes)
        _str(address, "address", address_path, causes)
    return causes


def _cidr_causes(cidr: str, path: str) -> Causes:
    try:
        ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return [invalid(path, cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]
    return [] if "/" in cidr else [invalid(path, cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]


def _special_ip_causes(ip: str, path: str) -> Causes:
    """validateNonSpecialIP: endpoints may not point at unspecified, loopback or link-local addresses."""
    address = ipaddress.ip_address(ip)
    causes: Causes = []
    if address.is_unspecified:
        causes.append(invalid(path, ip, "may not be unspecified (0.0.0.0)"))
    if address.is_loopback:
        causes.append(invalid(path, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if address.is_link_local and not address.is_multicast:
        causes.append(invalid(path, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if address.is_multicast and (address in ipaddress.ip_network("224.0.0.0/24") if address.version == 4
                                 else address in ipaddress.ip_network("ff02::/16")):
        causes.append(invalid(path, ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
    return causes


def _validate_endpoints(obj: Obj) -> Causes:
    causes: Causes = []
    for subset_path, subset in _maps(obj, "subsets", "", causes):
        addresses = _maps(subset, "addresses", subset_path, causes)
        not_ready = _maps(subset, "notReadyAddresses", subset_path, causes)
        if not addresses and not not_ready:
            causes.append(required(subset_path, "must specify `addresses` or `notReadyAddresses`"))
        for address_path, address in addresses + not_ready:
            ip = _str(address, "ip", address_path, causes)
            errs = _each(child(address_path, "ip"), ip, ip_errors(ip))
            causes.extend(errs or _special_ip_causes(ip, child(address_path, "ip")))
            hostname = _str(address, "hostname", address_path, causes)
            if hostname:
                causes.extend(_each(child(address_path, "hostname"), hostname, dns1123_label_errors(hostname)))
            node_name = _str(address, "nodeName", address_path, causes)
            if node_name:
                causes.extend(_each(child(address_path, "nodeName"), node_name, dns1123_subdomain_errors(node_name)))
            _opt_map(address, "targetRef", address_path, causes)
        ports = _maps(subset, "ports", subset_path, causes)
        for port_path, port in ports:
            name = _str(port, "name", port_path, causes)
            if len(ports) > 1 and not name:
                causes.append(required(child(port_path, "name")))
            elif name:
                causes.extend(_each(child(port_path, "name"), name, dns1123_label_errors(name)))
            number = _int(port, "port", port_path, causes) or 0
            causes.extend(_each(child(port_path, "port"), number, port_num_errors(number)))
            causes.extend(_enum(child(port_path, "protocol"), _str(port, "protocol", port_path, causes), _PROTOCOLS))
    return causes


def _validate_config_map(obj: Obj) -> Causes:
    causes: Causes = []
    data = _str_map(obj, "data", "", causes)
    size = 0
    for data_key, value in data.items():
        causes.extend(_each(key("data", data_key), data_key, config_map_key_errors(data_key)))
        size += len(value.encode())
    for data_key, value in _str_map(obj, "binaryData", "", causes).items():
        path = key("binaryData", data_key)
        causes.extend(_each(path, data_key, config_map_key_errors(data_key)))
        try:
            size += len(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            causes.append(invalid(path, value, "must be base64-encoded"))
        if data_key in data:
            causes.append(invalid(path, data_key, "duplicate key in both data and binaryData"))
    if size > CONFIGMAP_MAX_SIZE:
        causes.append(too_long("", CONFIGMAP_MAX_SIZE))
    _bool(obj, "immutable", "", causes)
    return causes


def _validate_event(obj: Obj) -> Causes:
    causes: Causes = []
    involved = _opt_map(obj, "involvedObject", "", causes)
    if involved is None:
        causes.append(required("involvedObject"))
        involved = {}
    involved_ns = _str(involved, "namespace", "involvedObject", causes)
    for name in ("kind", "name", "apiVersion", "uid", "fieldPath", "resourceVersion"):
        _str(involved, name, "involvedObject", causes)
    meta = _dict_at(obj, "metadata")
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else ""
    event_type = _str(obj, "type", "", causes)
    if event_type:
        causes.extend(_enum("type", event_type, ("Normal", "Warning")))
    for name in ("reason", "message", "action", "reportingComponent", "reportingInstance"):
        _str(obj, name, "", causes)
    _int(obj, "count", "", causes)
    if not obj.get("eventTime"):
        # Legacy (core/v1 style) events: the namespace must agree with the involved object's.
        mismatch = namespace not in ("", "default") if not involved_ns else namespace != involved_ns
        if mismatch:
            causes.append(invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
        return causes
    if not involved_ns and namespace not in ("default", "kube-system"):
        causes.append(invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    controller = _str(obj, "reportingComponent", "", [])
    if not controller:
        causes.append(required("reportingComponent"))
    else:
        causes.extend(_each("reportingComponent", controller, qualified_name_errors(controller)))
    for name, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128)):
        value = _str(obj, name, "", [])
        if not value:
            causes.append(required(name))
        elif len(value) > limit:
            causes.append(invalid(name, "", f"can have at most {limit} characters"))
    if len(_str(obj, "message", "", [])) > 1024:
        causes.append(invalid("message", "", "can have at most 1024 characters"))
    return causes


_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")


def _validate_ingress_backend(backend: Obj, path: str, causes: Causes) -> None:
    service = _opt_map(backend, "service", path, causes)
    resource = _opt_map(backend, "resource", path, causes)
    if service is not None and resource is not None:
        causes.append(invalid(path, "", "cannot set both resource and service backends"))
        return
    if resource is not None:
        resource_path = child(path, "resource")
        for name in ("kind", "name"):
            if not _str(resource, name, resource_path, causes):
                causes.append(required(child(resource_path, name), f"{name} is required"))
        return
    if service is None:
        causes.append(invalid(path, "", "resource or service backend is required"))
        return
    service_path = child(path, "service")
    name = _str(service, "name", service_path, causes)
    if not name:
        causes.append(required(child(service_path, "name")))
    else:
        causes.extend(_each(child(service_path, "name"), name, dns1035_label_errors(name)))
    port = _map(service, "port", service_path, causes)
    port_path = child(service_path, "port")
    port_name = _str(port, "name", port_path, causes)
    number = _int(port, "number", port_path, causes) or 0
    if port_name and number:
        causes.append(invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        causes.extend(_each(child(port_path, "name"), port_name, port_name_errors(port_name)))
    elif number:
        causes.extend(_each(child(port_path, "number"), number, port_num_errors(number)))
    else:
        causes.append(required(path, "port name or number is required"))


def _validate_ingress_path(item: Obj, path: str, causes: Causes) -> None:
    path_type = _str(item, "pathType", path, causes)
    value = _str(item, "path", path, causes)
    if not path_type:
        causes.append(required(child(path, "pathType"), "pathType must be specified"))
        return
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            causes.append(invalid(child(path, "path"), value, "must be an absolute path"))
        if value:
            for seq in _INVALID_PATH_SEQUENCES:
                if seq in value:
                    causes.append(invalid(child(path, "path"), value, f"must not contain '{seq}'"))
            for suffix in _INVALID_PATH_SUFFIXES:
                if value.endswith(suffix):
                    causes.append(invalid(child(path, "path"), value, f"cannot end with '{suffix}'"))
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            causes.append(invalid(child(path, "path"), value, "must be an absolute path"))
    else:
        causes.append(not_supported(child(path, "pathType"), path_type, _PATH_TYPES))
    _validate_ingress_backend(_map(item, "backend", path, causes), child(path, "backend"), causes)


def _validate_ingress(obj: Obj) -> Causes:
    causes: Causes = []
    spec = _map(obj, "spec", "", causes)
    rules = _maps(spec, "rules", "spec", causes)
    default_backend = _opt_map(spec, "defaultBackend", "spec", causes)
    if not rules and default_backend is None:
        causes.append(invalid("spec", spec.get("rules"), "either `defaultBackend` or `rules` must be specified"))
    if default_backend is not None:
        _validate_ingress_backend(default_backend, "spec.defaultBackend", causes)
    for rule_path, rule in rules:
        host = _str(rule, "host", rule_path, causes)
        host_path = child(rule_path, "host")
        if host:
            if not ip_errors(host):
                causes.append(invalid(host_path, host, "must be a DNS name, not an IP address"))
            checker = wildcard_subdomain_errors if "*" in host else dns1123_subdomain_errors
            causes.extend(_each(host_path, host, checker(host)))
        http = _opt_map(rule, "http", rule_path, causes)
        if http is None:
            continue
        http_path = child(rule_path, "http")
        paths = _maps(http, "paths", http_path, causes)
        if not paths:
            causes.append(required(child(http_path, "paths")))
        for item_path, item in paths:
            _validate_ingress_path(item, item_path, causes)
    for tls_path, tls in _maps(spec, "tls", "spec", causes):
        _strs(tls, "hosts", tls_path, causes)
        secret = _str(tls, "secretName", tls_path, causes)
        if secret:
            causes.extend(_each(child(tls_path, "secretName"), secret, dns1123_subdomain_errors(secret)))
    class_name = _str(spec, "ingressClassName", "spec", causes)
    if class_name:
        causes.extend(_each("spec.ingressClassName", class_name, dns1123_subdomain_errors(class_name)))
    return causes


def _validate_lease(obj: Obj) -> Causes:
    causes: Causes = []
    spec = _map(obj, "spec", "", causes)
    duration = _int(spec, "leaseDurationSeconds", "spec", causes)
    if duration is not None and duration <= 0:
        causes.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    causes.extend(_nonnegative("spec.leaseTransitions", _int(spec, "leaseTransitions", "spec", causes)))
    for name in ("holderIdentity", "acquireTime", "renewTime", "strategy", "preferredHolder"):
        _str(spec, name, "spec", causes)
    return causes


# ============================================================================ updates

def _pod_update_causes(new: Obj, old: Obj) -> Causes:
    """ValidatePodUpdate: spec is immutable except images, deadline, added tolerations, grace -> 1."""
    new_spec, old_spec = new.get("spec"), old.get("spec")
    if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
        return []
    causes: Causes = []
    new_deadline, old_deadline = new_spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds")
    if old_deadline is not None and new_deadline is None:
        causes.append(invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"))
    elif isinstance(old_deadline, int) and isinstance(new_deadline, int) and new_deadline > old_deadline:
        causes.append(invalid("spec.activeDeadlineSeconds", new_deadline, "must be less than or equal to previous value"))
    new_tolerations = new_spec.get("tolerations") or []
    old_tolerations = old_spec.get("tolerations") or []
    if isinstance(new_tolerations, list) and isinstance(old_tolerations, list):
        def same(a: Any, b: Any) -> bool:
            if not isinstance(a, dict) or not isinstance(b, dict):
                return bool(a == b)
            return {k: v for k, v in a.items() if k != "tolerationSeconds"} == {k: v for k, v in b.items() if k != "tolerationSeconds"}
        if any(not any(same(o, n) for n in new_tolerations) for o in old_tolerations):
            causes.append(forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"))
    # Compare everything else: copy the mutable fields from new into a copy of old.
    mutable = copy.deepcopy(old_spec)
    for list_name in ("containers", "initContainers"):
        new_list, old_list = new_spec.get(list_name), mutable.get(list_name)
        if isinstance(new_list, list) and isinstance(old_list, list) and len(new_list) == len(old_list):
            for new_c, old_c in zip(new_list, old_list):
                if isinstance(new_c, dict) and isinstance(old_c, dict) and "image" in new_c:
                    old_c["image"] = new_c["image"]
    for name in ("activeDeadlineSeconds", "tolerations"):
        if name in new_spec:
            mutable[name] = new_spec[name]
        else:
            mutable.pop(name, None)
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and new_spec.get("terminationGracePeriodSeconds") == 1:
        mutable["terminationGracePeriodSeconds"] = 1
    if mutable != new_spec:
        changed = sorted(k for k in set(mutable) | set(new_spec) if mutable.get(k) != new_spec.get(k))
        causes.append(forbidden("spec", POD_UPDATE_FORBIDDEN + "\n  changed: " + ", ".join(f"spec.{k}" for k in changed)))
    return causes


def _selector_update_causes(new: Obj, old: Obj) -> Causes:
    """apps/v1 Deployments and ReplicaSets may never change their selector."""
    new_spec = _dict_at(new, "spec")
    old_spec = _dict_at(old, "spec")
    if new_spec.get("selector") != old_spec.get("selector"):
        return [invalid("spec.selector", new_spec.get("selector"), FIELD_IMMUTABLE)]
    return []


def _service_update_causes(new: Obj, old: Obj) -> Causes:
    new_spec = _dict_at(new, "spec")
    old_spec = _dict_at(old, "spec")
    if new_spec.get("type") == "ExternalName" or old_spec.get("type") == "ExternalName" or not old_spec.get("clusterIP"):
        return []
    if new_spec.get("clusterIP") != old_spec.get("clusterIP"):
        return [invalid("spec.clusterIP", new_spec.get("clusterIP", ""), FIELD_IMMUTABLE)]
    return []


def _config_map_update_causes(new: Obj, old: Obj) -> Causes:
    if old.get("immutable") is not True:
        return []
    causes: Causes = []
    if new.get("immutable") is not True:
        causes.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    for name in ("data", "binaryData"):
        if (new.get(name) or {}) != (old.get(name) or {}):
            causes.append(forbidden(name, "field is immutable when `immutable` is set"))
    return causes


# ============================================================================ entry point

_KINDS: dict[str, tuple[NameFn, Callable[[Obj], Causes]]] = {
    "Pod": (dns1123_subdomain_errors, _validate_pod),
    "Deployment": (dns1123_subdomain_errors, _validate_deployment),
    "ReplicaSet": (dns1123_subdomain_errors, _validate_replica_set),
    "Service": (dns1035_label_errors, _validate_service),
    "Namespace": (dns1123_label_errors, _validate_namespace),
    "Node": (dns1123_subdomain_errors, _validate_node),
    "Endpoints": (dns1123_subdomain_errors, _validate_endpoints),
    "ConfigMap": (dns1123_subdomain_errors, _validate_config_map),
    "Event": (dns1123_subdomain_errors, _validate_event),
    "Ingress": (dns1123_subdomain_errors, _validate_ingress),
    "Lease": (dns1123_subdomain_errors, _validate_lease),
}
_UPDATES: dict[str, Callable[[Obj, Obj], Causes]] = {
    "Pod": _pod_update_causes,
    "Deployment": _selector_update_causes,
    "ReplicaSet": _selector_update_causes,
    "Service": _service_update_causes,
    "ConfigMap": _config_map_update_causes,
}


def validate_object(kind: str, obj: dict, *, old: dict | None = None, namespaced: bool) -> list[StatusCause]:
    """Every validation problem of ``obj`` (already defaulted) as Kubernetes field causes.

    ``old`` is the stored object on update, which adds the kind's immutability rules. Unknown kinds
    get ObjectMeta validation only. Never raises, whatever JSON ``obj`` holds.
    """
    if not isinstance(obj, dict):
        return [_type_error("", obj, "object")]
    name_fn, validate_kind = _KINDS.get(kind, (dns1123_subdomain_errors, lambda _obj: []))
    try:
        causes = validate_object_meta(obj, name_fn=name_fn, namespaced=namespaced)
        causes += validate_kind(obj)
        if isinstance(old, dict) and kind in _UPDATES:
            causes += _UPDATES[kind](obj, old)
    except Exception as exc:  # noqa: BLE001 - a validator bug must become a 422 cause, never a 500
        return [StatusCause("InternalError", f"Internal error: {exc!r}", "")]
    return causes

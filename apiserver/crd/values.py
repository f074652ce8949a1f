"""OpenAPI v3 value validation of custom objects, as kube-openapi's ``validate.SchemaValidator`` does it.

Role: the port of ``k8s.io/kube-openapi/pkg/validation/validate`` (type, allOf/anyOf/oneOf/not,
string, format, number, slice, enum and object validators, in that order, each applied to every
value) plus apiextensions' ``kubeOpenAPIResultToFieldErrors``, which turns its errors into field
errors: ``Required value``, ``Unsupported value: ... supported values: ...``, ``Too long: may not be
more than 5 bytes``, ``Too many: 4: must have at most 3 items``, and for everything else
``Invalid value: <value>: <kube-openapi's sentence>`` ("spec.replicas in body should be greater than
or equal to 1"). Quirks are kept on purpose (they are what clients see): a value of the wrong type
is still checked by the other validators, errors that are not kube-openapi ``Validation`` errors
(anyOf/oneOf/allOf/not, numeric range of ``int32``) carry the field ``<nil>`` because apiextensions
gives them the nil root path, and ``null`` never matches an ``enum``.

Data flow: ``validate_value(node, value, prefix=None)`` -> ``list[StatusCause]``. ``prefix`` is the
field path the errors hang under ("status" for the status subresource, ``...default`` for the
defaults of a CRD schema); None means the object root. ``for_defaults`` validates with the schema
as written (no int-or-string types, no format stripping), as ``ValidateDefaults`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apiserver.validation import too_long
from machinery.errors import StatusCause
from machinery.gofmt import format_float_f, go_float_v, go_json, go_kind, go_number, go_quote, go_sprint

from . import gofmt
from .gofmt import enum_matches, go_deep_equal, is_json_integer
from .formats import format_ok, is_known_format
from .goregex import GoRegexError, compile_go
from .schema import Node

_FLOAT32_MAX = 3.4028234663852886e38
NO_OLD: Any = object()  # no old value correlates with this one (create, or an uncorrelatable item)


# ============================================================================ kube-openapi errors

@dataclass(frozen=True)
class _Err:
    """A kube-openapi error: a ``*errors.Validation`` (``code`` set) or a plain error (``code`` "")."""

    message: str
    code: str = ""
    name: str = ""
    value: Any = None
    valid: Any = None
    values: tuple[Any, ...] = ()


@dataclass
class _Result:
    errors: list[_Err] = field(default_factory=list)
    match_count: int = 0

    def add(self, *errs: _Err | None) -> None:
        for err in errs:
            if err is not None and all(err.message != seen.message for seen in self.errors):
                self.errors.append(err)

    def merge(self, *others: _Result | None) -> _Result:
        for other in others:
            if other is not None:
                self.add(*other.errors)
                self.match_count += other.match_count
        return self

    @property
    def valid(self) -> bool:
        return not self.errors


def _single(err: _Err) -> _Result:
    return _Result([err])


def _invalid_type(path: str, type_name: str, value: Any) -> _Err:
    """errors.InvalidType: strings are quoted into the message ("must be of type integer: \"string\"")."""
    if isinstance(value, str):
        message = f"{path} in body must be of type {type_name}: {go_quote(value)}"
    else:
        message = f"{path} in body must be of type {type_name}"
    return _Err(message, "InvalidType", path, value)


def _v(code: str, path: str, sentence: str, value: Any = None, valid: Any = None) -> _Err:
    return _Err(f"{path} in body {sentence}", code, path, value, valid)


# ============================================================================ numbers

def _num_text(value: Any) -> str:
    value = go_number(value)
    return str(value) if isinstance(value, int) else format_float_f(float(value))


def _range_error(value: Any, type_name: str, fmt: str, prefix: str, path: str) -> _Err | None:
    """IsValueValidAgainstRange: a plain error when the number does not fit the type and format."""
    text = _num_text(value)
    ok = True
    if type_name == "integer":
        bits = 32 if fmt == "int32" else 64
        try:
            ok = -(2 ** (bits - 1)) <= int(text) < 2 ** (bits - 1)
        except ValueError:
            ok = False
    elif fmt in ("float", "float32"):
        ok = abs(float(text)) <= _FLOAT32_MAX
    if ok:
        return None
    if fmt:
        return _Err(f"{prefix} value must be of type {type_name} with format {fmt} in {path}")
    return _Err(f"{prefix} value must be of type {type_name} (default format) in {path}")


def _trunc(f: float) -> int:
    return int(f)  # Go's int64(f) truncates toward zero


def _multiple_of(path: str, value: Any, factor: float, native: bool) -> _Err | None:
    value = go_number(value)
    if native and isinstance(value, int):
        ifactor = _trunc(factor)
        if ifactor <= 0:
            return _Err(f"factor MultipleOf declared for {path} must be positive: {ifactor}",
                        "MultipleOfMustBePositive", path, ifactor)
        if value % ifactor != 0:
            return _v("MultipleOf", path, f"should be a multiple of {ifactor}", value)
        return None
    data = float(value)
    if factor <= 0:
        return _Err(f"factor MultipleOf declared for {path} must be positive: {go_float_v(factor)}",
                    "MultipleOfMustBePositive", path, factor)
    mult = (1 / factor) * data if factor < 1 else data / factor
    if not is_json_integer(mult):
        return _v("MultipleOf", path, f"should be a multiple of {go_float_v(factor)}", value)
    return None


def _bound(path: str, value: Any, limit: float, exclusive: bool, native: bool, *, upper: bool) -> _Err | None:
    value = go_number(value)
    if native and isinstance(value, int):
        bound: int | float = _trunc(limit)
        shown = str(bound)
    else:
        bound = limit
        shown = go_float_v(limit)
    data = value if isinstance(value, int) and native else float(value)
    if upper:
        failed = data >= bound if exclusive else data > bound
        sentence = f"should be less than {shown}" if exclusive else f"should be less than or equal to {shown}"
        return _v("Max", path, sentence, value) if failed else None
    failed = data <= bound if exclusive else data < bound
    sentence = f"should be greater than {shown}" if exclusive else f"should be greater than or equal to {shown}"
    return _v("Min", path, sentence, value) if failed else None


# ============================================================================ the validators

class _Validator:
    def __init__(self, *, for_defaults: bool) -> None:
        self.for_defaults = for_defaults

    def types(self, node: Node) -> tuple[str, ...]:
        return node.raw_types if self.for_defaults else node.types

    def fmt(self, node: Node) -> str:
        return node.raw_format if self.for_defaults else node.format

    def validate(self, node: Node, data: Any, path: str, old: Any = NO_OLD) -> _Result:
        """SchemaValidator.Validate; with an ``old`` value correlated to ``data``, ratcheting applies:
        the errors of a value equal to its old value are dropped (CRDValidationRatcheting)."""
        result = self._validate(node, data, path, old)
        if result.errors and old is not NO_OLD and go_deep_equal(data, old):
            return _Result(match_count=result.match_count)
        return result

    def _validate(self, node: Node, data: Any, path: str, old: Any) -> _Result:
        result = _Result()
        kind = go_kind(data)
        if kind == "nil":
            result.merge(self.type_check(node, None, path), self.enum_check(node, None, path))
            return result
        checks: list[Any] = []
        if self.types(node) or self.fmt(node):
            checks.append(self.type_check)
        checks.append(self.schema_props)
        if kind == "string":
            checks.append(self.string_check)
            if is_known_format(self.fmt(node)) and self.fmt(node):
                checks.append(self.format_check)
        if kind in ("int", "float"):
            checks.append(self.number_check)
        if kind == "slice":
            checks.append(self.slice_check)
        checks.append(self.enum_check)
        if kind == "map":
            checks.append(self.object_check)
        for check in checks:
            takes_old = check in (self.schema_props, self.slice_check, self.object_check)
            result.merge(check(node, data, path, old) if takes_old else check(node, data, path))
            result.match_count += 1
        result.match_count += 1
        return result

    # ------------------------------------------------------------------ type
    def type_check(self, node: Node, data: Any, path: str) -> _Result:
        types, fmt = self.types(node), self.fmt(node)
        result = _Result(match_count=1)
        kind = go_kind(data)
        if kind == "nil":
            if types and "null" not in types and not node.nullable:
                return _single(_invalid_type(path, ",".join(types), "null"))
            return result
        sch_type, data_format = {"bool": ("boolean", ""), "string": ("string", ""), "int": ("integer", "int64"),
                                 "float": ("number", "float64"), "slice": ("array", ""), "map": ("object", "")}[kind]
        is_float_int = sch_type == "number" and is_json_integer(float(data)) and "integer" in types
        is_int_float = sch_type == "integer" and "number" in types
        if kind not in ("string", "slice") and fmt and not (
                sch_type in types or data_format == fmt or is_float_int or is_int_float):
            return _single(_invalid_type(path, fmt, data_format))
        if not ("number" in types or "integer" in types) and fmt and kind in ("string", "slice"):
            return result
        if not (sch_type in types or is_float_int or is_int_float):
            return _single(_invalid_type(path, ",".join(types), sch_type))
        return result

    # ------------------------------------------------------------------ allOf / anyOf / oneOf / not
    def schema_props(self, node: Node, data: Any, path: str, old: Any = NO_OLD) -> _Result:
        main = _Result()
        if node.any_of:
            best: _Result | None = None
            first_success: _Result | None = None
            for branch in node.any_of:
                r = self.validate(branch, data, path, old)
                if r.valid:
                    best, first_success = None, r
                    break
                if best is None or r.match_count > best.match_count:
                    best = r
            if first_success is None:
                main.add(_Err(f'{go_quote(path)} must validate at least one schema (anyOf)'))
            main.merge(best if best is not None else first_success)
        if node.one_of:
            best, first_success, validated = None, None, 0
            for branch in node.one_of:
                r = self.validate(branch, data, path, old)
                if r.valid:
                    validated += 1
                    best = None
                    first_success = first_success or r
                    continue
                if validated == 0 and (best is None or r.match_count > best.match_count):
                    best = r
            if validated != 1:
                more = "Found none valid" if validated == 0 else f"Found {validated} valid alternatives"
                main.add(_Err(f"{go_quote(path)} must validate one and only one schema (oneOf). {more}"))
                main.merge(best)
            else:
                main.merge(first_success)
        if node.all_of:
            validated = 0
            for branch in node.all_of:
                r = self.validate(branch, data, path, old)
                validated += r.valid
                main.merge(r)
            if validated != len(node.all_of):
                more = ". None validated" if validated == 0 else ""
                main.add(_Err(f"{go_quote(path)} must validate all the schemas (allOf){more}"))
        if node.not_ is not None and self._validate(node.not_, data, path, old).valid:
            main.add(_Err(f"{go_quote(path)} must not validate the schema (not)"))
        main.match_count += 1
        return main

    # ------------------------------------------------------------------ strings
    def string_check(self, node: Node, data: str, path: str) -> _Result | None:
        length = len(data)  # kube-openapi counts runes
        if node.max_length is not None and length > node.max_length:
            return _single(_v("TooLong", path, f"should be at most {node.max_length} chars long", data, node.max_length))
        if node.min_length is not None and length < node.min_length:
            return _single(_v("TooShort", path, f"should be at least {node.min_length} chars long", data, node.min_length))
        if node.pattern:
            try:
                matched = compile_go(node.pattern).matches(data)
                shown = node.pattern
            except GoRegexError as err:
                matched, shown = False, f"{node.pattern}, but pattern is invalid: {str(err)}"
            if not matched:
                return _single(_v("Pattern", path, f"should match '{shown}'", data))
        return None

    def format_check(self, node: Node, data: str, path: str) -> _Result | None:
        fmt = self.fmt(node)
        return None if format_ok(fmt, data) else _single(_invalid_type(path, fmt, data))

    # ------------------------------------------------------------------ numbers
    def number_check(self, node: Node, data: Any, path: str) -> _Result:
        types, fmt = self.types(node), self.fmt(node)
        type_name, num_format = "", ""
        if len(types) == 1 and types[0] in ("integer", "number"):
            type_name = types[0]
            allowed = ("int32", "int64") if type_name == "integer" else ("float", "double")
            num_format = fmt if fmt in allowed else ""
        result = _Result()
        result.add(_range_error(data, type_name, num_format, "Checked", path))
        parts = []
        if node.multiple_of is not None:
            part = _Result()
            part.add(_range_error(node.multiple_of, type_name, num_format, "MultipleOf", path))
            part.add(_multiple_of(path, data, node.multiple_of, part.valid))
            parts.append(part)
        for limit, exclusive, upper, prefix in (
                (node.minimum, node.exclusive_minimum, False, "Minimum boundary"),
                (node.maximum, node.exclusive_maximum, True, "Maximum boundary")):
            if limit is not None:
                part = _Result()
                part.add(_range_error(limit, type_name, num_format, prefix, path))
                part.add(_bound(path, data, limit, exclusive, part.valid, upper=upper))
                parts.append(part)
        result.merge(*parts)
        result.match_count += 1
        return result

    # ------------------------------------------------------------------ arrays
    def slice_check(self, node: Node, data: list[Any], path: str, old: Any = NO_OLD) -> _Result:
        result = _Result()
        if node.items is not None:
            for i, item in enumerate(data):
                result.merge(self.validate(node.items, item, f"{path}[{i}]", _correlate_item(node, item, old)))
        size = len(data)
        if node.min_items is not None and size < node.min_items:
            result.add(_v("MinItems", path, f"should have at least {node.min_items} items", size, node.min_items))
        if node.max_items is not None and size > node.max_items:
            result.add(_v("MaxItems", path, f"should have at most {node.max_items} items", size, node.max_items))
        if node.unique_items:
            seen: list[Any] = []
            for item in data:
                if any(go_deep_equal(item, other) for other in seen):
                    result.add(_Err(f"{path} in body shouldn't contain duplicates", "Unique", path))
                    break
                seen.append(item)
        result.match_count += 1
        return result

    # ------------------------------------------------------------------ enum
    def enum_check(self, node: Node, data: Any, path: str) -> _Result | None:
        if not node.enum:
            return None
        if any(enum_matches(data, choice) for choice in node.enum):
            return None
        return _single(_Err(f"{path} in body should be one of {go_sprint(node.enum)}", "Enum", path, data,
                            values=tuple(node.enum)))

    # ------------------------------------------------------------------ objects
    def object_check(self, node: Node, data: dict[str, Any], path: str, old: Any = NO_OLD) -> _Result:
        result = _Result()
        size = len(data)
        if node.min_properties is not None and size < node.min_properties:
            result.add(_v("TooFewProperties", path, f"should have at least {node.min_properties} properties", size))
        if node.max_properties is not None and size > node.max_properties:
            result.add(_v("TooManyProperties", path, f"should have at most {node.max_properties} properties", size,
                          node.max_properties))
        if node.additional_allows is False:
            for key in data:
                if key not in node.properties:
                    result.add(_Err(f"{path}.{key} in body is a forbidden property", "UnallowedProperty", path, key))
        elif node.additional is not None:
            for key, value in data.items():
                if key not in node.properties:
                    result.merge(self.validate(node.additional, value, f"{path}.{key}", _correlate_key(old, key, path)))
        for name, prop in node.properties.items():
            if name in data:
                result.merge(self.validate(prop, data[name], f"{path}.{name}" if path else name,
                                           _correlate_key(old, name, path)))
        for name in node.required:
            if name not in data:
                result.add(_Err(f"{path}.{name} in body is required", "Required", f"{path}.{name}"))
        return result


# ============================================================================ ratcheting

def _correlate_key(old: Any, key: str, path: str) -> Any:
    """CorrelatedObject.Key: the old value of the same field (never apiVersion/kind at the root)."""
    if isinstance(old, dict) and key in old and not (path == "" and key in ("apiVersion", "kind")):
        return old[key]
    return NO_OLD


def _correlate_item(node: Node, item: Any, old: Any) -> Any:
    """CorrelatedObject.Index: only items of an x-kubernetes-list-type=map list correlate, by their keys."""
    if node.list_type != "map" or not node.list_map_keys or not isinstance(old, list) or not isinstance(item, dict):
        return NO_OLD
    key = [(k in item, item.get(k)) for k in node.list_map_keys]
    for candidate in old:
        if isinstance(candidate, dict) and all(
                (k in candidate) == present and go_deep_equal(candidate.get(k), value)
                for k, (present, value) in zip(node.list_map_keys, key)):
            return candidate
    return NO_OLD


# ============================================================================ field errors

def _to_cause(err: _Err, prefix: str | None) -> StatusCause:
    """kubeOpenAPIResultToFieldErrors: one kube-openapi error as apiextensions reports it."""
    if not err.code:
        return gofmt.invalid(prefix if prefix is not None else "<nil>", "", err.message)
    name = err.name.removeprefix(".")
    if prefix is None:
        path = name if name else "<nil>"
    else:
        path = f"{prefix}.{name}" if name and name != "." else prefix
    if err.code == "Required":
        return StatusCause("FieldValueRequired", "Required value", path)
    if err.code == "Enum":
        values = [v if isinstance(v, str) else go_json(v) for v in err.values]
        return gofmt.not_supported(path, err.value, values)
    if err.code == "TooLong":
        return too_long(path, err.valid)
    if err.code in ("MaxItems", "TooManyProperties"):
        return gofmt.too_many(path, err.value, err.valid)
    if err.code == "InvalidType":
        return gofmt.type_invalid(path, "" if err.value is None else err.value, err.message)
    return gofmt.invalid(path, "" if err.value is None else err.value, err.message)


def validate_value(node: Node, value: Any, *, prefix: str | None = None, for_defaults: bool = False,
                   old: Any = NO_OLD) -> list[StatusCause]:
    """Every kube-openapi error of ``value`` against ``node``, as apiextensions' field errors.

    With ``old`` (an update), errors of values equal to their correlated old values are ratcheted away.
    """
    result = _Validator(for_defaults=for_defaults).validate(node, value, "", old)
    return [_to_cause(err, prefix) for err in result.errors]

"""Kubernetes protobuf request bodies -> the JSON-shaped dicts the rest of the apiserver handles.

Role: the real ``kubectl`` sends the bodies of its typed-client commands (``create namespace``,
``create deployment``, ``run``, ``expose``, ...) as ``application/vnd.kubernetes.protobuf`` and
does not retry with JSON. This module reads that format so those commands work; answers stay
JSON (kubectl accepts them).

Data flow: body bytes -> the envelope (``k8s\\x00`` + a ``runtime.Unknown`` message: typeMeta
{apiVersion, kind}, raw, contentEncoding, contentType) -> ``raw`` decoded as the kind's message
with the field tables the kind strategies declare (``Strategy.protobuf_messages`` plus the shared
meta and pod spec tables of ``apiserver/kinds/common``) -> ``{"apiVersion", "kind", ...fields}`` shaped as
the JSON Kubernetes would produce for the same object: zero non-pointer scalars are dropped
(omitempty), the apimachinery types become their JSON forms (Time -> RFC 3339, Quantity ->
string, IntOrString -> int or string), and field numbers the tables do not know are skipped.

The wire reader is a few lines of varint and length-delimited parsing; no descriptors needed.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from functools import cache
from typing import Any, Iterator, NamedTuple

import orjson

from .kinds import builtin, protobuf_messages

PROTOBUF = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_NUMERIC = frozenset({"i", "b"})
_SCALARS = frozenset({"s", "i", "b", "y"})


class ProtobufError(ValueError):
    """The body is not a Kubernetes protobuf envelope, or its bytes are malformed."""


class UnknownKindError(ProtobufError):
    """A well-formed envelope of a kind this apiserver cannot decode (answered with 415)."""


class _Field(NamedTuple):
    name: str  # JSON name; "-" for an inline-embedded message
    type: str  # scalar code, special type or message name
    shape: str  # "" single, "*" list, "{" map
    keep_zero: bool


# --- wire format ----------------------------------------------------------------------------

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated protobuf varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("protobuf varint longer than 10 bytes")


def _wire_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yields (field number, wire type, value) for each field of one message's bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("protobuf field number 0 is invalid")
        value: int | bytes
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _LEN:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ProtobufError(f"protobuf field {number} runs past the end of its message")
            value, pos = buf[pos:pos + size], pos + size
        elif wire in (_FIXED64, _FIXED32):
            width = 8 if wire == _FIXED64 else 4
            if pos + width > len(buf):
                raise ProtobufError(f"protobuf field {number} runs past the end of its message")
            value, pos = int.from_bytes(buf[pos:pos + width], "little"), pos + width
        else:
            raise ProtobufError(f"unsupported protobuf wire type {wire} (field {number})")
        yield number, wire, value


def _signed(value: int) -> int:
    """int32/int64 are sent as two's complement in 64 bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


# --- schema ---------------------------------------------------------------------------------

# Bodies of subresources and options that kubectl sends as protobuf besides the kinds themselves.
_EXTRA_KINDS = ("Scale", "Binding", "DeleteOptions", "Eviction")


@cache
def _messages() -> dict[str, str]:
    return dict(protobuf_messages(builtin()))


@cache
def _decodable_kinds() -> frozenset[str]:
    return frozenset(k for k in (*(s.kind for s in builtin()), *_EXTRA_KINDS) if k in _messages())


@cache
def _schema(message: str) -> dict[int, _Field]:
    """Parses one message table entry into field number -> field."""
    fields: dict[int, _Field] = {}
    for token in _messages()[message].split():
        name, number, code = token.split(":")
        keep = code.endswith("!")
        code = code.rstrip("!")
        shape = code[0] if code[0] in "*{" else ""
        fields[int(number)] = _Field(name, code.strip("*{}"), shape, keep)
    return fields


@cache
def _keeps_zero(message: str) -> frozenset[str]:
    """Fields whose zero value stays: marked ``!``, or not a scalar (Go's JSON never omits a
    struct such as an IntOrString 0 or a Quantity "0"; lists and maps are dropped only when absent)."""
    return frozenset(f.name for f in _schema(message).values()
                     if f.keep_zero or f.shape or f.type not in _SCALARS)


# --- values ---------------------------------------------------------------------------------

def _expect(field: str, wire: int, want: int) -> None:
    if wire != want:
        raise ProtobufError(f"field {field}: wire type {wire} where {want} was expected")


def _string(field: str, wire: int, value: int | bytes) -> str:
    _expect(field, wire, _LEN)
    assert isinstance(value, bytes)
    try:
        return value.decode()
    except UnicodeDecodeError as e:
        raise ProtobufError(f"field {field}: invalid UTF-8 in a string: {e}") from None


def _time(buf: bytes, *, micro: bool) -> str | None:
    seconds = nanos = 0
    for number, wire, value in _wire_fields(buf):
        if number in (1, 2) and wire == _VARINT:
            assert isinstance(value, int)
            if number == 1:
                seconds = _signed(value)
            else:
                nanos = _signed(value)
    if seconds == 0 and nanos == 0:
        return None  # the zero Time: JSON null, dropped like omitempty
    try:
        t = datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError) as e:
        raise ProtobufError(f"time out of range: {seconds}s: {e}") from None
    if micro:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos // 1000:06d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_or_string(buf: bytes) -> int | str:
    kind, int_val, str_val = 0, 0, ""
    for number, wire, value in _wire_fields(buf):
        if number == 1 and wire == _VARINT:
            assert isinstance(value, int)
            kind = value
        elif number == 2 and wire == _VARINT:
            assert isinstance(value, int)
            int_val = _signed(value)
        elif number == 3:
            str_val = _string("IntOrString.strVal", wire, value)
    return str_val if kind == 1 else int_val


def _first_string(buf: bytes, *, field: str) -> str:
    """The string in field 1 of a one-field message (Quantity), "" when absent."""
    out = ""
    for number, wire, value in _wire_fields(buf):
        if number == 1:
            out = _string(field, wire, value)
    return out


def _fields_v1(buf: bytes, type_: str = "FieldsV1") -> Any:
    """A FieldsV1 or runtime.RawExtension: JSON bytes in field 1."""
    for number, wire, value in _wire_fields(buf):
        if number == 1 and wire == _LEN:
            assert isinstance(value, bytes)
            try:
                return orjson.loads(value) if value else None
            except orjson.JSONDecodeError as e:
                raise ProtobufError(f"{type_} is not JSON: {e}") from None
    return None


def _value(field: str, type_: str, wire: int, value: int | bytes) -> Any:
    """One non-repeated value of ``type_`` in its JSON form (None when it is JSON null)."""
    if type_ == "s":
        return _string(field, wire, value)
    if type_ in _NUMERIC:
        _expect(field, wire, _VARINT)
        assert isinstance(value, int)
        return bool(value) if type_ == "b" else _signed(value)
    _expect(field, wire, _LEN)
    assert isinstance(value, bytes)
    if type_ == "y":
        return base64.b64encode(value).decode()
    if type_ in ("Time", "MicroTime"):
        return _time(value, micro=type_ == "MicroTime")
    if type_ == "Quantity":
        return _first_string(value, field=field) or "0"
    if type_ == "IntOrString":
        return _int_or_string(value)
    if type_ in ("FieldsV1", "RawExtension"):
        return _fields_v1(value, type_)
    return _message(value, type_)


def _packed(type_: str, value: bytes) -> list[Any]:
    """A packed repeated varint field (proto3 style), accepted though Kubernetes sends unpacked."""
    out: list[Any] = []
    pos = 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        out.append(bool(v) if type_ == "b" else _signed(v))
    return out


def _map_entry(field: str, type_: str, buf: bytes) -> tuple[str, Any]:
    key, val = "", None
    for number, wire, value in _wire_fields(buf):
        if number == 1:
            key = _string(f"{field} key", wire, value)
        elif number == 2:
            val = _value(f"{field}[{key}]", type_, wire, value)
    if val is None:
        val = _zero(type_)
    return key, val


def _zero(type_: str) -> Any:
    """The JSON value of a map entry whose value was not sent (proto's default)."""
    return {"s": "", "y": "", "i": 0, "b": False, "Quantity": "0", "IntOrString": 0}.get(
        type_, None if type_ in ("Time", "MicroTime", "FieldsV1", "RawExtension") else {})


def _message(buf: bytes, message: str) -> dict[str, Any]:
    """Decodes one message of ``MESSAGES`` into its JSON-shaped dict."""
    schema = _schema(message)
    out: dict[str, Any] = {}
    inline: dict[str, Any] = {}  # already filtered by its own message's rules
    for number, wire, value in _wire_fields(buf):
        f = schema.get(number)
        if f is None:
            continue  # a field newer than our tables: skip it as Kubernetes' decoder would
        where = f"{message}.{f.name}"
        if f.shape == "*":
            items = out.setdefault(f.name, [])
            if wire == _LEN and f.type in _NUMERIC:
                assert isinstance(value, bytes)
                items.extend(_packed(f.type, value))
            else:
                items.append(_value(where, f.type, wire, value))
        elif f.shape == "{":
            _expect(where, wire, _LEN)
            assert isinstance(value, bytes)
            k, v = _map_entry(where, f.type, value)
            out.setdefault(f.name, {})[k] = v
        elif f.name == "-":
            _expect(where, wire, _LEN)
            assert isinstance(value, bytes)
            inline.update(_message(value, f.type))
        else:
            out[f.name] = _value(where, f.type, wire, value)
    keep = _keeps_zero(message)
    return {**{k: v for k, v in out.items() if v is not None and (k in keep or v)}, **inline}


# --- envelope -------------------------------------------------------------------------------

def _envelope(body: bytes) -> tuple[str, str, bytes]:
    """(apiVersion, kind, raw) of the ``runtime.Unknown`` after the magic prefix."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body is not a Kubernetes protobuf object (it lacks the 'k8s\\x00' prefix)")
    api_version = kind = encoding = ""
    raw = b""
    for number, wire, value in _wire_fields(body[len(MAGIC):]):
        if number == 1:
            _expect("Unknown.typeMeta", wire, _LEN)
            assert isinstance(value, bytes)
            for n, w, v in _wire_fields(value):
                if n == 1:
                    api_version = _string("TypeMeta.apiVersion", w, v)
                elif n == 2:
                    kind = _string("TypeMeta.kind", w, v)
        elif number == 2:
            _expect("Unknown.raw", wire, _LEN)
            assert isinstance(value, bytes)
            raw = value
        elif number == 3:
            encoding = _string("Unknown.contentEncoding", wire, value)
    if encoding:
        raise ProtobufError(f"protobuf content encoding {encoding!r} is not supported")
    return api_version, kind, raw


def decode_protobuf(body: bytes, *, expected_kind: str | None = None) -> dict[str, Any]:
    """Decodes a Kubernetes protobuf body into ``{"apiVersion", "kind", ...}``.

    ``expected_kind`` names the kind when the envelope leaves it empty (as the Kubernetes
    decoder falls back to the endpoint's kind); a kind that the envelope does name wins, so a
    mismatch is left to the caller's usual kind checks.
    """
    api_version, kind, raw = _envelope(body)
    kind = kind or expected_kind or ""
    if not kind:
        raise ProtobufError("the protobuf envelope names no kind")
    message = kind if kind in _decodable_kinds() else None
    if message is None:
        supported = ", ".join(sorted(_decodable_kinds()))
        raise UnknownKindError(f"cannot decode a protobuf {kind} ({api_version or 'no apiVersion'}): "
                               f"protobuf bodies are supported for {supported}; send JSON instead")
    head: dict[str, Any] = {"apiVersion": api_version} if api_version else {}
    return {**head, "kind": kind, **_message(raw, message)}

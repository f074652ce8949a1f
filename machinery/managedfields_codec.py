"""managedFields on the wire and conflict errors, after apimachinery's managedfields internals.

Role: the ``metadata.managedFields`` list <-> ``Managers`` (entries by manager identifier, each
with its ``FieldSet``): ``DecodeManagedFields``, ``EncodeObjectManagedFields`` (sorted as
Kubernetes sorts them), ``BuildManagerIdentifier``, ``decodeLiveOrNew`` (which managers a write
starts from, including the ``[]``/``[{}]`` reset), the manager a request without
``fieldManager`` gets from its user agent, and the 409 of a conflicting apply, worded as
Kubernetes words it (``NewConflictError``/``printManager``).

Data flow: a stored object's managedFields -> ``decode_managed_fields`` -> ``machinery.managedfields``
update/apply -> ``set_managed_fields`` on the object to store. Decoding is cached by identity and
by content, and unchanged entries are written back as the very dicts they were read from, so a
write pays only for the entries it changes. Pure.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timezone
from functools import lru_cache
from typing import Any

from machinery.errors import ConflictError, StatusCause
from machinery.fieldpath import FieldPathError, FieldSet, Path, path_string
from machinery.gofmt import go_json, go_quote
from machinery.timefmt import parse_time

APPLY = "Apply"
UPDATE = "Update"
FIELD_MANAGER_MAX_LENGTH = 128


class ManagedFieldsError(ValueError):
    """A managedFields list Kubernetes would not decode."""


# --------------------------------------------------------------------------- entries


def manager_identifier(manager: str, operation: str, api_version: str = "", subresource: str = "") -> str:
    """``BuildManagerIdentifier``: the JSON of the entry without time and fields; an Apply entry
    leaves out its apiVersion, so an applier is one manager whatever version it applies."""
    parts = []
    if manager:
        parts.append('"manager":' + go_json(manager))
    if operation:
        parts.append('"operation":' + go_json(operation))
    if api_version and operation != APPLY:
        parts.append('"apiVersion":' + go_json(api_version))
    if subresource:
        parts.append('"subresource":' + go_json(subresource))
    return "{" + ",".join(parts) + "}"


@dataclass(frozen=True)
class ManagedFieldsEntry:
    """One ``metadata.managedFields[]`` item with its fields decoded."""

    manager: str
    operation: str
    api_version: str
    fields: FieldSet
    time: str | None = None
    subresource: str = ""
    # The fieldsV1 this entry was decoded from; written back as is while ``fields`` is unchanged.
    raw_fields: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    # The whole wire entry it was decoded from; written back as is while nothing changes.
    source: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def applied(self) -> bool:
        return self.operation == APPLY

    @property
    def identifier(self) -> str:
        return manager_identifier(self.manager, self.operation, self.api_version, self.subresource)

    def with_fields(self, fields: FieldSet) -> "ManagedFieldsEntry":
        if fields is self.fields:
            return self
        return replace(self, fields=fields, raw_fields=None, source=None)

    def with_time(self, time: str | None) -> "ManagedFieldsEntry":
        if time == self.time:
            return self
        return replace(self, time=time, source=None)

    def to_dict(self) -> Mapping[str, Any]:
        """The wire form (the decoded dict itself when nothing changed; treat it as read-only)."""
        if self.source is not None:
            return self.source
        out: dict[str, Any] = {}
        if self.manager:
            out["manager"] = self.manager
        out["operation"] = self.operation
        out["apiVersion"] = self.api_version
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        raw = self.raw_fields
        if raw is None:
            raw = self.fields.to_fields_v1()
            _remember_fields(raw, self.fields)
        out["fieldsV1"] = raw
        if self.subresource:
            out["subresource"] = self.subresource
        return out


Managers = dict[str, ManagedFieldsEntry]
"""Entries by manager identifier (``manager_identifier``), as SMD's ``ManagedFields`` map."""

# Decoded field sets, by the identity of their fieldsV1 dict (objects the API server keeps) and by
# content (the same entries decoded again from etcd): a write mostly leaves most entries alone.
_FIELDS_CACHE: dict[int, tuple[Mapping[str, Any], FieldSet]] = {}
_CONTENT_CACHE: OrderedDict[str, FieldSet] = OrderedDict()
_CONTENT_CACHE_BUDGET = 8 << 20  # characters of keys held
_content_cache_size = 0
_CONTENT_LOCK = threading.Lock()
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False).encode


def _remember_fields(raw: Mapping[str, Any], fields: FieldSet) -> None:
    if len(_FIELDS_CACHE) > 4096:
        _FIELDS_CACHE.clear()
    _FIELDS_CACHE[id(raw)] = (raw, fields)  # holding ``raw`` keeps its id from being reused


def _decode_fields(raw: Any) -> FieldSet:
    global _content_cache_size
    if raw is None:
        return FieldSet()
    cached = _FIELDS_CACHE.get(id(raw))
    if cached is not None and cached[0] is raw:
        return cached[1]
    try:
        key = _compact(raw)
    except (TypeError, ValueError):
        key = ""
    with _CONTENT_LOCK:
        fields = _CONTENT_CACHE.get(key) if key else None
        if fields is not None:
            _CONTENT_CACHE.move_to_end(key)
    if fields is None:
        try:
            fields = FieldSet.from_fields_v1(raw)
        except FieldPathError as err:
            raise ManagedFieldsError(f"error decoding set: {err}") from None
        if key and len(key) < _CONTENT_CACHE_BUDGET // 16:
            with _CONTENT_LOCK:
                if key not in _CONTENT_CACHE:
                    _CONTENT_CACHE[key] = fields
                    _content_cache_size += len(key)
                while _content_cache_size > _CONTENT_CACHE_BUDGET:
                    old, _ = _CONTENT_CACHE.popitem(last=False)
                    _content_cache_size -= len(old)
    _remember_fields(raw, fields)
    return fields


_ENTRY_CACHE: dict[int, tuple[Mapping[str, Any], "ManagedFieldsEntry", str]] = {}


def decode_managed_fields(entries: Any) -> Managers:
    """``DecodeManagedFields``: the wire list -> entries by identifier (a later duplicate wins)."""
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise ManagedFieldsError("managedFields must be a list")
    out: Managers = {}
    for i, item in enumerate(entries):
        cached = _ENTRY_CACHE.get(id(item))
        if cached is not None and cached[0] is item:
            out[cached[2]] = cached[1]
            continue
        if not isinstance(item, Mapping):
            raise ManagedFieldsError(f"managed fields entry {i} must be an object")
        operation = item.get("operation")
        if operation not in (APPLY, UPDATE):
            raise ManagedFieldsError("operation must be `Apply` or `Update`")
        api_version = item.get("apiVersion")
        if not api_version or not isinstance(api_version, str):
            raise ManagedFieldsError("apiVersion must not be empty")
        fields_type = item.get("fieldsType")
        if not fields_type:
            raise ManagedFieldsError(f"missing fieldsType in managed fields entry {i}")
        if fields_type != "FieldsV1":
            raise ManagedFieldsError(f"invalid fieldsType {go_quote(str(fields_type))} in managed fields entry {i}")
        raw = item.get("fieldsV1")
        time = _normal_time(item.get("time"))
        entry = ManagedFieldsEntry(
            manager=str(item.get("manager") or ""), operation=operation, api_version=api_version,
            fields=_decode_fields(raw), time=time,
            subresource=str(item.get("subresource") or ""), raw_fields=raw if isinstance(raw, Mapping) else None,
        )
        ident = entry.identifier
        if _normal_form(item, entry):  # written back verbatim only if encoding would not change it
            entry = replace(entry, source=item)
            _remember_entry(item, entry, ident)
        out[ident] = entry
    return out


def _normal_form(item: Mapping[str, Any], entry: "ManagedFieldsEntry") -> bool:
    if not set(item) <= _WIRE_KEYS or not isinstance(item.get("fieldsV1"), dict):
        return False
    if any(k in item and (not isinstance(item[k], str) or not item[k]) for k in ("manager", "time", "subresource")):
        return False
    return item.get("time") == entry.time or ("time" not in item and entry.time is None)


_WIRE_KEYS = frozenset({"manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource"})


def _remember_entry(item: Mapping[str, Any], entry: "ManagedFieldsEntry", ident: str) -> None:
    if len(_ENTRY_CACHE) > 4096:
        _ENTRY_CACHE.clear()
    _ENTRY_CACHE[id(item)] = (item, entry, ident)  # holding ``item`` keeps its id from being reused


def _normal_time(time: Any) -> str | None:
    """A ``metav1.Time`` as Kubernetes writes it back: RFC 3339, whole seconds, UTC."""
    return _normal_time_text(time) if isinstance(time, str) and time else None


@lru_cache(maxsize=4096)
def _normal_time_text(time: str) -> str:
    moment = parse_time(time)
    if moment is None:
        return time
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=4096)
def _unix_seconds(time: str | None) -> int:
    moment = parse_time(time) if time else None
    return int(moment.timestamp()) if moment is not None else 0


def _entry_order(entry: ManagedFieldsEntry) -> tuple[Any, ...]:
    return (entry.operation, _unix_seconds(entry.time), entry.manager, entry.api_version, entry.subresource)


def encode_managed_fields(managers: Mapping[str, ManagedFieldsEntry]) -> list[Mapping[str, Any]] | None:
    """The wire list, sorted as Kubernetes sorts it (Apply before Update, then by time, manager,
    apiVersion, subresource); None when nobody owns anything (the field is then dropped).
    Entries that did not change are the decoded dicts themselves: copy before mutating."""
    entries = [e for e in managers.values() if not e.fields.empty()]
    if not entries:
        return None
    entries.sort(key=_entry_order)
    out = []
    for entry in entries:
        wire = entry.to_dict()
        if entry.source is None:  # the next decode of the stored object finds it ready
            _remember_entry(wire, replace(entry, source=wire, raw_fields=wire["fieldsV1"]), entry.identifier)
        out.append(wire)
    return out


def set_managed_fields(obj: Mapping[str, Any], managers: Mapping[str, ManagedFieldsEntry]) -> dict[str, Any]:
    """A copy of ``obj`` (top level and metadata copied, the rest shared) with its managedFields
    set to ``managers``, or removed when there are none. Unchanged entries are shared with the
    object they were decoded from, which is fine for objects that are never mutated."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    encoded = encode_managed_fields(managers)
    if encoded is None:
        meta.pop("managedFields", None)
    else:
        meta["managedFields"] = encoded
    out["metadata"] = meta
    return out


def _metadata(obj: Any) -> Mapping[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def _is_reset(entries: Any) -> bool:
    """An empty list, or one entry with nothing in it, resets managedFields (isResetManagedFields)."""
    if not isinstance(entries, list):
        return False
    if not entries:
        return True
    return len(entries) == 1 and isinstance(entries[0], Mapping) and all(v in ("", None) for v in entries[0].values())


def _decode_or_empty(entries: Any) -> Managers:
    try:
        return decode_managed_fields(entries)
    except ManagedFieldsError:
        return {}


def managers_for_update(live: Any, new: Any, *, subresource: str = "") -> Managers:
    """``decodeLiveOrNew``: the managers an update starts from. A client may replace managedFields
    through the main resource (``[]`` or ``[{}]`` resets them); anything it cannot decode, or a
    subresource write, keeps the live object's."""
    live_entries = _metadata(live).get("managedFields")
    if subresource:
        return _decode_or_empty(live_entries)
    new_entries = _metadata(new).get("managedFields")
    if _is_reset(new_entries):
        return {}
    try:
        found = decode_managed_fields(new_entries)
    except ManagedFieldsError:
        found = {}
    return found or _decode_or_empty(live_entries)


def manager_from_user_agent(user_agent: str | None) -> str:
    """``prefixFromUserAgent``: the user agent up to its first '/', printable characters only,
    at most 128 bytes: "kubectl/v1.32.4 (linux/amd64) kubernetes/..." -> "kubectl"."""
    out: list[str] = []
    size = 0
    for ch in (user_agent or "").split("/", 1)[0]:
        if not ch.isprintable():
            continue
        width = len(ch.encode("utf-8", "surrogatepass"))
        if size + width > FIELD_MANAGER_MAX_LENGTH:
            break
        out.append(ch)
        size += width
    return "".join(out)


# --------------------------------------------------------------------------- conflicts


@dataclass(frozen=True)
class Conflict:
    """One field another manager owns: SMD's ``merge.Conflict`` (``manager`` is an identifier)."""

    manager: str
    path: Path

    def __str__(self) -> str:
        return f"conflict with {print_manager(self.manager)}: {path_string(self.path)}"


def print_manager(identifier: str) -> str:
    """``printManager``: ``"kubectl-scale" with subresource "scale" using apps/v1``."""
    try:
        entry = json.loads(identifier)
        if not isinstance(entry, dict):
            raise ValueError(identifier)
        manager = entry.get("manager", "")
        subresource = entry.get("subresource", "")
        api_version = entry.get("apiVersion", "")
        time = entry.get("time")
        if not all(isinstance(v, str) for v in (manager, subresource, api_version)):
            raise ValueError(identifier)
        moment = parse_time(time) if time is not None else None
        if time is not None and moment is None:
            raise ValueError(identifier)
    except ValueError:
        return go_quote(identifier)
    text = go_quote(manager)
    if subresource:
        text += f" with subresource {go_quote(subresource)}"
    if entry.get("operation") == UPDATE:
        if moment is None:
            return f"{text} using {api_version}"
        return f"{text} using {api_version} at {moment.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}"
    return text


def conflict_message(conflicts: Sequence[Conflict]) -> str:
    """``getConflictMessage``: the message of the 409 an apply with conflicts gets."""
    if len(conflicts) == 1:
        c = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {print_manager(c.manager)}: {path_string(c.path)}"
    by_manager: dict[str, list[Path]] = {}
    for c in conflicts:
        by_manager.setdefault(c.manager, []).append(c.path)
    lines = []
    for manager in sorted(by_manager):
        lines.append(f"conflicts with {print_manager(manager)}:")
        lines.extend(f"- {path_string(p)}" for p in by_manager[manager])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


class ApplyConflictError(ConflictError):
    """409 Conflict with one ``FieldManagerConflict`` cause per conflicting field."""

    def __init__(self, conflicts: Sequence[Conflict]) -> None:
        causes = [StatusCause(reason="FieldManagerConflict", message=f"conflict with {print_manager(c.manager)}",
                              field=path_string(c.path)) for c in conflicts]
        super().__init__(message=conflict_message(conflicts), causes=causes)
        self.conflicts = list(conflicts)

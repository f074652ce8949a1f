"""Secret (core/v1): small confidential data, base64 in ``data``, at most 1 MiB.

After pkg/registry/core/secret and ``ValidateSecret``:

- ``stringData`` is a write-only convenience: on every write its values are base64-encoded into
  ``data`` (overriding keys of the same name) and the field itself is never stored;
- ``type`` defaults to ``Opaque`` and is immutable; the well-known types require their keys
  (``kubernetes.io/tls``: ``tls.crt`` and ``tls.key``, ``kubernetes.io/basic-auth``: a username or
  a password, ``kubernetes.io/dockerconfigjson``: valid JSON in ``.dockerconfigjson``, ...);
- ``immutable: true`` freezes ``data`` and itself, as for ConfigMaps.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...validation.fielderrors import Causes, Obj, each, get_bool, get_str, get_str_map, invalid, key, required, too_long
from ...validation.formats import config_map_key_errors
from ..base import AGE, NAME, Column, Strategy, age, name_of
from .configmap import immutable_data_causes

MAX_SECRET_SIZE = 1024 * 1024
FIELD_IMMUTABLE = "field is immutable"
SERVICE_ACCOUNT_NAME_KEY = "kubernetes.io/service-account.name"
_REDACTED = "<secret contents redacted>"
# type -> the data keys it needs (all of them, or any one of them for basic-auth)
_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}
_JSON_KEYS = {"kubernetes.io/dockercfg": ".dockercfg", "kubernetes.io/dockerconfigjson": ".dockerconfigjson"}


class SecretStrategy(Strategy):
    kind = "Secret"
    plural = "secrets"
    singular = "secret"
    model = "V1Secret"
    selectable_fields = ("type",)
    columns = (
        NAME,
        Column("Type", description="Used to facilitate programmatic handling of secret data."),
        Column("Data", description="Data contains the secret data."),
        AGE,
    )
    protobuf_messages = {
        "Secret": "metadata:1:ObjectMeta immutable:5:b! data:2:{y} stringData:4:{s} type:3:s",
    }

    def defaults(self, obj: Obj) -> None:
        if obj.get("type") in (None, ""):
            obj["type"] = "Opaque"
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict) and string_data:
            data = obj.get("data")
            if data is None:
                data = obj["data"] = {}
            if isinstance(data, dict):
                for name, value in string_data.items():
                    if isinstance(value, str):
                        data[name] = base64.b64encode(value.encode()).decode()
        elif string_data is not None and not isinstance(string_data, dict):
            obj["stringData"] = string_data  # leave the wrong type for validation to report

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        if "stringData" in obj:
            get_str_map(obj, "stringData", "", causes)
        raw = get_str_map(obj, "data", "", causes)
        data: dict[str, bytes] = {}
        total = 0
        for name, value in raw.items():
            causes.extend(each(key("data", name), name, config_map_key_errors(name)))
            try:
                data[name] = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as exc:
                causes.append(invalid(key("data", name), _REDACTED, f"must be base64-encoded: {exc}"))
                continue
            total += len(data[name])
        if total > MAX_SECRET_SIZE:
            causes.append(too_long("data", MAX_SECRET_SIZE))
        get_bool(obj, "immutable", "", causes)
        causes.extend(_type_causes(get_str(obj, "type", "", causes), obj, data))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        causes: Causes = []
        if new.get("type") != old.get("type"):
            causes.append(invalid("type", new.get("type"), FIELD_IMMUTABLE))
        return causes + immutable_data_causes(new, old, fields=("data",))

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return [name_of(obj), obj.get("type") or "Opaque", len(obj.get("data") or {}), age(obj, now)]


def _type_causes(secret_type: str, obj: Obj, data: dict[str, bytes]) -> Causes:
    """The keys each well-known Secret type must carry (Kubernetes' ValidateSecret switch)."""
    if secret_type == "kubernetes.io/service-account-token":
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not (isinstance(annotations, dict) and annotations.get(SERVICE_ACCOUNT_NAME_KEY)):
            return [required(key("metadata.annotations", SERVICE_ACCOUNT_NAME_KEY))]
        return []
    if secret_type in _JSON_KEYS:
        name = _JSON_KEYS[secret_type]
        if name not in data:
            return [required(key("data", name))]
        try:
            parsed = json.loads(data[name])
        except ValueError as exc:
            return [invalid(key("data", name), _REDACTED, str(exc))]
        return [] if isinstance(parsed, dict) else [invalid(key("data", name), _REDACTED, "must be a JSON object")]
    if secret_type == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            return [required(key("data", "username")), required(key("data", "password"))]
        return []
    if secret_type == "kubernetes.io/ssh-auth":
        return [] if data.get("ssh-privatekey") else [required(key("data", "ssh-privatekey"))]
    return [required(key("data", name)) for name in _REQUIRED_KEYS.get(secret_type, ()) if name not in data]


STRATEGY = SecretStrategy()

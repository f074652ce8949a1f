"""ConfigMap (core/v1): configuration data, ``data`` and ``binaryData`` together at most 1 MiB.

An ``immutable: true`` ConfigMap keeps its data and its immutability for good.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...validation.fielderrors import Causes, Obj, each, forbidden, get_bool, get_str_map, invalid, key, too_long
from ...validation.formats import config_map_key_errors
from ..base import AGE, NAME, Column, Strategy, age, name_of

CONFIGMAP_MAX_SIZE = 1024 * 1024


class ConfigMapStrategy(Strategy):
    kind = "ConfigMap"
    plural = "configmaps"
    singular = "configmap"
    short_names = ("cm",)
    model = "V1ConfigMap"
    columns = (NAME, Column("Data", description="Data contains the configuration data."), AGE)
    protobuf_messages = {"ConfigMap": "metadata:1:ObjectMeta immutable:4:b! data:2:{s} binaryData:3:{y}"}

    def validate(self, obj: Obj) -> Causes:
        return _validate_config_map(obj)

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        return immutable_data_causes(new, old, fields=("data", "binaryData"))

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        size = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
        return [name_of(obj), size, age(obj, now)]


def immutable_data_causes(new: Obj, old: Obj, *, fields: tuple[str, ...]) -> Causes:
    """Once ``immutable`` is true, it and the data fields may never change (ConfigMaps, Secrets)."""
    if old.get("immutable") is not True:
        return []
    causes: Causes = []
    if new.get("immutable") is not True:
        causes.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    for name in fields:
        if (new.get(name) or {}) != (old.get(name) or {}):
            causes.append(forbidden(name, "field is immutable when `immutable` is set"))
    return causes


def _validate_config_map(obj: Obj) -> Causes:
    causes: Causes = []
    data = get_str_map(obj, "data", "", causes)
    size = 0
    for data_key, value in data.items():
        causes.extend(each(key("data", data_key), data_key, config_map_key_errors(data_key)))
        size += len(value.encode())
    for data_key, value in get_str_map(obj, "binaryData", "", causes).items():
        path = key("binaryData", data_key)
        causes.extend(each(path, data_key, config_map_key_errors(data_key)))
        try:
            size += len(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            causes.append(invalid(path, value, "must be base64-encoded"))
        if data_key in data:
            causes.append(invalid(path, data_key, "duplicate key in both data and binaryData"))
    if size > CONFIGMAP_MAX_SIZE:
        causes.append(too_long("", CONFIGMAP_MAX_SIZE))
    get_bool(obj, "immutable", "", causes)
    return causes



STRATEGY = ConfigMapStrategy()

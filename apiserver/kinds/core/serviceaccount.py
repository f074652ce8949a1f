"""ServiceAccount (core/v1): an identity for processes that run in pods.

After pkg/registry/core/serviceaccount: ``secrets`` (merged by name) and ``imagePullSecrets``
name Secrets of the same namespace; ``kubectl get serviceaccounts`` shows how many secrets each
lists. No tokens are issued for them: minik8s has no authentication, so the TokenRequest
subresource is not served and no token Secrets are created.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...openapi.facts import Facts, keyed
from ...validation.fielderrors import Causes, Obj, child, each, get_bool, get_maps, get_str
from ...validation.formats import dns1123_subdomain_errors
from ..base import AGE, NAME, Column, Strategy, age, name_of


class ServiceAccountStrategy(Strategy):
    kind = "ServiceAccount"
    plural = "serviceaccounts"
    singular = "serviceaccount"
    short_names = ("sa",)
    model = "V1ServiceAccount"
    columns = (NAME, Column("Secrets", type="string", description="Secrets is a list of the secrets in the same "
                            "namespace that pods running using this ServiceAccount are allowed to use."), AGE)
    type_facts = {"V1ServiceAccount": {"secrets": keyed("name"), "imagePullSecrets": Facts(list_type="atomic")}}
    protobuf_messages = {
        "ServiceAccount": (
            "metadata:1:ObjectMeta secrets:2:*ObjectReference imagePullSecrets:3:*LocalObjectReference "
            "automountServiceAccountToken:4:b!"),
    }

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        for list_name in ("secrets", "imagePullSecrets"):
            for item_path, item in get_maps(obj, list_name, "", causes):
                name = get_str(item, "name", item_path, causes)
                if name:
                    causes.extend(each(child(item_path, "name"), name, dns1123_subdomain_errors(name)))
        get_bool(obj, "automountServiceAccountToken", "", causes)
        return causes

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return [name_of(obj), len(obj.get("secrets") or []), age(obj, now)]


STRATEGY = ServiceAccountStrategy()

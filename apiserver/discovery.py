"""Discovery documents, built from the resource table on every request (it changes with CRDs).

``/api``, ``/apis``, ``/api/v1``, ``/apis/{group}/{version}`` tell clients which resources exist
(kubectl's RESTMapper and short names come from here), with their verbs, subresources, short
names and categories. The OpenAPI documents are ``apiserver/openapi``'s.
"""

from __future__ import annotations

import re
from typing import Any


from . import metricsapi
from .resources import ResourceTable

KUBE_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-minik8s", "gitCommit": "minik8s",
                "gitTreeState": "clean", "buildDate": "2026-11-26T00:00:00Z", "goVersion": "python3",
                "compiler": "cpython", "platform": "linux/amd64"}

_SUB_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"],
              "ephemeralcontainers": ["get", "patch", "update"],
              "binding": ["create"], "eviction": ["create"], "log": ["get"], "finalize": ["update"],
              "exec": ["create", "get"], "attach": ["create", "get"], "portforward": ["create", "get"],
              "proxy": ["create", "delete", "get", "patch", "update"]}
# The connect subresources' kinds: their options objects (PodExecOptions, ServiceProxyOptions, ...).
_CONNECT_KINDS = {"exec": "ExecOptions", "attach": "AttachOptions", "portforward": "PortForwardOptions",
                  "proxy": "ProxyOptions"}


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' version order (smaller sorts first): GA, then beta, then alpha, newest first;
    names that are not Kubernetes-like versions last, alphabetically (``CompareKubeAwareVersionStrings``)."""
    m = _KUBE_VERSION.match(version)
    if m is None:
        return (3, 0, 0, version)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    return ({None: 0, "beta": 1, "alpha": 2}[stage], -major, -minor, "")


def api_group_list(table: ResourceTable) -> dict[str, Any]:
    versions: dict[str, list[str]] = {}
    for gv in table.group_versions():
        if "/" not in gv:
            continue
        group, version = gv.split("/")
        versions.setdefault(group, []).append(version)
    groups = []
    for group, names in versions.items():
        listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in sorted(names, key=version_priority)]
        groups.append({"name": group, "versions": listed, "preferredVersion": listed[0]})
    groups.append(metricsapi.discovery_group())  # served by apiserver/metricsapi.py, not by a strategy
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(table: ResourceTable, group: str) -> dict[str, Any] | None:
    for g in api_group_list(table)["groups"]:
        if g["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **g}
    return None


def api_resource_list(table: ResourceTable, group_version: str) -> dict[str, Any] | None:
    if group_version == metricsapi.GROUP_VERSION:
        return metricsapi.resource_list()
    resources = table.group_versions().get(group_version)
    if resources is None:
        return None
    out: list[dict[str, Any]] = []
    for r in resources:
        entry: dict[str, Any] = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                                 "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        out.append(entry)
        for sub in r.subresources:
            sub_entry: dict[str, Any] = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                                         "kind": r.kind, "verbs": _SUB_VERBS.get(sub, ["get"])}
            if sub == "scale":
                sub_entry.update(kind="Scale", group="autoscaling", version="v1")
            elif sub == "binding":
                sub_entry["kind"] = "Binding"
            elif sub == "eviction":
                sub_entry.update(kind="Eviction", group="policy", version="v1")
            elif sub == "log":
                sub_entry["kind"] = "Pod"
            elif sub in _CONNECT_KINDS:
                sub_entry["kind"] = r.kind + _CONNECT_KINDS[sub]
            out.append(sub_entry)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": out}

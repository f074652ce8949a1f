"""Discovery and OpenAPI documents, built once from the resource table.

``/api``, ``/apis``, ``/api/v1``, ``/apis/{group}/{version}`` tell clients which resources exist
(kubectl's RESTMapper and short names come from here). ``/openapi/v3`` lists one document per
group-version; each document names every path with its verbs, the query parameters it takes
(``fieldValidation`` among them, which is how kubectl decides to validate server-side) and
the object schemas, derived from the official client's generated models.

The schemas deliberately carry no ``x-kubernetes-group-version-kind``: kubectl then computes
``apply`` patches from its own compiled-in types (exact merge keys), not from a schema that
would have to repeat every patch strategy.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

import orjson

from .resources import Resource, ResourceTable

KUBE_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-minik8s", "gitCommit": "minik8s",
                "gitTreeState": "clean", "buildDate": "2026-11-26T00:00:00Z", "goVersion": "python3",
                "compiler": "cpython", "platform": "linux/amd64"}

_SUB_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"],
              "binding": ["create"], "log": ["get"], "finalize": ["update"]}


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group_list(table: ResourceTable) -> dict[str, Any]:
    groups = []
    for gv in table.group_versions():
        if "/" not in gv:
            continue
        group, version = gv.split("/")
        ver = {"groupVersion": gv, "version": version}
        groups.append({"name": group, "versions": [ver], "preferredVersion": ver})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(table: ResourceTable, group: str) -> dict[str, Any] | None:
    for g in api_group_list(table)["groups"]:
        if g["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **g}
    return None


def api_resource_list(table: ResourceTable, group_version: str) -> dict[str, Any] | None:
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
            elif sub == "log":
                sub_entry["kind"] = "Pod"
            out.append(sub_entry)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": out}


# ---------------------------------------------------------------------------- OpenAPI v3
def _gv_path(gv: str) -> str:
    return f"api/{gv}" if "/" not in gv else f"apis/{gv}"


@functools.lru_cache(maxsize=None)
def openapi_v3_document(table: ResourceTable, gv: str) -> bytes | None:
    resources = table.group_versions().get(gv)
    if resources is None:
        return None
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for r in resources:
        paths.update(_paths(r, schemas))
    doc = {"openapi": "3.0.0", "info": {"title": "minik8s", "version": KUBE_VERSION["gitVersion"]},
           "paths": paths, "components": {"schemas": schemas}}
    return orjson.dumps(doc)


def openapi_v3_index(table: ResourceTable) -> dict[str, Any]:
    paths = {}
    for gv in table.group_versions():
        doc = openapi_v3_document(table, gv) or b""
        digest = hashlib.sha512(doc).hexdigest()[:32].upper()
        paths[_gv_path(gv)] = {"serverRelativeURL": f"/openapi/v3/{_gv_path(gv)}?hash={digest}"}
    return {"paths": paths}


def openapi_v3_by_path(table: ResourceTable, path: str) -> bytes | None:
    path = path.strip("/")
    for gv in table.group_versions():
        if _gv_path(gv) == path:
            return openapi_v3_document(table, gv)
    return None


def _param(name: str, where: str = "query", *, schema: dict[str, Any] | None = None, required: bool = False,
           description: str = "") -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "schema": schema or {"type": "string"}, "description": description}
    if required or where == "path":
        p["required"] = True
    return p


_NAME_RE = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_WRITE_PARAMS = [
    _param("dryRun", description="When present, indicates that modifications should not be persisted (All)."),
    _param("fieldManager"),
    _param("fieldValidation", schema={"type": "string", "enum": ["Ignore", "Warn", "Strict"]},
           description="How the server treats unknown or duplicate fields: Ignore, Warn or Strict."),
    _param("pretty"),
]
_LIST_PARAMS = [
    _param("labelSelector"), _param("fieldSelector"), _param("limit", schema={"type": "integer", "minimum": 0}),
    _param("continue"), _param("resourceVersion"), _param("timeoutSeconds", schema={"type": "integer", "minimum": 0}),
    _param("watch", schema={"type": "boolean"}), _param("allowWatchBookmarks", schema={"type": "boolean"}),
    _param("pretty"),
]
_DELETE_PARAMS = [
    _param("dryRun"), _param("gracePeriodSeconds", schema={"type": "integer", "minimum": 0}),
    _param("propagationPolicy", schema={"type": "string", "enum": ["Orphan", "Background", "Foreground"]}),
    _param("pretty"),
]


def _ok(ref: str | None) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{ref}"} if ref else {"type": "object"}
    return {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
            "201": {"description": "Created", "content": {"application/json": {"schema": schema}}},
            "401": {"description": "Unauthorized"}}


def _body(ref: str, *, patch: bool = False) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{ref}"}
    types = (["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"]
             if patch else ["application/json"])
    if patch:
        return {"required": True, "content": {t: {"schema": {"type": "object"} if "json-patch" not in t else
                                                   {"type": "array", "items": {"type": "object"}}} for t in types}}
    return {"required": True, "content": {t: {"schema": schema} for t in types}}


def _op(r: Resource, action: str, op_id: str, params: list[dict[str, Any]], *, ref: str | None,
        body: dict[str, Any] | None = None, kind: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "parameters": params, "responses": _ok(ref),
                          "x-kubernetes-action": action,
                          "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": kind or r.kind}}
    if body is not None:
        op["requestBody"] = body
    return op


def _paths(r: Resource, schemas: dict[str, Any]) -> dict[str, Any]:
    ref = _schema_ref(r.model or "", schemas)
    base = f"/{_gv_path(r.api_version)}"
    ns = [_param("namespace", "path", schema={"type": "string", "pattern": _NAME_RE})] if r.namespaced else []
    name = [_param("name", "path", schema={"type": "string", "pattern": _NAME_RE})]
    coll = f"{base}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{base}/{r.plural}"
    ident = r.kind
    paths: dict[str, Any] = {
        coll: {
            "get": _op(r, "list", f"list{ident}", ns + _LIST_PARAMS, ref=None),
            "post": _op(r, "post", f"create{ident}", ns + _WRITE_PARAMS, ref=ref, body=_body(ref)),
            "delete": _op(r, "deletecollection", f"deleteCollection{ident}", ns + _LIST_PARAMS[:2] + _DELETE_PARAMS, ref=None),
        },
        f"{coll}/{{name}}": {
            "get": _op(r, "get", f"read{ident}", ns + name, ref=ref),
            "put": _op(r, "put", f"replace{ident}", ns + name + _WRITE_PARAMS, ref=ref, body=_body(ref)),
            "patch": _op(r, "patch", f"patch{ident}", ns + name + _WRITE_PARAMS, ref=ref, body=_body(ref, patch=True)),
            "delete": _op(r, "delete", f"delete{ident}", ns + name + _DELETE_PARAMS, ref=None),
        },
    }
    if r.namespaced:
        paths[f"{base}/{r.plural}"] = {"get": _op(r, "list", f"list{ident}ForAllNamespaces", _LIST_PARAMS, ref=None)}
    for sub in r.subresources:
        if sub in ("status", "scale"):
            sub_ref = ref if sub == "status" else _schema_ref("V1Scale", schemas)
            kind = "Scale" if sub == "scale" else None
            paths[f"{coll}/{{name}}/{sub}"] = {
                "get": _op(r, "get", f"read{ident}{sub.title()}", ns + name, ref=sub_ref, kind=kind),
                "put": _op(r, "put", f"replace{ident}{sub.title()}", ns + name + _WRITE_PARAMS, ref=sub_ref,
                           body=_body(sub_ref), kind=kind),
                "patch": _op(r, "patch", f"patch{ident}{sub.title()}", ns + name + _WRITE_PARAMS, ref=sub_ref,
                             body=_body(sub_ref, patch=True), kind=kind),
            }
    return paths


_LIST_T = re.compile(r"^list\[(.+)\]$", re.I)
_DICT_T = re.compile(r"^dict\((?:str), (.+)\)$|^dict\[str, (.+)\]$", re.I)


def _schema_ref(model: str, schemas: dict[str, Any]) -> str:
    """Register the JSON schema of a generated model (and what it refers to); return its name."""
    if model in schemas:
        return model
    import kubernetes.client.models as models

    cls = getattr(models, model, None)
    schemas[model] = {"type": "object"}
    if cls is None:
        return model
    props: dict[str, Any] = {}
    for attr, typ in cls.openapi_types.items():
        props[cls.attribute_map[attr]] = _type_schema(typ, schemas)
    schemas[model] = {"type": "object", "properties": props}
    return model


def _type_schema(typ: str, schemas: dict[str, Any]) -> dict[str, Any]:
    typ = typ.strip()
    if m := _LIST_T.match(typ):
        return {"type": "array", "items": _type_schema(m.group(1), schemas)}
    if m := _DICT_T.match(typ):
        return {"type": "object", "additionalProperties": _type_schema(m.group(1) or m.group(2), schemas)}
    simple = {"str": {"type": "string"}, "int": {"type": "integer"}, "float": {"type": "number"},
              "bool": {"type": "boolean"}, "datetime": {"type": "string", "format": "date-time"},
              "object": {}}
    if typ.lower() in simple:
        return dict(simple[typ.lower()])
    return {"$ref": f"#/components/schemas/{_schema_ref(typ, schemas)}"}

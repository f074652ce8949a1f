"""Paths and operations of a served kind, as Kubernetes publishes them in OpenAPI v3.

Data flow: a kind descriptor (``names.KindLike``) plus the component names of its schemas ->
``{path: PathItem}``: list/create/deletecollection on the collection, get/replace/patch/delete on
the item, list across namespaces, and the subresources the kind serves (status, scale,
ephemeralcontainers, resize, binding, eviction, finalize, log, and the connect verbs exec,
attach, portforward, proxy). Each operation carries Kubernetes' operationId
(``patchAppsV1NamespacedDeployment``), ``x-kubernetes-action`` and a single
``x-kubernetes-group-version-kind``; PATCH bodies list strategic-merge-patch only when the kind
takes it (kubectl then computes apply patches from the schema; custom resources get a JSON
merge patch). Write operations take ``fieldValidation``, which is how kubectl decides to leave
validation to the server.

The deprecated ``/watch/`` paths are not published: the server does not serve them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import names
from .components import ref
from .names import KindLike

JSON = "application/json"
# What the response bodies are published as (the server speaks JSON; kubectl reads none of these).
RESPONSE_TYPES: tuple[str, ...] = (JSON,)
WATCH_TYPES: tuple[str, ...] = ("application/json;stream=watch",)
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")
STRATEGIC = "application/strategic-merge-patch+json"

Op = dict[str, Any]
PathItem = dict[str, Any]


def _query(name: str, kind: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description,
            "schema": {"type": kind, "uniqueItems": True}}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "uniqueItems": True}}


P: dict[str, dict[str, Any]] = {p["name"]: p for p in [
    _query("pretty", "string", "If 'true', then the output is pretty printed."),
    _query("dryRun", "string", "When present, indicates that modifications should not be persisted. Valid "
           "values are: - All: all dry run stages will be processed"),
    _query("fieldManager", "string", "fieldManager is a name associated with the actor or entity that is "
           "making these changes. It must be less than or equal to 128 characters long and only contain "
           "printable characters. Required for apply requests (application/apply-patch)."),
    _query("fieldValidation", "string", "fieldValidation instructs the server on how to handle objects in "
           "the request containing unknown or duplicate fields. Valid values are: - Ignore: drop unknown "
           "fields silently - Warn: drop them and send a warning for each (the default) - Strict: fail the "
           "request with a BadRequest error naming every unknown and duplicate field."),
    _query("force", "boolean", "Force is going to \"force\" Apply requests: the user re-acquires "
           "conflicting fields owned by other people. Must be unset for non-apply patch requests."),
    _query("labelSelector", "string", "A selector to restrict the list of returned objects by their "
           "labels. Defaults to everything."),
    _query("fieldSelector", "string", "A selector to restrict the list of returned objects by their "
           "fields. Defaults to everything."),
    _query("limit", "integer", "limit is a maximum number of responses to return for a list call. If "
           "more items exist, the server sets the `continue` field on the list metadata."),
    _query("continue", "string", "The continue option should be set when retrieving more results from "
           "the server: the value the previous list returned in metadata.continue."),
    _query("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a "
           "request may be served from. Defaults to unset."),
    _query("resourceVersionMatch", "string", "resourceVersionMatch determines how resourceVersion is "
           "applied to list calls (Exact or NotOlderThan). Defaults to unset."),
    _query("sendInitialEvents", "boolean", "`sendInitialEvents=true` may be set together with "
           "`watch=true`: the watch stream then begins with synthetic events for the current objects."),
    _query("timeoutSeconds", "integer", "Timeout for the list/watch call. This limits the duration of the "
           "call, regardless of any activity or inactivity."),
    _query("watch", "boolean", "Watch for changes to the described resources and return them as a stream "
           "of add, update, and remove notifications. Specify resourceVersion."),
    _query("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type "
           "\"BOOKMARK\". Servers may send them at their discretion."),
    _query("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted. "
           "Value must be non-negative integer. The value zero indicates delete immediately."),
    _query("orphanDependents", "boolean", "Deprecated: please use the PropagationPolicy. Should the "
           "dependent objects be orphaned."),
    _query("propagationPolicy", "string", "Whether and how garbage collection will be performed: "
           "'Orphan', 'Background' or 'Foreground'."),
    _query("ignoreStoreReadErrorWithClusterBreakingPotential", "boolean", "if set to true, it will "
           "trigger an unsafe deletion of the resource in case the normal deletion flow fails with a "
           "corrupt object error."),
    _query("container", "string", "The container for which to stream logs (or to run in). Defaults to "
           "only container if there is one container in the pod."),
    _query("follow", "boolean", "Follow the log stream of the pod. Defaults to false."),
    _query("insecureSkipTLSVerifyBackend", "boolean", "insecureSkipTLSVerifyBackend indicates that the "
           "apiserver should not confirm the validity of the serving certificate of the backend."),
    _query("limitBytes", "integer", "If set, the number of bytes to read from the server before "
           "terminating the log output."),
    _query("previous", "boolean", "Return previous terminated container logs. Defaults to false."),
    _query("sinceSeconds", "integer", "A relative time in seconds before the current time from which to "
           "show logs."),
    _query("tailLines", "integer", "If set, the number of lines from the end of the logs to show."),
    _query("timestamps", "boolean", "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning "
           "of every line of log output. Defaults to false."),
    _query("command", "string", "Command is the remote command to execute. argv array."),
    _query("stdin", "boolean", "Redirect the standard input stream of the pod for this call."),
    _query("stdout", "boolean", "Redirect the standard output stream of the pod for this call."),
    _query("stderr", "boolean", "Redirect the standard error stream of the pod for this call."),
    _query("tty", "boolean", "TTY if true indicates that a tty will be allocated for the call."),
    _query("ports", "integer", "List of ports to forward."),
    _query("path", "string", "Path is the URL path to use for the current proxy request."),
]}
LIST_PARAMS = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
               "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
PATCH_PARAMS = (*WRITE_PARAMS, "force")
DELETE_PARAMS = ("dryRun", "gracePeriodSeconds", "ignoreStoreReadErrorWithClusterBreakingPotential",
                 "orphanDependents", "propagationPolicy")
DELETECOLLECTION_PARAMS = ("continue", "dryRun", "fieldSelector", "gracePeriodSeconds",
                           "ignoreStoreReadErrorWithClusterBreakingPotential", "labelSelector", "limit",
                           "orphanDependents", "propagationPolicy", "resourceVersion", "resourceVersionMatch",
                           "sendInitialEvents", "timeoutSeconds")
LOG_PARAMS = ("container", "follow", "insecureSkipTLSVerifyBackend", "limitBytes", "previous", "sinceSeconds",
              "tailLines", "timestamps")
CONNECT_PARAMS = {"exec": ("command", "container", "stderr", "stdin", "stdout", "tty"),
                  "attach": ("container", "stderr", "stdin", "stdout", "tty"),
                  "portforward": ("ports",), "proxy": ("path",)}
CONNECT_OPTIONS = {"exec": "ExecOptions", "attach": "AttachOptions", "portforward": "PortForwardOptions",
                   "proxy": "ProxyOptions"}
CONNECT_METHODS = {"exec": ("get", "post"), "attach": ("get", "post"), "portforward": ("get", "post"),
                   "proxy": ("get", "put", "post", "delete", "options", "head", "patch")}
_STATUS_TEXT = {"200": "OK", "201": "Created", "202": "Accepted", "401": "Unauthorized"}


def params(*names_: str) -> list[dict[str, Any]]:
    return [P[n] for n in names_]


def responses(schema: Mapping[str, Any], codes: Sequence[str] = ("200",), *,
              types: Sequence[str] = RESPONSE_TYPES) -> dict[str, Any]:
    out: dict[str, Any] = {code: {"description": _STATUS_TEXT[code],
                                  "content": {t: {"schema": dict(schema)} for t in types}} for code in codes}
    out["401"] = {"description": "Unauthorized"}
    return out


def body(schema: Mapping[str, Any], *, required: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"content": {"*/*": {"schema": dict(schema)}}}
    if required:
        out["required"] = True
    return out


def patch_body(strategic: bool) -> dict[str, Any]:
    types = [t for t in PATCH_TYPES if strategic or t != STRATEGIC]
    return {"content": {t: {"schema": ref(names.PATCH)} for t in types}, "required": True}


class _KindOps:
    """Builds the operations of one kind; keeps the naming pieces together."""

    def __init__(self, kind: KindLike, kind_name: str, list_name: str) -> None:
        self.k = kind
        self.kind_ref = ref(kind_name)
        self.list_ref = ref(list_name)
        self.prefix = names.op_prefix(kind.group, kind.version)
        self.scope = "Namespaced" if kind.namespaced else ""
        self.tag = names.tag(kind.group, kind.version)
        self.gvk = names.gvk(kind.group, kind.version, kind.kind)

    def op(self, verb: str, action: str, description: str, *, suffix: str = "", scope: str | None = None,
           parameters: Sequence[dict[str, Any]] = (), resp: dict[str, Any], request: dict[str, Any] | None = None,
           gvk: dict[str, str] | None = None, op_id: str | None = None) -> Op:
        scope = self.scope if scope is None else scope
        out: Op = {"description": description,
                   "operationId": op_id or f"{verb}{self.prefix}{scope}{self.k.kind}{suffix}",
                   "responses": resp, "tags": [self.tag], "x-kubernetes-action": action,
                   "x-kubernetes-group-version-kind": dict(gvk or self.gvk)}
        if parameters:
            out["parameters"] = list(parameters)
        if request is not None:
            out["requestBody"] = request
        return out


def kind_paths(kind: KindLike, *, kind_name: str, list_name: str,
               subresource_names: Mapping[str, str]) -> dict[str, PathItem]:
    """``{path: PathItem}`` for one served kind (``subresource_names``: scale/binding/eviction bodies)."""
    o = _KindOps(kind, kind_name, list_name)
    k, verbs = kind, set(kind.verbs)
    base = "/" + names.gv_path(k.group, k.version)
    ns = [_path_param("namespace", "object name and auth scope, such as for teams and projects")] \
        if k.namespaced else []
    name = [_path_param("name", f"name of the {k.kind}")]
    coll = f"{base}/namespaces/{{namespace}}/{k.plural}" if k.namespaced else f"{base}/{k.plural}"
    item = f"{coll}/{{name}}"
    out: dict[str, PathItem] = {}

    collection: PathItem = {}
    if "list" in verbs:
        collection["get"] = o.op("list", "list", f"list or watch objects of kind {k.kind}",
                                 parameters=params(*LIST_PARAMS),
                                 resp=responses(o.list_ref, types=(*RESPONSE_TYPES, *WATCH_TYPES)))
    if "create" in verbs:
        collection["post"] = o.op("create", "post", f"create a {k.kind}", parameters=params(*WRITE_PARAMS),
                                  request=body(o.kind_ref), resp=responses(o.kind_ref, ("200", "201", "202")))
    if "deletecollection" in verbs:
        collection["delete"] = o.op("delete", "deletecollection", f"delete collection of {k.kind}",
                                    op_id=f"delete{o.prefix}Collection{o.scope}{k.kind}",
                                    parameters=params(*DELETECOLLECTION_PARAMS),
                                    request=body(ref(names.DELETE_OPTIONS), required=False),
                                    resp=responses(ref(names.STATUS)))
    if collection:
        out[coll] = {**collection, "parameters": [*ns, P["pretty"]]}

    single: PathItem = {}
    if "get" in verbs:
        single["get"] = o.op("read", "get", f"read the specified {k.kind}", resp=responses(o.kind_ref))
    if "update" in verbs:
        single["put"] = o.op("replace", "put", f"replace the specified {k.kind}", parameters=params(*WRITE_PARAMS),
                             request=body(o.kind_ref), resp=responses(o.kind_ref, ("200", "201")))
    if "patch" in verbs:
        single["patch"] = o.op("patch", "patch", f"partially update the specified {k.kind}",
                               parameters=params(*PATCH_PARAMS), request=patch_body(k.strategic_merge),
                               resp=responses(o.kind_ref, ("200", "201")))
    if "delete" in verbs:
        single["delete"] = o.op("delete", "delete", f"delete a {k.kind}", parameters=params(*DELETE_PARAMS),
                                request=body(ref(names.DELETE_OPTIONS), required=False),
                                resp=responses(ref(names.STATUS), ("200", "202")))
    if single:
        out[item] = {**single, "parameters": [*name, *ns, P["pretty"]]}

    if k.namespaced and "list" in verbs:
        out[f"{base}/{k.plural}"] = {
            "get": o.op("list", "list", f"list or watch objects of kind {k.kind}", scope="",
                        suffix="ForAllNamespaces", parameters=params(*LIST_PARAMS),
                        resp=responses(o.list_ref, types=(*RESPONSE_TYPES, *WATCH_TYPES))),
            "parameters": [P["pretty"]]}

    item_params = [*name, *ns]
    for sub in k.subresources:
        path_item = _subresource(o, sub, subresource_names, item_params)
        if path_item is not None:
            out[f"{item}/{sub}"] = path_item
    return out


def _subresource(o: _KindOps, sub: str, subresource_names: Mapping[str, str],
                 item_params: list[dict[str, Any]]) -> PathItem | None:
    k = o.k
    suffix = sub[:1].upper() + sub[1:]
    if sub in ("status", "scale", "ephemeralcontainers", "resize"):
        target = ref(subresource_names["scale"]) if sub == "scale" else o.kind_ref
        gvk = names.gvk("autoscaling", "v1", "Scale") if sub == "scale" else None
        what = f"{sub} of the specified {k.kind}"
        return {
            "get": o.op("read", "get", f"read {what}", suffix=suffix, gvk=gvk, resp=responses(target)),
            "put": o.op("replace", "put", f"replace {what}", suffix=suffix, gvk=gvk,
                        parameters=params(*WRITE_PARAMS), request=body(target),
                        resp=responses(target, ("200", "201"))),
            "patch": o.op("patch", "patch", f"partially update {what}", suffix=suffix, gvk=gvk,
                          parameters=params(*PATCH_PARAMS), request=patch_body(k.strategic_merge),
                          resp=responses(target, ("200", "201"))),
            "parameters": [*item_params, P["pretty"]]}
    if sub in ("binding", "eviction"):
        target = ref(subresource_names[sub])
        gvk = names.gvk("", "v1", "Binding") if sub == "binding" else names.gvk("policy", "v1", "Eviction")
        return {"post": o.op("create", "post", f"create {sub} of a {k.kind}", suffix=suffix, gvk=gvk,
                             request=body(target), resp=responses(target, ("200", "201", "202"))),
                "parameters": [*params(*WRITE_PARAMS), *item_params, P["pretty"]]}
    if sub == "finalize":
        return {"put": o.op("replace", "put", f"replace finalize of the specified {k.kind}", suffix=suffix,
                            request=body(o.kind_ref), resp=responses(o.kind_ref, ("200", "201"))),
                "parameters": [*params(*WRITE_PARAMS), *item_params, P["pretty"]]}
    if sub == "log":
        return {"get": o.op("read", "get", f"read log of the specified {k.kind}", suffix=suffix,
                            resp=responses({"type": "string"}, types=("text/plain",))),
                "parameters": [*params(*LOG_PARAMS), *item_params, P["pretty"]]}
    if sub in CONNECT_OPTIONS:
        gvk = names.gvk(k.group, k.version, k.kind + CONNECT_OPTIONS[sub])
        item: PathItem = {
            method: o.op(f"connect{o.prefix}{method.capitalize()}", "connect",
                         f"connect {method.upper()} requests to {sub} of {k.kind}", gvk=gvk, suffix=suffix,
                         op_id=f"connect{o.prefix}{method.capitalize()}{o.scope}{k.kind}{suffix}",
                         resp=responses({"type": "string"}, types=("*/*",)))
            for method in CONNECT_METHODS[sub]}
        item["parameters"] = [*params(*CONNECT_PARAMS[sub]), *item_params]
        return item
    return None


def group_version_root(group: str, version: str) -> dict[str, PathItem]:
    """``/apis/apps/v1/``: the group version's APIResourceList (``getAppsV1APIResources``)."""
    return {f"/{names.gv_path(group, version)}/": {"get": {
        "description": "get available resources", "operationId": f"get{names.op_prefix(group, version)}APIResources",
        "responses": responses(ref(names.API_RESOURCE_LIST)), "tags": [names.tag(group, version)]}}}

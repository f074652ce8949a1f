"""A request's authorization attributes: Kubernetes' RequestInfoFactory (k8s.io/apiserver endpoints/request).

Data flow: (user, HTTP method, path, query) -> ``Attributes``: a resource request
(``/api/v1/...``, ``/apis/GROUP/VERSION/...``) gets its verb (get, list, watch, create, update,
patch, delete, deletecollection), API group and version, namespace, resource, subresource and name;
anything else is a non-resource request whose verb is the lower-case method. Pure: the middleware,
the authorizers, SubjectAccessReviews and the audit log all read the same ``Attributes``.

Kubernetes' rules kept here: ``?watch=1|true`` and the legacy ``/watch/`` prefix make ``watch``;
GET/HEAD of a collection is ``list``, DELETE of one ``deletecollection``; a list or watch with
``fieldSelector=metadata.name=X`` names ``X``; ``/api/v1/namespaces/NAME`` is resource
``namespaces`` with namespace and name NAME; ``pods/exec|attach|portforward`` need ``create``
whatever the method (a WebSocket upgrade is a GET; Kubernetes checks ``create`` for it since 1.31).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from machinery.userinfo import UserInfo

_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_CREATE_ONLY_SUBRESOURCES = {("pods", "exec"), ("pods", "attach"), ("pods", "portforward")}


@dataclass(frozen=True)
class Attributes:
    user: UserInfo
    verb: str
    resource_request: bool
    path: str
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    @property
    def resource_and_sub(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def request_attributes(user: UserInfo, method: str, path: str, query: Mapping[str, str]) -> Attributes:
    method = method.upper()
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return Attributes(user=user, verb=method.lower(), resource_request=False, path=path)
    if not rest:  # /api/v1, /apis/apps/v1: discovery documents
        return Attributes(user=user, verb=method.lower(), resource_request=False, path=path)
    verb = _METHOD_VERBS.get(method, method.lower())
    if rest[0] == "watch":
        verb, rest = "watch", rest[1:]
        if not rest:
            return Attributes(user=user, verb=method.lower(), resource_request=False, path=path)
    namespace = ""
    if rest[0] == "namespaces":
        if len(rest) > 1:
            namespace = rest[1]
            if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
                rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if not name:
        if verb == "get":
            verb = "list"
        elif verb == "delete":
            verb = "deletecollection"
    if verb in ("list", "get") and query.get("watch", "").lower() in ("1", "true"):
        verb = "watch"
    if verb in ("list", "watch") and not name:
        for selector in (query.get("fieldSelector") or "").split(","):
            key, eq, value = selector.partition("=")
            if eq and key.strip() == "metadata.name" and not value.startswith("="):
                name = value.strip()
    if (resource, subresource) in _CREATE_ONLY_SUBRESOURCES:
        verb = "create"
    return Attributes(user=user, verb=verb, resource_request=True, path=path, api_group=group, api_version=version,
                      namespace=namespace, resource=resource, subresource=subresource, name=name)

"""IngressClass (networking.k8s.io/v1, cluster-scoped): which controller serves an Ingress.

After pkg/apis/networking/validation (``ValidateIngressClass``) and the v1 defaults:
``spec.controller`` is required, a domain-prefixed path (``acme.io/ingress``) of at most 250
characters, and immutable; ``spec.parameters`` names a kind and a name (path segments) with an
optional API group (a DNS subdomain) and a ``scope`` (defaulted to ``Cluster``; ``Namespace``
needs ``namespace``, ``Cluster`` forbids it). ``kubectl get ingressclasses`` shows the controller
and ``KIND[.GROUP]/NAME`` of the parameters.

``default_class_name`` is the DefaultIngressClass admission's choice (the class annotated
``ingressclass.kubernetes.io/is-default-class: "true"``, the newest when several are), for
whoever can read the stored classes when an Ingress without a class is created.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ...validation.fielderrors import (Causes, Obj, child, each, forbidden, get_opt_map, get_str, invalid,
                                       not_supported, required, too_long)
from ...validation.formats import dns1123_label_errors, dns1123_subdomain_errors, path_segment_errors, regex_error
from ..base import AGE, NAME, Column, Strategy, age, name_of, spec

DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
MAX_CONTROLLER_LENGTH = 250
SCOPES = ("Cluster", "Namespace")
_HTTP_PATH_FMT = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+"
_HTTP_PATH_RE = re.compile(_HTTP_PATH_FMT)


class IngressClassStrategy(Strategy):
    group = "networking.k8s.io"
    kind = "IngressClass"
    plural = "ingressclasses"
    singular = "ingressclass"
    namespaced = False
    model = "V1IngressClass"
    columns = (
        NAME,
        Column("Controller", description="Controller that is responsible for handling this class"),
        Column("Parameters", description="A reference to a resource with additional parameters"),
        AGE,
    )
    # Go's field numbers (k8s.io/api/networking/v1/generated.proto).
    protobuf_messages = {
        "IngressClass": "metadata:1:ObjectMeta spec:2:IngressClassSpec",
        "IngressClassSpec": "controller:1:s! parameters:2:IngressClassParametersReference",
        "IngressClassParametersReference": "apiGroup:1:s kind:2:s! name:3:s! scope:4:s namespace:5:s",
    }

    def defaults(self, obj: Obj) -> None:
        params = (obj.get("spec") or {}).get("parameters") if isinstance(obj.get("spec"), dict) else None
        if isinstance(params, dict) and params.get("scope") is None:
            params["scope"] = "Cluster"

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        class_spec = get_opt_map(obj, "spec", "", causes) or {}
        controller = get_str(class_spec, "controller", "spec", causes)
        if len(controller) > MAX_CONTROLLER_LENGTH:
            causes.append(too_long("spec.controller", MAX_CONTROLLER_LENGTH))
        causes += domain_prefixed_path_errors("spec.controller", controller)
        params = get_opt_map(class_spec, "parameters", "spec", causes)
        if params is not None:
            causes += _validate_parameters(params, "spec.parameters")
        return causes

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        before, after = spec(old).get("controller"), spec(new).get("controller")
        if before != after:
            return [invalid("spec.controller", after, "field is immutable")]
        return []

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return [name_of(obj), spec(obj).get("controller") or "", format_parameters(spec(obj).get("parameters")),
                age(obj, now)]


def domain_prefixed_path_errors(path: str, value: str) -> Causes:
    """IsDomainPrefixedPath: ``DNS-subdomain/http-path``."""
    if not value:
        return [required(path)]
    host, slash, rest = value.partition("/")
    if not slash or not host or not rest:
        return [invalid(path, value, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    causes = each(path, host, dns1123_subdomain_errors(host))
    if not _HTTP_PATH_RE.fullmatch(rest):
        causes.append(invalid(path, rest, regex_error("Invalid path", _HTTP_PATH_FMT)))
    return causes


def _validate_parameters(params: Obj, path: str) -> Causes:
    causes: Causes = []
    api_group = params.get("apiGroup")
    if isinstance(api_group, str):
        causes += each(child(path, "apiGroup"), api_group, dns1123_subdomain_errors(api_group))
    for name in ("kind", "name"):
        value = get_str(params, name, path, causes)
        if not value:
            causes.append(required(child(path, name), f"{name} is required"))
        else:
            causes += each(child(path, name), value, path_segment_errors(value))
    scope = params.get("scope")
    if scope is None:
        causes.append(required(child(path, "scope")))
        return causes
    namespace = params.get("namespace")
    if scope not in SCOPES:
        causes.append(not_supported(child(path, "scope"), scope, SCOPES))
    elif scope == "Namespace":
        if namespace is None:
            causes.append(required(child(path, "namespace"), "`parameters.scope` is set to 'Namespace'"))
        else:
            causes += each(child(path, "namespace"), namespace, dns1123_label_errors(str(namespace)))
    elif namespace is not None:
        causes.append(forbidden(child(path, "namespace"), "`parameters.scope` is set to 'Cluster'"))
    return causes


def format_parameters(params: Any) -> str:
    """printIngressClass: ``KIND[.APIGROUP]/NAME``, ``<none>`` without parameters."""
    if not isinstance(params, Mapping):
        return "<none>"
    text = str(params.get("kind") or "")
    if params.get("apiGroup") is not None:
        text += "." + str(params["apiGroup"])
    return f"{text}/{params.get('name') or ''}"


def is_default(ingress_class: Mapping[str, Any]) -> bool:
    annotations = (ingress_class.get("metadata") or {}).get("annotations") or {}
    return annotations.get(DEFAULT_CLASS_ANNOTATION) == "true"


def default_class_name(classes: Iterable[Mapping[str, Any]]) -> str | None:
    """The class a new Ingress without one gets: the default class, the newest of several
    (Kubernetes >= 1.28; ties by name); None when no class is marked default."""
    defaults = [c for c in classes if is_default(c)]
    if not defaults:
        return None
    newest = max(defaults, key=lambda c: (str((c.get("metadata") or {}).get("creationTimestamp") or ""),
                                          name_of(c)))
    return name_of(newest) or None


STRATEGY = IngressClassStrategy()

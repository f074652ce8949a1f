"""Ingresses + IngressClasses + Service ports -> the route table of ``minik8s ingress`` (pure).

Data flow: the informers' Ingresses and IngressClasses, and ``servicemap.service_ports`` of the
Services and EndpointSlices -> ``build_routes`` -> a ``RouteTable`` -> ``RouteTable.match(host,
path)`` -> the ``Backend`` (a Service port and its usable endpoints) or None (404).

Which Ingresses are ours (``is_ours``), as ingress-nginx decides it: ``spec.ingressClassName``
names an IngressClass whose ``spec.controller`` is ours (or, while that class does not exist, is
our class name); or no class name and the legacy annotation ``kubernetes.io/ingress.class`` is our
class name; or neither, and one of our classes is annotated
``ingressclass.kubernetes.io/is-default-class: "true"``.

Matching (Kubernetes' Ingress semantics; where they leave room, the choice is written here):
- the host comes from the ``Host`` header, lower-cased, without port or trailing dot;
- hosts are tried from the most specific: rules whose ``host`` is exactly the request's, then
  wildcard rules (``*.example.com`` matches exactly one more label: ``a.example.com``, not
  ``example.com`` nor ``a.b.example.com``), then rules without a host (they match every host).
  Within one of these groups the longest matching path wins, ``Exact`` before ``Prefix`` at equal
  length; when no path of the group matches, the ``defaultBackend`` of the oldest Ingress naming
  that host applies, else the next group is tried;
- ``Exact`` compares the whole path (case-sensitive, ``/foo`` is not ``/foo/``); ``Prefix``
  compares ``/``-separated elements (``/foo`` matches ``/foo``, ``/foo/`` and ``/foo/bar``, not
  ``/foobar``; a trailing slash of the rule is ignored); ``ImplementationSpecific`` is ``Prefix``
  (an empty path is ``/``);
- when nothing matched: the ``defaultBackend`` of the oldest of our Ingresses that has one; else
  None (404);
- several Ingresses may name the same host: their paths are merged, and for the same path and
  type the oldest Ingress (creationTimestamp, then namespace/name) wins.

A backend is ``service.name`` + ``port.number`` or ``port.name`` in the Ingress's namespace: the
Service port with that number or that name; its endpoints are ``ServicePort.usable_endpoints()``
(the ready ones). A Service or port that does not exist, and ``resource`` backends, give a
backend without endpoints (503).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from traffic.servicemap import ServicePort

Obj = Mapping[str, Any]

CONTROLLER = "minik8s.io/ingress"
DEFAULT_CLASS_NAME = "minik8s"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def is_default_class(ingress_class: Obj) -> bool:
    return (_meta(ingress_class).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"


def is_ours(ingress: Obj, classes: Mapping[str, Obj], *, class_name: str = DEFAULT_CLASS_NAME,
            controller: str = CONTROLLER) -> bool:
    """Whether this controller serves ``ingress``; ``classes`` by name."""
    wanted = _spec(ingress).get("ingressClassName")
    if wanted:
        found = classes.get(wanted)
        if found is None:
            return bool(wanted == class_name)
        return bool(_spec(found).get("controller") == controller)
    legacy = (_meta(ingress).get("annotations") or {}).get(LEGACY_CLASS_ANNOTATION)
    if legacy:
        return bool(legacy == class_name)
    return any(_spec(c).get("controller") == controller and is_default_class(c) for c in classes.values())


# ---------------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Backend:
    """Where a matched request goes: one port of one Service and its usable endpoints."""

    namespace: str
    service: str
    port: int | str  # the Ingress's port.number or port.name
    endpoints: tuple[tuple[str, int], ...] = ()
    found: bool = True  # False: no such Service port (or not a Service backend)
    ingress: str = ""  # namespace/name of the Ingress it came from

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.service}:{self.port}"


@dataclass(frozen=True)
class PathRule:
    path: str  # Prefix: without its trailing slash ("" for "/"); Exact: as written
    exact: bool
    backend: Backend

    def matches(self, request_path: str) -> bool:
        if self.exact:
            return request_path == self.path
        return not self.path or request_path == self.path or request_path.startswith(self.path + "/")

    @property
    def order(self) -> tuple[int, int]:
        return (-len(self.path), 0 if self.exact else 1)


@dataclass
class HostRoutes:
    """The paths of one host (or of every host), longest first, and its default backend."""

    paths: list[PathRule] = field(default_factory=list)
    default: Backend | None = None

    def match(self, path: str) -> Backend | None:
        for rule in self.paths:
            if rule.matches(path):
                return rule.backend
        return self.default


@dataclass
class RouteTable:
    exact: dict[str, HostRoutes] = field(default_factory=dict)
    wildcard: dict[str, HostRoutes] = field(default_factory=dict)  # "example.com" for "*.example.com"
    any_host: HostRoutes = field(default_factory=HostRoutes)
    default: Backend | None = None
    ours: list[tuple[str, str]] = field(default_factory=list)  # (namespace, name) of our Ingresses

    def match(self, host: str, path: str) -> Backend | None:
        """The backend of a request for ``host`` (a Host header) and ``path`` (no query); None: 404."""
        name = normalize_host(host)
        groups = [self.exact.get(name)]
        _, dot, parent = name.partition(".")
        if dot and parent and not name.startswith("."):
            groups.append(self.wildcard.get(parent))
        groups.append(self.any_host)
        for group in groups:
            if group is not None:
                found = group.match(path or "/")
                if found is not None:
                    return found
        return self.default

    def backends(self) -> list[Backend]:
        groups = [*self.exact.values(), *self.wildcard.values(), self.any_host]
        out = [r.backend for g in groups for r in g.paths] + [g.default for g in groups if g.default]
        return out + ([self.default] if self.default else [])


def normalize_host(host: str) -> str:
    """``Example.COM:8080`` -> ``example.com``; ``[::1]:80`` -> ``[::1]``."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[:end + 1] if end >= 0 else host
    return host.rsplit(":", 1)[0].rstrip(".") if host.count(":") <= 1 else host


def _age_key(ingress: Obj) -> tuple[str, str, str]:
    meta = _meta(ingress)
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _resolve(backend: Obj, namespace: str, ports: Mapping[tuple[str, str], list[ServicePort]],
             ingress: str) -> Backend:
    service = backend.get("service") or {}
    port = service.get("port") or {}
    name = str(service.get("name") or "")
    wanted: int | str = port.get("number") or port.get("name") or ""
    if not name or not wanted:
        return Backend(namespace, name or "<resource>", wanted or 0, found=False, ingress=ingress)
    for sp in ports.get((namespace, name), []):
        if sp.protocol != "TCP":
            continue
        if (isinstance(wanted, int) and sp.port == wanted) or (isinstance(wanted, str) and sp.port_name == wanted):
            endpoints = tuple((e.ip, e.port) for e in sp.usable_endpoints())
            return Backend(namespace, name, wanted, endpoints, found=True, ingress=ingress)
    return Backend(namespace, name, wanted, found=False, ingress=ingress)


def _path_rule(item: Obj, backend: Backend) -> PathRule | None:
    path_type = item.get("pathType") or "ImplementationSpecific"
    path = str(item.get("path") or "")
    if path_type == "Exact":
        return PathRule(path or "/", True, backend)
    if path_type in ("Prefix", "ImplementationSpecific"):
        return PathRule(path.rstrip("/"), False, backend)
    return None


def build_routes(ingresses: Iterable[Obj], classes: Iterable[Obj], ports: Iterable[ServicePort], *,
                 class_name: str = DEFAULT_CLASS_NAME, controller: str = CONTROLLER) -> RouteTable:
    """The route table of every Ingress of ours (see the module docstring)."""
    by_class = {str(_meta(c).get("name") or ""): c for c in classes}
    by_service: dict[tuple[str, str], list[ServicePort]] = {}
    for sp in ports:
        by_service.setdefault((sp.namespace, sp.service), []).append(sp)
    table = RouteTable()
    seen: dict[int, set[tuple[str, bool]]] = {}
    for ing in sorted(ingresses, key=_age_key):
        if _meta(ing).get("deletionTimestamp") or not is_ours(ing, by_class, class_name=class_name,
                                                                 controller=controller):
            continue
        namespace = str(_meta(ing).get("namespace") or "default")
        ing_name = f"{namespace}/{_meta(ing).get('name') or ''}"
        table.ours.append((namespace, str(_meta(ing).get("name") or "")))
        spec = _spec(ing)
        default = (_resolve(spec["defaultBackend"], namespace, by_service, ing_name)
                   if isinstance(spec.get("defaultBackend"), Mapping) else None)
        if default is not None and table.default is None:
            table.default = default
        for rule in spec.get("rules") or []:
            host = str(rule.get("host") or "").lower()
            if not host:
                group = table.any_host
            elif host.startswith("*."):
                group = table.wildcard.setdefault(host[2:], HostRoutes())
            else:
                group = table.exact.setdefault(host, HostRoutes())
            if host and group.default is None:
                group.default = default
            taken = seen.setdefault(id(group), set())
            for item in (rule.get("http") or {}).get("paths") or []:
                backend_spec = item.get("backend") or {}
                path_rule = _path_rule(item, _resolve(backend_spec, namespace, by_service, ing_name))
                if path_rule is None or (path_rule.path, path_rule.exact) in taken:
                    continue
                taken.add((path_rule.path, path_rule.exact))
                group.paths.append(path_rule)
    for group in [*table.exact.values(), *table.wildcard.values(), table.any_host]:
        group.paths.sort(key=lambda r: r.order)
    return table


__all__ = ["Backend", "CONTROLLER", "DEFAULT_CLASS_ANNOTATION", "DEFAULT_CLASS_NAME", "HostRoutes",
           "LEGACY_CLASS_ANNOTATION", "PathRule", "RouteTable", "build_routes", "is_default_class", "is_ours",
           "normalize_host"]

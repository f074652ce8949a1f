"""traffic.ingress.routes: which Ingresses are ours, host and path matching, backends (pure tables)."""

from __future__ import annotations

from typing import Any

import pytest

from traffic.ingress.routes import build_routes, is_ours, normalize_host
from traffic.servicemap import Endpoint, ServicePort

OUR_CLASS = {"metadata": {"name": "minik8s", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
             "spec": {"controller": "minik8s.io/ingress"}}
OTHER_CLASS = {"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}


def port(service: str, number: int = 80, name: str = "", ips: tuple[str, ...] = ("10.0.0.1",),
         namespace: str = "ns", ready: bool = True) -> ServicePort:
    return ServicePort(namespace=namespace, service=service, port_name=name, protocol="TCP", port=number,
                       endpoints=tuple(Endpoint(ip=ip, port=8080, ready=ready) for ip in ips))


def backend(service: str, number: int | None = 80, name: str | None = None) -> dict[str, Any]:
    return {"service": {"name": service, "port": {"number": number} if name is None else {"name": name}}}


def path(p: str, service: str, path_type: str = "Prefix") -> dict[str, Any]:
    return {"path": p, "pathType": path_type, "backend": backend(service)}


def ingress(name: str = "ing", *, rules: list[dict[str, Any]] | None = None, default: str | None = None,
            class_name: str | None = "minik8s", created: str = "2024-01-01T00:00:00Z",
            annotations: dict[str, str] | None = None, namespace: str = "ns") -> dict[str, Any]:
    spec: dict[str, Any] = {"rules": rules or []}
    if class_name is not None:
        spec["ingressClassName"] = class_name
    if default:
        spec["defaultBackend"] = backend(default)
    return {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": created,
                         "annotations": annotations or {}}, "spec": spec}


def rule(host: str | None, *paths: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"http": {"paths": list(paths)}}
    if host:
        out["host"] = host
    return out


SERVICES = ["a", "b", "c", "d", "e", "root", "exact", "wild", "any", "fallback"]
PORTS = [port(s) for s in SERVICES]


def route(ingresses: list[dict[str, Any]], host: str, p: str, classes: list[Any] | None = None) -> str | None:
    table = build_routes(ingresses, [OUR_CLASS, OTHER_CLASS] if classes is None else classes, PORTS)
    found = table.match(host, p)
    return found.service if found else None


# ---------------------------------------------------------------------------------- ours or not
@pytest.mark.parametrize("ing,classes,expected", [
    (ingress(class_name="minik8s"), [OUR_CLASS], True),
    (ingress(class_name="nginx"), [OUR_CLASS, OTHER_CLASS], False),
    (ingress(class_name="mine"), [{"metadata": {"name": "mine"}, "spec": {"controller": "minik8s.io/ingress"}}], True),
    # our class name before the class exists (the controller creates it at start)
    (ingress(class_name="minik8s"), [], True),
    (ingress(class_name="unknown"), [OUR_CLASS], False),
    # a user pointed our class name at another controller
    (ingress(class_name="minik8s"), [{"metadata": {"name": "minik8s"}, "spec": {"controller": "x.io/y"}}], False),
    (ingress(class_name=None), [OUR_CLASS], True),
    (ingress(class_name=None), [{**OUR_CLASS, "metadata": {"name": "minik8s"}}], False),
    (ingress(class_name=None), [], False),
    (ingress(class_name=None, annotations={"kubernetes.io/ingress.class": "minik8s"}), [], True),
    (ingress(class_name=None, annotations={"kubernetes.io/ingress.class": "nginx"}), [OUR_CLASS], False),
])
def test_which_ingresses_are_ours(ing: dict[str, Any], classes: list[dict[str, Any]], expected: bool) -> None:
    assert is_ours(ing, {c["metadata"]["name"]: c for c in classes}) is expected


def test_ingresses_of_other_classes_are_not_routed() -> None:
    ings = [ingress(class_name="nginx", rules=[rule("x.test", path("/", "a"))])]
    assert route(ings, "x.test", "/") is None
    assert build_routes(ings, [OUR_CLASS, OTHER_CLASS], PORTS).ours == []


# ---------------------------------------------------------------------------------- paths
@pytest.mark.parametrize("path_type,rule_path,request_path,matches", [
    ("Prefix", "/", "/anything", True),
    ("Prefix", "/", "/", True),
    ("Prefix", "/foo", "/foo", True),
    ("Prefix", "/foo", "/foo/", True),
    ("Prefix", "/foo", "/foo/bar", True),
    ("Prefix", "/foo", "/foobar", False),
    ("Prefix", "/foo/", "/foo", True),
    ("Prefix", "/foo/", "/foo/bar", True),
    ("Prefix", "/aaa/bbb", "/aaa/bbbxyz", False),
    ("Prefix", "/aaa/bbb", "/aaa/bbb/ccc", True),
    ("Prefix", "/foo", "/Foo", False),
    ("Exact", "/foo", "/foo", True),
    ("Exact", "/foo", "/foo/", False),
    ("Exact", "/foo", "/foo/bar", False),
    ("Exact", "/foo/", "/foo", False),
    ("ImplementationSpecific", "/foo", "/foo/bar", True),
    ("ImplementationSpecific", "/foo", "/foobar", False),
    ("ImplementationSpecific", "", "/x", True),
])
def test_path_types(path_type: str, rule_path: str, request_path: str, matches: bool) -> None:
    ings = [ingress(rules=[rule("h.test", path(rule_path, "a", path_type))])]
    assert (route(ings, "h.test", request_path) == "a") is matches


@pytest.mark.parametrize("request_path,expected", [
    ("/", "root"),
    ("/api", "exact"),  # Exact before Prefix at equal length
    ("/api/", "b"),
    ("/api/v1", "c"),
    ("/api/v1/x", "c"),
    ("/api/v2", "b"),
    ("/apiv1", "root"),
    ("/static/app.js", "d"),
])
def test_longest_match_first(request_path: str, expected: str) -> None:
    ings = [ingress(rules=[rule("h.test", path("/", "root"), path("/api", "b"), path("/api", "exact", "Exact"),
                                path("/api/v1", "c"), path("/static", "d", "ImplementationSpecific"))])]
    assert route(ings, "h.test", request_path) == expected


# ---------------------------------------------------------------------------------- hosts
HOSTS = [ingress(rules=[rule("foo.example.com", path("/", "exact")),
                        rule("*.example.com", path("/", "wild")),
                        rule("bar.test", path("/api", "b")),
                        rule(None, path("/", "any"))])]


@pytest.mark.parametrize("host,expected", [
    ("foo.example.com", "exact"),
    ("FOO.Example.com:8080", "exact"),
    ("foo.example.com.", "exact"),
    ("x.example.com", "wild"),
    ("a.b.example.com", "any"),  # a wildcard matches exactly one label
    ("example.com", "any"),
    ("bar.test", "any"),  # bar.test has no matching path: the next group
    ("127.0.0.1:80", "any"),
    ("", "any"),
])
def test_hosts_exact_then_wildcard_then_any(host: str, expected: str) -> None:
    assert route(HOSTS, host, "/") == expected


def test_a_host_rule_wins_over_a_longer_hostless_path() -> None:
    ings = [ingress(rules=[rule("bar.test", path("/", "a")), rule(None, path("/api/long", "b"))])]
    assert route(ings, "bar.test", "/api/long") == "a"
    assert route(ings, "other.test", "/api/long") == "b"


@pytest.mark.parametrize("host,expected", [("bar.test", "b"), ("[::1]:8080", None), ("nope.test", None)])
def test_no_match_is_none(host: str, expected: str | None) -> None:
    ings = [ingress(rules=[rule("bar.test", path("/", "b"))])]
    assert route(ings, host, "/") == expected


@pytest.mark.parametrize("raw,normal", [("Example.COM:8080", "example.com"), ("[::1]:80", "[::1]"),
                                        ("example.com.", "example.com"), ("::1", "::1"), (" a.b ", "a.b")])
def test_normalize_host(raw: str, normal: str) -> None:
    assert normalize_host(raw) == normal


# ---------------------------------------------------------------------------------- defaults
@pytest.mark.parametrize("host,p,expected", [
    ("a.test", "/api", "a"),
    ("a.test", "/other", "e"),  # the Ingress naming a.test has a default backend
    ("b.test", "/other", "fallback"),  # the oldest Ingress with a default backend
    ("nothing.test", "/", "fallback"),
])
def test_default_backends(host: str, p: str, expected: str) -> None:
    ings = [
        ingress("second", rules=[rule("a.test", path("/api", "a"))], default="e", created="2024-02-01T00:00:00Z"),
        ingress("first", default="fallback", created="2024-01-01T00:00:00Z"),
        ingress("third", rules=[rule("b.test", path("/api", "b"))], created="2024-03-01T00:00:00Z"),
    ]
    assert route(ings, host, p) == expected


def test_the_oldest_ingress_wins_a_shared_path() -> None:
    ings = [ingress("new", rules=[rule("h.test", path("/", "b"), path("/x", "c"))], created="2024-02-01T00:00:00Z"),
            ingress("old", rules=[rule("h.test", path("/", "a"))], created="2024-01-01T00:00:00Z")]
    assert route(ings, "h.test", "/") == "a"
    assert route(ings, "h.test", "/x") == "c"  # merged from both
    assert build_routes(ings, [OUR_CLASS], PORTS).ours == [("ns", "old"), ("ns", "new")]


def test_deleted_ingresses_are_left_out() -> None:
    ing = ingress(rules=[rule("h.test", path("/", "a"))])
    ing["metadata"]["deletionTimestamp"] = "2024-01-02T00:00:00Z"
    assert route([ing], "h.test", "/") is None


# ---------------------------------------------------------------------------------- backends
def test_backend_ports_by_number_and_by_name_with_ready_endpoints() -> None:
    ports = [port("web", 80, "http", ips=("10.0.0.2", "10.0.0.1")), port("web", 443, "https", ips=("10.0.0.3",)),
             ServicePort(namespace="ns", service="web", port_name="http", protocol="TCP", port=80,
                         endpoints=(Endpoint(ip="10.0.0.9", port=8080, ready=False),))]
    by_number = ingress(rules=[rule("n.test", {"path": "/", "pathType": "Prefix", "backend": backend("web", 443)})])
    by_name = ingress("n2", rules=[rule("m.test", {"path": "/", "pathType": "Prefix",
                                                   "backend": backend("web", name="http")})])
    table = build_routes([by_number, by_name], [OUR_CLASS], ports)
    found = table.match("n.test", "/")
    assert found is not None and found.found and found.endpoints == (("10.0.0.3", 8080),)
    assert found.key == "ns/web:443"
    found = table.match("m.test", "/")
    assert found is not None and found.endpoints == (("10.0.0.1", 8080), ("10.0.0.2", 8080))


@pytest.mark.parametrize("backend_spec,found", [
    (backend("web", 8080), False),  # no such port
    (backend("missing", 80), False),  # no such Service
    (backend("web", name="metrics"), False),
    ({"resource": {"kind": "Bucket", "name": "b"}}, False),
    (backend("web", 80), True),
])
def test_unknown_backends_have_no_endpoints(backend_spec: dict[str, Any], found: bool) -> None:
    ing = ingress(rules=[rule("h.test", {"path": "/", "pathType": "Prefix", "backend": backend_spec})])
    b = build_routes([ing], [OUR_CLASS], [port("web")]).match("h.test", "/")
    assert b is not None and b.found is found and bool(b.endpoints) is found


def test_not_ready_endpoints_are_left_out_and_other_namespaces_do_not_count() -> None:
    ing = ingress(rules=[rule("h.test", path("/", "web"))])
    b = build_routes([ing], [OUR_CLASS], [port("web", ready=False), port("web", namespace="other")]).match("h.test", "/")
    assert b is not None and b.found and b.endpoints == ()

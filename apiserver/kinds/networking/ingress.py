"""Ingress (networking.k8s.io/v1): HTTP routes from hosts and paths to Services.

``ValidateIngress``: rules or a default backend, paths absolute for Exact/Prefix, backends name a
service port by number or name (not both), hosts DNS names (wildcards allowed) but not IPs;
``status`` starts as ``{loadBalancer: {}}``. A new Ingress without a class gets the default
IngressClass (the DefaultIngressClass admission plugin).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...openapi.facts import ATOMIC, Facts
from ...validation.fielderrors import (Causes, Obj, child, each, get_int, get_map, get_maps, get_opt_map, get_str,
                                       get_strs, invalid, not_supported, required, required_str)
from ...validation.formats import (dns1035_label_errors, dns1123_subdomain_errors, ip_errors, port_name_errors,
                                   port_num_errors, wildcard_subdomain_errors)
from ..base import AGE, NAME, Column, CreateContext, Strategy, age, name_of, spec, status
from .ingressclass import default_class_name
from ..common.printers import load_balancer_addresses

_ATOMIC_LIST = Facts(list_type="atomic")


class IngressStrategy(Strategy):
    group = "networking.k8s.io"
    kind = "Ingress"
    plural = "ingresses"
    singular = "ingress"
    short_names = ("ing",)
    subresources = ("status",)
    model = "V1Ingress"
    initial_status: Obj = {"loadBalancer": {}}
    columns = (
        NAME,
        Column("Class", description=(
            "The name of the IngressClass resource that should be used for additional configuration")),
        Column("Hosts", description="Hosts that incoming requests are matched against before the ingress rule"),
        Column("Address", description="Address is a list containing ingress points for the load-balancer"),
        Column("Ports", description="Ports of TLS configurations that open"),
        AGE,
    )
    type_facts = {
        "V1IngressSpec": {"tls": _ATOMIC_LIST, "rules": _ATOMIC_LIST},
        "V1IngressTLS": {"hosts": _ATOMIC_LIST},
        "V1IngressLoadBalancerStatus": {"ingress": _ATOMIC_LIST},
        "V1IngressLoadBalancerIngress": {"ports": _ATOMIC_LIST},
        "V1HTTPIngressRuleValue": {"paths": _ATOMIC_LIST},
        "V1ServiceBackendPort": {"": ATOMIC},
    }
    protobuf_messages = {
        "Ingress": "metadata:1:ObjectMeta spec:2:IngressSpec status:3:IngressStatus",
        "IngressSpec": (
            "ingressClassName:4:s! defaultBackend:1:IngressBackend tls:2:*IngressTLS "
            "rules:3:*IngressRule"),
        "IngressStatus": "loadBalancer:1:IngressLoadBalancerStatus",
        "IngressBackend": "service:4:IngressServiceBackend resource:3:TypedLocalObjectReference",
        "IngressTLS": "hosts:1:*s secretName:2:s",
        "IngressRule": "host:1:s -:2:IngressRuleValue",
        "IngressLoadBalancerStatus": "ingress:1:*IngressLoadBalancerIngress",
        "IngressServiceBackend": "name:1:s! port:2:ServiceBackendPort",
        "IngressRuleValue": "http:1:HTTPIngressRuleValue",
        "IngressLoadBalancerIngress": "ip:1:s hostname:2:s ports:4:*IngressPortStatus",
        "ServiceBackendPort": "name:1:s number:2:i",
        "HTTPIngressRuleValue": "paths:1:*HTTPIngressPath",
        "IngressPortStatus": "port:1:i! protocol:2:s! error:3:s!",
        "HTTPIngressPath": "path:1:s pathType:3:s! backend:2:IngressBackend",
    }

    def prepare_for_create(self, obj: Obj, ctx: CreateContext) -> None:
        """The DefaultIngressClass admission: an Ingress created without a class (and without the
        legacy ``kubernetes.io/ingress.class`` annotation) gets the default IngressClass, if any."""
        super().prepare_for_create(obj, ctx)
        ing_spec = obj.get("spec")
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not isinstance(ing_spec, dict) or ing_spec.get("ingressClassName") \
                or "kubernetes.io/ingress.class" in annotations:
            return
        chosen = default_class_name(ctx.stored("ingressclasses.networking.k8s.io"))
        if chosen:
            ing_spec["ingressClassName"] = chosen

    def validate(self, obj: Obj) -> Causes:
        return _validate_ingress(obj)

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        ing_spec = spec(obj)
        return [
            name_of(obj), ing_spec.get("ingressClassName") or "<none>", _ingress_hosts(ing_spec.get("rules") or []),
            load_balancer_addresses(status(obj).get("loadBalancer") or {}), "80, 443" if ing_spec.get("tls") else "80",
            age(obj, now),
        ]


def _ingress_hosts(rules: list[Mapping[str, Any]]) -> str:
    """``formatHosts``: the first three non-empty hosts, "*" when none, " + N more..." over rules."""
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == 3:
            more = True
            break
        if rule.get("host"):
            hosts.append(rule["host"])
    if not hosts:
        return "*"
    text = ",".join(hosts)
    return f"{text} + {len(rules) - 3} more..." if more else text


_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")


def _validate_ingress_backend(backend: Obj, path: str, causes: Causes) -> None:
    service = get_opt_map(backend, "service", path, causes)
    resource = get_opt_map(backend, "resource", path, causes)
    if service is not None and resource is not None:
        causes.append(invalid(path, "", "cannot set both resource and service backends"))
        return
    if resource is not None:
        resource_path = child(path, "resource")
        for name in ("kind", "name"):
            if not get_str(resource, name, resource_path, causes):
                causes.append(required(child(resource_path, name), f"{name} is required"))
        return
    if service is None:
        causes.append(invalid(path, "", "resource or service backend is required"))
        return
    service_path = child(path, "service")
    required_str(service, "name", service_path, causes, errors=dns1035_label_errors)
    port = get_map(service, "port", service_path, causes)
    port_path = child(service_path, "port")
    port_name = get_str(port, "name", port_path, causes)
    number = get_int(port, "number", port_path, causes) or 0
    if port_name and number:
        causes.append(invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        causes.extend(each(child(port_path, "name"), port_name, port_name_errors(port_name)))
    elif number:
        causes.extend(each(child(port_path, "number"), number, port_num_errors(number)))
    else:
        causes.append(required(path, "port name or number is required"))


def _validate_ingress_path(item: Obj, path: str, causes: Causes) -> None:
    path_type = get_str(item, "pathType", path, causes)
    value = get_str(item, "path", path, causes)
    if not path_type:
        causes.append(required(child(path, "pathType"), "pathType must be specified"))
        return
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            causes.append(invalid(child(path, "path"), value, "must be an absolute path"))
        if value:
            for seq in _INVALID_PATH_SEQUENCES:
                if seq in value:
                    causes.append(invalid(child(path, "path"), value, f"must not contain '{seq}'"))
            for suffix in _INVALID_PATH_SUFFIXES:
                if value.endswith(suffix):
                    causes.append(invalid(child(path, "path"), value, f"cannot end with '{suffix}'"))
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            causes.append(invalid(child(path, "path"), value, "must be an absolute path"))
    else:
        causes.append(not_supported(child(path, "pathType"), path_type, _PATH_TYPES))
    _validate_ingress_backend(get_map(item, "backend", path, causes), child(path, "backend"), causes)


def _validate_ingress(obj: Obj) -> Causes:
    causes: Causes = []
    ing_spec = get_map(obj, "spec", "", causes)
    rules = get_maps(ing_spec, "rules", "spec", causes)
    default_backend = get_opt_map(ing_spec, "defaultBackend", "spec", causes)
    if not rules and default_backend is None:
        causes.append(invalid("spec", ing_spec.get("rules"), "either `defaultBackend` or `rules` must be specified"))
    if default_backend is not None:
        _validate_ingress_backend(default_backend, "spec.defaultBackend", causes)
    for rule_path, rule in rules:
        host = get_str(rule, "host", rule_path, causes)
        host_path = child(rule_path, "host")
        if host:
            if not ip_errors(host):
                causes.append(invalid(host_path, host, "must be a DNS name, not an IP address"))
            checker = wildcard_subdomain_errors if "*" in host else dns1123_subdomain_errors
            causes.extend(each(host_path, host, checker(host)))
        http = get_opt_map(rule, "http", rule_path, causes)
        if http is None:
            continue
        http_path = child(rule_path, "http")
        paths = get_maps(http, "paths", http_path, causes)
        if not paths:
            causes.append(required(child(http_path, "paths")))
        for item_path, item in paths:
            _validate_ingress_path(item, item_path, causes)
    for tls_path, tls in get_maps(ing_spec, "tls", "spec", causes):
        get_strs(tls, "hosts", tls_path, causes)
        secret = get_str(tls, "secretName", tls_path, causes)
        if secret:
            causes.extend(each(child(tls_path, "secretName"), secret, dns1123_subdomain_errors(secret)))
    class_name = get_str(ing_spec, "ingressClassName", "spec", causes)
    if class_name:
        causes.extend(each("spec.ingressClassName", class_name, dns1123_subdomain_errors(class_name)))
    return causes


STRATEGY = IngressStrategy()

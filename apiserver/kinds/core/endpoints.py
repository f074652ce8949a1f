"""Endpoints (core/v1): the addresses behind a Service, kept by the endpoints controller.

Hand-made Endpoints (for a Service without a selector, pointing outside the cluster) are just as
valid; addresses may not be loopback, link-local or unspecified (``validateNonSpecialIP``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...openapi.facts import ATOMIC, Facts
from ...validation.containers import PROTOCOLS
from ...validation.fielderrors import (Causes, Obj, child, each, enum, get_int, get_maps, get_opt_map, get_str,
                                       invalid, required)
from ...validation.formats import dns1123_label_errors, dns1123_subdomain_errors, ip_errors, port_num_errors
from ..base import AGE, NAME, Column, Strategy, age, name_of
from ..common.defaulting import maps_at, set_if_unset
from ..common.printers import join_host_port, with_more

_ATOMIC_LIST = Facts(list_type="atomic")


class EndpointsStrategy(Strategy):
    kind = "Endpoints"
    plural = "endpoints"
    singular = "endpoints"
    short_names = ("ep",)
    model = "V1Endpoints"
    columns = (NAME, Column("Endpoints", description="The set of all endpoints is the union of all subsets."), AGE)
    type_facts = {
        "V1Endpoints": {"subsets": _ATOMIC_LIST},
        "V1EndpointSubset": {"addresses": _ATOMIC_LIST, "notReadyAddresses": _ATOMIC_LIST, "ports": _ATOMIC_LIST},
        "V1EndpointAddress": {"": ATOMIC},
        "CoreV1EndpointPort": {"": ATOMIC},
    }
    protobuf_messages = {
        "Endpoints": "metadata:1:ObjectMeta subsets:2:*EndpointSubset",
        "EndpointSubset": (
            "addresses:1:*EndpointAddress notReadyAddresses:2:*EndpointAddress ports:3:*EndpointPort"),
        "EndpointAddress": "ip:1:s! hostname:3:s nodeName:4:s! targetRef:2:ObjectReference",
        "EndpointPort": "name:1:s port:2:i! protocol:3:s appProtocol:4:s!",
    }

    def defaults(self, obj: Obj) -> None:
        for subset in maps_at(obj, "subsets"):
            for port in maps_at(subset, "ports"):
                set_if_unset(port, "protocol", "TCP")

    def validate(self, obj: Obj) -> Causes:
        return _validate_endpoints(obj)

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return [name_of(obj), _format_endpoints(obj), age(obj, now)]


def _format_endpoints(endpoints: Mapping[str, Any]) -> str:
    """``formatEndpoints``: up to three "ip:port" entries, then " + N more..."."""
    subsets = endpoints.get("subsets") or []
    if not subsets:
        return "<none>"
    entries: list[str] = []
    for subset in subsets:
        ips = [address.get("ip", "") for address in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        if not ports:
            entries += ips
            continue
        for port in ports:
            entries += [join_host_port(ip, port.get("port", 0)) for ip in ips]
    return with_more(entries, total=len(entries))


def special_ip_causes(ip: str, path: str) -> Causes:
    """validateNonSpecialIP: endpoints may not point at unspecified, loopback or link-local addresses."""
    address = ipaddress.ip_address(ip)
    causes: Causes = []
    if address.is_unspecified:
        causes.append(invalid(path, ip, "may not be unspecified (0.0.0.0)"))
    if address.is_loopback:
        causes.append(invalid(path, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if address.is_link_local and not address.is_multicast:
        causes.append(invalid(path, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if address.is_multicast and (address in ipaddress.ip_network("224.0.0.0/24") if address.version == 4
                                 else address in ipaddress.ip_network("ff02::/16")):
        causes.append(invalid(path, ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
    return causes


def _validate_endpoints(obj: Obj) -> Causes:
    causes: Causes = []
    for subset_path, subset in get_maps(obj, "subsets", "", causes):
        addresses = get_maps(subset, "addresses", subset_path, causes)
        not_ready = get_maps(subset, "notReadyAddresses", subset_path, causes)
        if not addresses and not not_ready:
            causes.append(required(subset_path, "must specify `addresses` or `notReadyAddresses`"))
        for address_path, address in addresses + not_ready:
            ip = get_str(address, "ip", address_path, causes)
            errs = each(child(address_path, "ip"), ip, ip_errors(ip))
            causes.extend(errs or special_ip_causes(ip, child(address_path, "ip")))
            hostname = get_str(address, "hostname", address_path, causes)
            if hostname:
                causes.extend(each(child(address_path, "hostname"), hostname, dns1123_label_errors(hostname)))
            node_name = get_str(address, "nodeName", address_path, causes)
            if node_name:
                causes.extend(each(child(address_path, "nodeName"), node_name, dns1123_subdomain_errors(node_name)))
            get_opt_map(address, "targetRef", address_path, causes)
        ports = get_maps(subset, "ports", subset_path, causes)
        for port_path, port in ports:
            name = get_str(port, "name", port_path, causes)
            if len(ports) > 1 and not name:
                causes.append(required(child(port_path, "name")))
            elif name:
                causes.extend(each(child(port_path, "name"), name, dns1123_label_errors(name)))
            number = get_int(port, "port", port_path, causes) or 0
            causes.extend(each(child(port_path, "port"), number, port_num_errors(number)))
            causes.extend(enum(child(port_path, "protocol"), get_str(port, "protocol", port_path, causes), PROTOCOLS))
    return causes



STRATEGY = EndpointsStrategy()

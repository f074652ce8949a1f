"""EndpointSlice (discovery.k8s.io/v1): a Service's endpoints in slices, as kube-proxy reads them.

After pkg/registry/discovery/endpointslice and pkg/apis/discovery/validation: ``addressType``
(IPv4, IPv6 or FQDN) is required and immutable; at most 1000 endpoints of 1 to 100 addresses each,
every address valid for the type; a port's protocol defaults to TCP and its name to ""; port names
are DNS labels and unique; ``kubectl get endpointslices`` shows the address type, up to three
ports and up to three addresses.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from machinery.errors import StatusCause

from ...openapi.facts import Facts
from ...validation.containers import PROTOCOLS
from ...validation.fielderrors import (Causes, Obj, child, duplicate, each, enum, get_int, get_maps, get_opt_map,
                                       get_str, get_str_map, get_strs, index, invalid, required)
from ...validation.formats import dns1123_label_errors, dns1123_subdomain_errors, ip_errors, port_num_errors
from ..base import AGE, NAME, Column, Strategy, age, name_of
from ..common.defaulting import maps_at, set_if_unset
from ..common.printers import with_more

ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")
MAX_ENDPOINTS = 1000
MAX_ADDRESSES = 100
MAX_PORTS = 20000
FIELD_IMMUTABLE = "field is immutable"
_ATOMIC_LIST = Facts(list_type="atomic")


def too_many(path: str, actual: int, maximum: int) -> StatusCause:
    """field.TooMany as apimachinery words it."""
    return StatusCause("FieldValueTooMany", f"Too many: {actual}: must have at most {maximum} items", path)


class EndpointSliceStrategy(Strategy):
    group = "discovery.k8s.io"
    kind = "EndpointSlice"
    plural = "endpointslices"
    singular = "endpointslice"
    model = "V1EndpointSlice"
    columns = (
        NAME,
        Column("AddressType", description="The IP protocol for this slice"),
        Column("Ports", description="The ports for this slice"),
        Column("Endpoints", description="The addresses for this slice"),
        AGE,
    )
    type_facts = {
        "V1EndpointSlice": {"endpoints": _ATOMIC_LIST, "ports": _ATOMIC_LIST},
        "V1Endpoint": {"addresses": Facts(list_type="set")},
    }
    # Go's field numbers (k8s.io/api/discovery/v1/generated.proto); the port message is named apart
    # from core/v1's EndpointPort, whose numbers differ.
    protobuf_messages = {
        "EndpointSlice": "metadata:1:ObjectMeta endpoints:2:*Endpoint ports:3:*DiscoveryEndpointPort addressType:4:s!",
        "Endpoint": ("addresses:1:*s conditions:2:EndpointConditions hostname:3:s! targetRef:4:ObjectReference "
                     "deprecatedTopology:5:{s} nodeName:6:s! zone:7:s! hints:8:EndpointHints"),
        "EndpointConditions": "ready:1:b! serving:2:b! terminating:3:b!",
        "EndpointHints": "forZones:1:*ForZone forNodes:2:*ForNode",
        "ForZone": "name:1:s!",
        "ForNode": "name:1:s!",
        "DiscoveryEndpointPort": "name:1:s! protocol:2:s! port:3:i! appProtocol:4:s!",
    }

    def defaults(self, obj: Obj) -> None:
        for port in maps_at(obj, "ports"):
            set_if_unset(port, "name", "")
            set_if_unset(port, "protocol", "TCP")

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        address_type = get_str(obj, "addressType", "", causes)
        causes += enum("addressType", address_type, ADDRESS_TYPES)
        endpoints = get_maps(obj, "endpoints", "", causes)
        if len(endpoints) > MAX_ENDPOINTS:
            causes.append(too_many("endpoints", len(endpoints), MAX_ENDPOINTS))
        for path, endpoint in endpoints:
            causes += _validate_endpoint(endpoint, path, address_type)
        ports = get_maps(obj, "ports", "", causes)
        if len(ports) > MAX_PORTS:
            causes.append(too_many("ports", len(ports), MAX_PORTS))
        names: set[str] = set()
        for path, port in ports:
            name = get_str(port, "name", path, causes)
            if name:
                causes += each(child(path, "name"), name, dns1123_label_errors(name))
                if name in names:
                    causes.append(duplicate(child(path, "name"), name))
                names.add(name)
            protocol = get_str(port, "protocol", path, causes)
            causes += enum(child(path, "protocol"), protocol, PROTOCOLS)
            number = get_int(port, "port", path, causes)
            if number is not None:
                causes += each(child(path, "port"), number, port_num_errors(number))
            get_str(port, "appProtocol", path, causes)
        return causes

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        if new.get("addressType") != old.get("addressType"):
            return [invalid("addressType", new.get("addressType"), FIELD_IMMUTABLE)]
        return []

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return [name_of(obj), obj.get("addressType", ""), format_ports(obj.get("ports") or []),
                format_endpoints(obj.get("endpoints") or []), age(obj, now)]


def _validate_endpoint(endpoint: Obj, path: str, address_type: str) -> Causes:
    causes: Causes = []
    addresses = get_strs(endpoint, "addresses", path, causes)
    addresses_path = child(path, "addresses")
    if not addresses:
        causes.append(required(addresses_path, "must contain at least 1 address"))
    elif len(addresses) > MAX_ADDRESSES:
        causes.append(too_many(addresses_path, len(addresses), MAX_ADDRESSES))
    for i, address in enumerate(addresses):
        causes += each(index(addresses_path, i), address, _address_errors(address, address_type))
    conditions = get_opt_map(endpoint, "conditions", path, causes) or {}
    for name in ("ready", "serving", "terminating"):
        value = conditions.get(name)
        if value is not None and not isinstance(value, bool):
            causes.append(invalid(child(child(path, "conditions"), name), value, "must be a boolean"))
    hostname = get_str(endpoint, "hostname", path, causes)
    if hostname:
        causes += each(child(path, "hostname"), hostname, dns1123_label_errors(hostname))
    node_name = get_str(endpoint, "nodeName", path, causes)
    if node_name:
        causes += each(child(path, "nodeName"), node_name, dns1123_subdomain_errors(node_name))
    get_str(endpoint, "zone", path, causes)
    get_str_map(endpoint, "deprecatedTopology", path, causes)
    get_opt_map(endpoint, "targetRef", path, causes)
    return causes


def _address_errors(address: str, address_type: str) -> list[str]:
    if address_type == "FQDN":
        return dns1123_subdomain_errors(address)
    if ip_errors(address) or (":" in address) != (address_type == "IPv6"):
        return [f"must be a valid {address_type} address"]
    return []


def format_ports(ports: list[Mapping[str, Any]]) -> str:
    """``formatDiscoveryPorts``: up to three port numbers (a name when no number), ``<unset>``."""
    if not ports:
        return "<unset>"
    items = [str(p["port"]) if p.get("port") is not None else str(p.get("name") or "*") for p in ports]
    return with_more(items, total=len(items))


def format_endpoints(endpoints: list[Mapping[str, Any]]) -> str:
    """``formatDiscoveryEndpoints``: up to three addresses of all endpoints, ``<unset>``."""
    addresses = [str(a) for e in endpoints for a in e.get("addresses") or []]
    if not addresses:
        return "<unset>"
    return with_more(addresses, total=len(addresses))


STRATEGY = EndpointSliceStrategy()

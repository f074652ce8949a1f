"""Service (core/v1): a stable virtual IP and ports in front of pods picked by a selector.

After pkg/registry/core/service: defaults (type ClusterIP, TCP ports, targetPort = port, traffic
policies), validation (``ValidateService``), a ClusterIP allocated from the service CIDR on
create (``before_create``) and kept on every update that leaves it out, ``spec.clusterIP``
immutable, ``status`` starting as ``{loadBalancer: {}}``.

IP families: minik8s is a single-stack IPv4 cluster, so as Kubernetes' allocator does there a
service gets ``ipFamilyPolicy: SingleStack`` and ``ipFamilies: [IPv4]``; asking for IPv6 or for
RequireDualStack is rejected ("not configured on this cluster"), except for headless services
without a selector, which Kubernetes lets name both families.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from machinery import errors

from ...openapi.facts import Facts, keyed
from ...validation.containers import PROTOCOLS, port_num_or_name
from ...validation.fielderrors import (Causes, Obj, child, dict_at, duplicate, each, enum, forbidden, get_int,
                                       get_map, get_maps, get_opt_map, get_str, get_strs, index, invalid, required)
from ...validation.formats import dns1035_label_errors, dns1123_label_errors, dns1123_subdomain_errors, ip_errors, port_num_errors
from ...validation.objectmeta import read_labels
from ..base import AGE, NAME, Column, CreateContext, Strategy, age, name_of, spec, status
from ..common.defaulting import map_at, maps_at, set_if_unset
from ..common.printers import format_labels, load_balancer_addresses

DEFAULT_CLIENT_IP_AFFINITY_SECONDS = 10800  # 3 hours, v1.DefaultClientIPServiceAffinitySeconds
FIELD_IMMUTABLE = "field is immutable"
_ATOMIC_LIST = Facts(list_type="atomic")


def _headless_selectorless(svc_spec: Mapping[str, Any]) -> bool:
    return svc_spec.get("clusterIP") == "None" and not svc_spec.get("selector")


class ServiceStrategy(Strategy):
    kind = "Service"
    plural = "services"
    singular = "service"
    short_names = ("svc",)
    categories = ("all",)
    subresources = ("status", "proxy")
    model = "V1Service"
    initial_status = {"loadBalancer": {}}
    selectable_fields = ("spec.clusterIP", "spec.type")
    columns = (
        NAME,
        Column("Type", description="type determines how the Service is exposed."),
        Column("Cluster-IP", description="clusterIP is the IP address of the service."),
        Column("External-IP", description=(
            "externalIPs is a list of IP addresses for which nodes in the cluster will also accept "
            "traffic for this service.")),
        Column("Port(s)", description="The list of ports that are exposed by this service."),
        AGE,
        Column("Selector", priority=1, description=(
            "Route service traffic to pods with label keys and values matching this selector.")),
    )
    type_facts = {
        "V1ServiceSpec": {"ports": keyed("port", "protocol"), "selector": Facts(map_type="atomic"),
                          "clusterIPs": _ATOMIC_LIST, "externalIPs": _ATOMIC_LIST,
                          "loadBalancerSourceRanges": _ATOMIC_LIST, "ipFamilies": _ATOMIC_LIST},
        "V1ServicePort": {"protocol": Facts(default="TCP")},
        "V1ServiceStatus": {"conditions": keyed("type")},
        "V1LoadBalancerStatus": {"ingress": _ATOMIC_LIST},
        "V1LoadBalancerIngress": {"ports": _ATOMIC_LIST},
    }
    protobuf_messages = {
        "Service": "metadata:1:ObjectMeta spec:2:ServiceSpec status:3:ServiceStatus",
        "ServiceSpec": (
            "ports:1:*ServicePort selector:2:{s} clusterIP:3:s clusterIPs:18:*s type:4:s "
            "externalIPs:5:*s sessionAffinity:7:s loadBalancerIP:8:s loadBalancerSourceRanges:9:*s "
            "externalName:10:s externalTrafficPolicy:11:s healthCheckNodePort:12:i "
            "publishNotReadyAddresses:13:b sessionAffinityConfig:14:SessionAffinityConfig "
            "ipFamilies:19:*s ipFamilyPolicy:17:s! allocateLoadBalancerNodePorts:20:b! "
            "loadBalancerClass:21:s! internalTrafficPolicy:22:s! trafficDistribution:23:s!"),
        "ServiceStatus": "loadBalancer:1:LoadBalancerStatus conditions:2:*Condition",
        "ServicePort": (
            "name:1:s protocol:2:s appProtocol:6:s! port:3:i! targetPort:4:IntOrString nodePort:5:i"),
        "SessionAffinityConfig": "clientIP:1:ClientIPConfig",
        "ClientIPConfig": "timeoutSeconds:1:i!",
        "LoadBalancerStatus": "ingress:1:*LoadBalancerIngress",
        "LoadBalancerIngress": "ip:1:s hostname:2:s ipMode:3:s! ports:4:*PortStatus",
        "PortStatus": "port:1:i! protocol:2:s! error:3:s!",
    }

    def name_errors(self, name: str) -> list[str]:
        return dns1035_label_errors(name)

    def defaults(self, obj: Obj) -> None:
        svc_spec = map_at(obj, "spec", create=True)
        if svc_spec is None:
            return
        set_if_unset(svc_spec, "sessionAffinity", "None")
        if svc_spec.get("sessionAffinity") == "None":
            svc_spec.pop("sessionAffinityConfig", None)
        elif svc_spec.get("sessionAffinity") == "ClientIP":
            config = svc_spec.get("sessionAffinityConfig")
            client_ip = config.get("clientIP") if isinstance(config, dict) else None
            if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
                svc_spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_AFFINITY_SECONDS}}
        set_if_unset(svc_spec, "type", "ClusterIP")
        for port in maps_at(svc_spec, "ports"):
            set_if_unset(port, "protocol", "TCP")
            if port.get("targetPort") in (None, 0, "") and isinstance(port.get("port"), int):
                port["targetPort"] = port["port"]
        if _externally_accessible(svc_spec):
            set_if_unset(svc_spec, "externalTrafficPolicy", "Cluster")
        service_type = svc_spec.get("type")
        if svc_spec.get("internalTrafficPolicy") is None and service_type in ("ClusterIP", "NodePort", "LoadBalancer"):
            svc_spec["internalTrafficPolicy"] = "Cluster"
        if service_type == "LoadBalancer" and svc_spec.get("allocateLoadBalancerNodePorts") is None:
            svc_spec["allocateLoadBalancerNodePorts"] = True

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        old_spec, new_spec = dict_at(old, "spec"), new.get("spec")
        if not isinstance(new_spec, dict):
            return
        _drop_type_dependent_fields(new_spec, old_spec)
        # An update that leaves allocated values out keeps them (Kubernetes' patchAllocatedValues),
        # so a PUT of the original manifest or a kubectl apply works.
        if new_spec.get("type") != "ExternalName":
            if not new_spec.get("clusterIP") and old_spec.get("clusterIP"):
                new_spec["clusterIP"] = old_spec["clusterIP"]
                new_spec.setdefault("clusterIPs", old_spec.get("clusterIPs") or [old_spec["clusterIP"]])
            for name in ("ipFamilyPolicy", "ipFamilies"):
                if new_spec.get(name) is None and old_spec.get(name) is not None:
                    new_spec[name] = old_spec[name]
        if _needs_node_ports(old_spec) and _needs_node_ports(new_spec):
            old_ports, new_ports = _node_ports(old_spec), _node_ports(new_spec)
            used = set(old_ports) & set(new_ports)
            by_name = {str(p.get("name") or ""): p.get("nodePort") for p in maps_at(old_spec, "ports") if p.get("nodePort")}
            for port in maps_at(new_spec, "ports"):
                if not port.get("nodePort"):
                    kept = by_name.get(str(port.get("name") or ""))
                    if kept and kept not in used:
                        port["nodePort"] = kept
        if _needs_health_check(old_spec) and _needs_health_check(new_spec) and not new_spec.get("healthCheckNodePort"):
            new_spec["healthCheckNodePort"] = old_spec.get("healthCheckNodePort")

    def validate(self, obj: Obj) -> Causes:
        return validate_service(obj)

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        new_spec, old_spec = dict_at(new, "spec"), dict_at(old, "spec")
        if "ExternalName" in (new_spec.get("type"), old_spec.get("type")) or not old_spec.get("clusterIP"):
            return []
        if new_spec.get("clusterIP") != old_spec.get("clusterIP"):
            return [invalid("spec.clusterIP", new_spec.get("clusterIP", ""), FIELD_IMMUTABLE)]
        return []

    async def before_create(self, obj: Obj, ctx: CreateContext) -> None:
        svc_spec = obj.setdefault("spec", {})
        meta = obj.get("metadata") or {}
        for other in ctx.existing():  # a taken name fails in storage: fail before allocating anything
            other_meta = other.get("metadata") or {}
            if other_meta.get("name") == meta.get("name") and other_meta.get("namespace") == meta.get("namespace"):
                raise errors.AlreadyExistsError(message=f'services "{meta.get("name")}" already exists',
                                                name=meta.get("name"), group="", kind="services")
        if svc_spec.get("type") != "ExternalName":
            if svc_spec.get("ipFamilyPolicy") is None:
                svc_spec["ipFamilyPolicy"] = "RequireDualStack" if _headless_selectorless(svc_spec) else "SingleStack"
            if not svc_spec.get("ipFamilies"):
                svc_spec["ipFamilies"] = ["IPv4"]
                if _headless_selectorless(svc_spec) and svc_spec["ipFamilyPolicy"] != "SingleStack":
                    svc_spec["ipFamilies"].append("IPv6")
            if svc_spec.get("clusterIP") == "None":
                svc_spec["clusterIPs"] = ["None"]
        await _allocate(obj, None, ctx)

    async def before_update(self, new: Obj, old: Obj, ctx: CreateContext) -> None:
        new_spec = new.get("spec")
        if isinstance(new_spec, dict) and new_spec.get("type") != "ExternalName" and dict_at(old, "spec").get("type") == "ExternalName":
            # Turning into a ClusterIP Service: the IP family fields as a create sets them.
            new_spec.setdefault("ipFamilyPolicy", "SingleStack")
            if not new_spec.get("ipFamilies"):
                new_spec["ipFamilies"] = ["IPv4"]
        await _allocate(new, old, ctx)

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        svc_spec = spec(obj)
        cluster_ips = svc_spec.get("clusterIPs") or ([svc_spec["clusterIP"]] if svc_spec.get("clusterIP") else [])
        return [
            name_of(obj), svc_spec.get("type") or "ClusterIP", cluster_ips[0] if cluster_ips else "<none>",
            _external_ip(obj), _ports(svc_spec.get("ports") or []), age(obj, now),
            format_labels(svc_spec.get("selector")),
        ]


def _externally_accessible(svc_spec: Mapping[str, Any]) -> bool:
    """service.ExternallyAccessible: LoadBalancer, NodePort, or ClusterIP with external IPs."""
    kind = svc_spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and bool(svc_spec.get("externalIPs")))


def _needs_cluster_ip(svc_spec: Mapping[str, Any]) -> bool:
    return svc_spec.get("type") != "ExternalName" and svc_spec.get("clusterIP") != "None"


def _needs_node_ports(svc_spec: Mapping[str, Any]) -> bool:
    kind = svc_spec.get("type")
    return kind == "NodePort" or (kind == "LoadBalancer" and svc_spec.get("allocateLoadBalancerNodePorts") is not False)


def _needs_health_check(svc_spec: Mapping[str, Any]) -> bool:
    return svc_spec.get("type") == "LoadBalancer" and svc_spec.get("externalTrafficPolicy") == "Local"


def _node_ports(svc_spec: Mapping[str, Any]) -> list[int]:
    return [p["nodePort"] for p in svc_spec.get("ports") or [] if isinstance(p, Mapping) and isinstance(p.get("nodePort"), int) and p["nodePort"]]


def _drop_type_dependent_fields(new_spec: Obj, old_spec: Mapping[str, Any]) -> None:
    """A type change clears what the new type does not use when the client left it as it was
    (Kubernetes' dropTypeDependentFields), so ``kubectl edit`` of just ``type`` works."""
    if _needs_cluster_ip(old_spec) and new_spec.get("type") == "ExternalName":
        if new_spec.get("clusterIP") in (None, "", old_spec.get("clusterIP")):
            new_spec.pop("clusterIP", None)
            if new_spec.get("clusterIPs") in (None, [], old_spec.get("clusterIPs")):
                new_spec.pop("clusterIPs", None)
        for name in ("ipFamilies", "ipFamilyPolicy"):
            if new_spec.get(name) in (None, old_spec.get(name)):
                new_spec.pop(name, None)
    old_kind, new_kind = old_spec.get("type") or "ClusterIP", new_spec.get("type") or "ClusterIP"
    if old_kind in ("NodePort", "LoadBalancer") and new_kind not in ("NodePort", "LoadBalancer"):
        if sorted(_node_ports(new_spec)) in ([], sorted(_node_ports(old_spec))):
            for port in maps_at(new_spec, "ports"):
                port.pop("nodePort", None)
    if _needs_health_check(old_spec) and not _needs_health_check(new_spec):
        if new_spec.get("healthCheckNodePort") in (None, 0, old_spec.get("healthCheckNodePort")):
            new_spec.pop("healthCheckNodePort", None)
    if old_kind == "LoadBalancer" and new_kind != "LoadBalancer":
        for name in ("allocateLoadBalancerNodePorts", "loadBalancerClass"):
            if new_spec.get(name) == old_spec.get(name):
                new_spec.pop(name, None)
    if _externally_accessible(old_spec) and not _externally_accessible(new_spec):
        if new_spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy"):
            new_spec.pop("externalTrafficPolicy", None)


async def _allocate(obj: Obj, old: Obj | None, ctx: CreateContext) -> None:
    """Claim the ClusterIP, NodePorts and health check port ``obj`` needs and ``old`` (the stored
    version of an update) does not hold yet; on a failure, free what this call claimed.

    ``ctx.allocations`` (``apiserver/allocators.py``) keeps the claims in etcd; what a write stops
    using is freed after it is committed, from the Service watch."""
    allocations = ctx.allocations
    svc_spec = obj.get("spec")
    if allocations is None or not isinstance(svc_spec, dict):
        return
    old_spec = dict_at(old, "spec") if old is not None else {}
    uid = str((obj.get("metadata") or {}).get("uid") or "")
    claimed_ips: list[str] = []
    claimed_ports: list[int] = []
    try:
        if _needs_cluster_ip(svc_spec):
            wanted = str(svc_spec.get("clusterIP") or "")
            if not wanted or not _needs_cluster_ip(old_spec) or wanted != old_spec.get("clusterIP"):
                ip = await allocations.allocate_ip(obj, wanted, dry_run=ctx.dry_run)
                claimed_ips.append(ip)
                svc_spec["clusterIP"], svc_spec["clusterIPs"] = ip, [ip]
        if svc_spec.get("type") in ("NodePort", "LoadBalancer"):
            held = set(_node_ports(old_spec)) if old_spec.get("type") in ("NodePort", "LoadBalancer") else set()
            by_service_port: dict[Any, int] = {}
            ports = maps_at(svc_spec, "ports")
            for i, port in enumerate(ports):  # the ones asked for first, so a random pick cannot take them
                number = port.get("nodePort")
                if isinstance(number, int) and number:
                    if number not in held and number not in claimed_ports:
                        await allocations.allocate_port(obj, number, field=f"spec.ports[{i}].nodePort", dry_run=ctx.dry_run)
                        claimed_ports.append(number)
                    by_service_port.setdefault(port.get("port"), number)
            if _needs_node_ports(svc_spec):
                for port in ports:
                    if not port.get("nodePort"):
                        # The same port number for TCP and UDP shares one node port, as in Kubernetes.
                        number = by_service_port.get(port.get("port")) or 0
                        if not number:
                            number = await allocations.allocate_port(obj, field="spec.ports.nodePort", dry_run=ctx.dry_run)
                            claimed_ports.append(number)
                            by_service_port[port.get("port")] = number
                        port["nodePort"] = number
        if _needs_health_check(svc_spec):
            wanted_port = svc_spec.get("healthCheckNodePort")
            if isinstance(wanted_port, int) and wanted_port:
                if wanted_port != old_spec.get("healthCheckNodePort") or not _needs_health_check(old_spec):
                    await allocations.allocate_port(obj, wanted_port, field="spec.healthCheckNodePort",
                                                    health_check=True, dry_run=ctx.dry_run)
                    claimed_ports.append(wanted_port)
            else:
                svc_spec["healthCheckNodePort"] = await allocations.allocate_port(
                    obj, field="spec.healthCheckNodePort", health_check=True, dry_run=ctx.dry_run)
                claimed_ports.append(svc_spec["healthCheckNodePort"])
    except BaseException:
        if not ctx.dry_run:
            await allocations.release_values(uid, ips=claimed_ips, ports=claimed_ports)
        raise


def _external_ip(service: Mapping[str, Any]) -> str:
    svc_spec = spec(service)
    external = list(svc_spec.get("externalIPs") or [])
    service_type = svc_spec.get("type") or "ClusterIP"
    if service_type in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if service_type == "LoadBalancer":
        balancer = load_balancer_addresses(status(service).get("loadBalancer") or {})
        return ",".join(([balancer] if balancer else []) + external) or "<pending>"
    if service_type == "ExternalName":
        return str(svc_spec.get("externalName", ""))
    return "<unknown>"


def _ports(ports: list[Mapping[str, Any]]) -> str:
    pieces = []
    for port in ports:
        protocol = port.get("protocol") or "TCP"
        node_port = port.get("nodePort") or 0
        pieces.append(f"{port.get('port')}:{node_port}/{protocol}" if node_port > 0 else f"{port.get('port')}/{protocol}")
    return ",".join(pieces) or "<none>"


def _ip_family_causes(svc_spec: Mapping[str, Any], families: list[str], causes: Causes) -> None:
    """What a single-stack IPv4 cluster cannot give (Kubernetes' initIPFamilyFields)."""
    if svc_spec.get("type") == "ExternalName" or _headless_selectorless(svc_spec):
        return
    if svc_spec.get("ipFamilyPolicy") == "RequireDualStack":
        causes.append(invalid("spec.ipFamilyPolicy", "RequireDualStack",
                              "this cluster is not configured for dual-stack services"))
    for i, family in enumerate(families):
        if family == "IPv6":
            causes.append(invalid(index("spec.ipFamilies", i), family, "not configured on this cluster"))
    raw_ips = svc_spec.get("clusterIPs")
    cluster_ips: list[Any] = raw_ips if isinstance(raw_ips, list) else []
    for i, ip in enumerate(cluster_ips):
        if isinstance(ip, str) and ip != "None" and ":" in ip and not families[i:i + 1]:
            causes.append(invalid(index("spec.clusterIPs", i), cluster_ips, "IPv6 is not configured on this cluster"))


def _validate_service_port(port: Obj, path: str, *, require_name: bool, names: set[str], causes: Causes) -> None:
    name = get_str(port, "name", path, causes)
    if require_name and not name:
        causes.append(required(child(path, "name")))
    elif name:
        causes.extend(each(child(path, "name"), name, dns1123_label_errors(name)))
        if name in names:
            causes.append(duplicate(child(path, "name"), name))
        names.add(name)
    number = get_int(port, "port", path, causes) or 0
    causes.extend(each(child(path, "port"), number, port_num_errors(number)))
    causes.extend(enum(child(path, "protocol"), get_str(port, "protocol", path, causes), PROTOCOLS))
    causes.extend(port_num_or_name(port, "targetPort", path, causes))
    get_str(port, "appProtocol", path, causes)


def validate_service(obj: Obj) -> Causes:
    causes: Causes = []
    svc_spec = get_map(obj, "spec", "", causes)
    kind = get_str(svc_spec, "type", "spec", causes)
    cluster_ip = get_str(svc_spec, "clusterIP", "spec", causes)
    headless = cluster_ip == "None"
    ports = get_maps(svc_spec, "ports", "spec", causes)
    if not ports and not headless and kind != "ExternalName":
        causes.append(required("spec.ports"))
    if kind in ("LoadBalancer", "NodePort") and headless:
        causes.append(invalid("spec.clusterIP", cluster_ip, f"may not be set to 'None' for {kind} services"))
    if kind == "ExternalName":
        if cluster_ip:
            causes.append(forbidden("spec.clusterIP", "must be empty for ExternalName services"))
        external_name = get_str(svc_spec, "externalName", "spec", causes)
        if external_name:
            causes.extend(each("spec.externalName", external_name, dns1123_subdomain_errors(external_name.removesuffix("."))))
        else:
            causes.append(required("spec.externalName"))
    names: set[str] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    seen_node_ports: set[tuple[Any, Any]] = set()
    for port_path, port in ports:
        _validate_service_port(port, port_path, require_name=len(ports) > 1, names=names, causes=causes)
        pair = (port.get("protocol"), port.get("port"))
        if all(isinstance(v, (str, int)) for v in pair):
            if pair in seen_ports:
                causes.append(duplicate(port_path, {"port": pair[1], "protocol": pair[0]}))
            seen_ports.add(pair)
        node_port = get_int(port, "nodePort", port_path, causes) or 0
        if not node_port:
            continue
        if kind == "ClusterIP":
            causes.append(forbidden(child(port_path, "nodePort"), "may not be used when `type` is 'ClusterIP'"))
        elif not 0 < node_port <= 65535:
            causes.extend(each(child(port_path, "nodePort"), node_port, port_num_errors(node_port)))
        # whether it is in --service-node-port-range is the allocator's answer (apiserver/allocators.py)
        if (port.get("protocol"), node_port) in seen_node_ports:
            causes.append(duplicate(child(port_path, "nodePort"), node_port))
        seen_node_ports.add((port.get("protocol"), node_port))
    read_labels(svc_spec, "selector", "spec", causes)
    affinity = get_str(svc_spec, "sessionAffinity", "spec", causes)
    causes.extend(enum("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    affinity_config = get_opt_map(svc_spec, "sessionAffinityConfig", "spec", causes)
    if affinity == "None" and affinity_config is not None:
        causes.append(forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"))
    elif affinity == "ClientIP":
        client_ip = get_opt_map(affinity_config or {}, "clientIP", "spec.sessionAffinityConfig", causes)
        timeout = get_int(client_ip or {}, "timeoutSeconds", "spec.sessionAffinityConfig.clientIP", causes)
        if affinity_config is None:
            causes.append(required("spec.sessionAffinityConfig", "when session affinity type is ClientIP"))
        elif client_ip is None:
            causes.append(required("spec.sessionAffinityConfig.clientIP", "when session affinity type is ClientIP"))
        elif timeout is None:
            causes.append(required("spec.sessionAffinityConfig.clientIP.timeoutSeconds", "when session affinity type is ClientIP"))
        elif not 0 < timeout <= 86400:
            causes.append(invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout, "must be greater than 0 and less than 86400"))
    if cluster_ip and not headless:
        if ip_errors(cluster_ip):
            causes.append(invalid("spec.clusterIP", cluster_ip, "must be empty, 'None', or a valid IP address"))
    for i, ip in enumerate(get_strs(svc_spec, "externalIPs", "spec", causes)):
        causes.extend(each(index("spec.externalIPs", i), ip, ip_errors(ip)))
    causes.extend(enum("spec.type", kind, ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")))
    external_policy = get_str(svc_spec, "externalTrafficPolicy", "spec", causes)
    accessible = kind in ("NodePort", "LoadBalancer") or (kind == "ClusterIP" and bool(svc_spec.get("externalIPs")))
    if external_policy:
        if not accessible:
            causes.append(invalid("spec.externalTrafficPolicy", external_policy, "may only be set for externally-accessible services"))
        else:
            causes.extend(enum("spec.externalTrafficPolicy", external_policy, ("Cluster", "Local")))
    elif accessible:
        causes.append(required("spec.externalTrafficPolicy"))
    internal_policy = get_str(svc_spec, "internalTrafficPolicy", "spec", causes)
    if kind != "ExternalName":
        causes.extend(enum("spec.internalTrafficPolicy", internal_policy, ("Cluster", "Local")))
    policy = get_str(svc_spec, "ipFamilyPolicy", "spec", causes)
    causes.extend(enum("spec.ipFamilyPolicy", policy, ("PreferDualStack", "RequireDualStack", "SingleStack"), required_if_empty=False))
    families = get_strs(svc_spec, "ipFamilies", "spec", causes)
    for i, family in enumerate(families):
        causes.extend(enum(index("spec.ipFamilies", i), family, ("IPv4", "IPv6")))
        if family in families[:i]:
            causes.append(duplicate(index("spec.ipFamilies", i), family))
    if len(families) > 2:
        causes.append(invalid("spec.ipFamilies", families, "may specify no more than one IP for each IP family, i.e 192.168.0.0/16,fd00::/8"))
    _ip_family_causes(svc_spec, families, causes)
    return causes



STRATEGY = ServiceStrategy()

"""The nftables table that makes ClusterIPs work inside one pod's network namespace (pure).

Data flow: ``ServicePort`` s (traffic.servicemap) and the node's name -> ``render`` -> the text of
one ``nft -f`` transaction that replaces the table ``ip minik8s-services`` as a whole (declare,
delete, declare again: atomic, so a connection never sees half a table) -> traffic.proxy.nft
runs it inside each pod's namespace (the kubelet calls it for every pod of its node).

What the table does to a packet a pod sends (nat ``output`` hook: locally generated packets,
before routing, so the ClusterIP needs no interface or ARP answer anywhere):

    daddr . protocol . dport  in the verdict map of Service ports with endpoints
        -> the port's chain: ``dnat to`` one endpoint, chosen by
           ``numgen random mod N`` (kube-proxy's random choice), or ``jhash ip saddr mod N``
           for ``sessionAffinity: ClientIP`` (the client is the pod itself, so one pod keeps
           one endpoint while the endpoint set stays the same; no timeout is kept)
    daddr . protocol . dport  of a Service port without usable endpoints (filter ``output``)
        -> ``reject with tcp reset`` (TCP) / ICMP port unreachable (UDP, SCTP): refused at once,
           as kube-proxy's ``REJECT`` rules, never left to time out

Endpoints are ``ServicePort.endpoints_for_internal(node)``: the ready ones, else the serving
and terminating ones; with ``internalTrafficPolicy: Local`` only this node's. Headless Services
(no ClusterIP) have no rules: their names resolve to the pod IPs themselves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable

from traffic.servicemap import Endpoint, ServicePort

TABLE = "minik8s-services"
_PROTO = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


@dataclass(frozen=True)
class Ruleset:
    """One rendering: the nft transaction and the VIPs of UDP ports whose endpoints it lists
    (for clearing stale conntrack entries when those endpoints go away)."""

    text: str
    digest: str
    udp_targets: frozenset[tuple[str, int, str]]  # (vip, port, endpoint ip) of UDP ports


def _chain_name(sp: ServicePort) -> str:
    # Chain names must be unique and short; the key of a Service port is both once hashed.
    h = hashlib.sha1(f"{sp.key}/{sp.protocol}".encode()).hexdigest()[:12]
    return f"svc-{sp.namespace[:20]}-{sp.service[:20]}-{h}"


def _dnat(sp: ServicePort, endpoints: tuple[Endpoint, ...]) -> str:
    if len(endpoints) == 1:
        return f"dnat to {endpoints[0].ip}:{endpoints[0].port}"
    chooser = "jhash ip saddr" if sp.session_affinity else "numgen random"
    items = ", ".join(f"{i} : {e.ip} . {e.port}" for i, e in enumerate(endpoints))
    return f"dnat to {chooser} mod {len(endpoints)} map {{ {items} }}"


def render(ports: Iterable[ServicePort], *, node: str | None = None) -> Ruleset:
    """The whole table for pods of ``node`` (see the module docstring)."""
    chains: list[str] = []
    vmap: list[str] = []
    rejects: list[str] = []
    udp: set[tuple[str, int, str]] = set()
    for sp in ports:
        proto = _PROTO.get(sp.protocol)
        if not sp.cluster_ip or proto is None or not sp.port:
            continue
        endpoints = sp.endpoints_for_internal(node=node)
        comment = f'comment "{sp.key}/{sp.protocol}"'
        if not endpoints:
            how = "reject with tcp reset" if proto == "tcp" else "reject"
            rejects.append(f"    ip daddr {sp.cluster_ip} {proto} dport {sp.port} {how} {comment}")
            continue
        name = _chain_name(sp)
        # nft accepts a port in ``dnat to`` only after a transport protocol match.
        chains.append(f"  chain {name} {{\n    meta l4proto {proto} {_dnat(sp, endpoints)} {comment}\n  }}")
        vmap.append(f"{sp.cluster_ip} . {proto} . {sp.port} : goto {name}")
        if proto == "udp":
            udp.update((sp.cluster_ip, sp.port, e.ip) for e in endpoints)
    lines = [f"table ip {TABLE}", f"delete table ip {TABLE}", f"table ip {TABLE} {{"]
    lines += chains
    lines.append("  chain nat-output {\n    type nat hook output priority -100; policy accept;")
    if vmap:
        lines.append("    ip daddr . meta l4proto . th dport vmap {\n      " + ",\n      ".join(vmap) + "\n    }")
    lines.append("  }")
    lines.append("  chain filter-output {\n    type filter hook output priority 0; policy accept;")
    lines += rejects
    lines.append("  }")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    return Ruleset(text=text, digest=hashlib.sha1(text.encode()).hexdigest(), udp_targets=frozenset(udp))


def stale_udp(old: Ruleset | None, new: Ruleset) -> list[tuple[str, int, str]]:
    """UDP (vip, port, endpoint) pairs that ``old`` listed and ``new`` does not: their conntrack
    entries would keep sending a flow to a gone endpoint (kube-proxy clears them too)."""
    if old is None:
        return []
    return sorted(old.udp_targets - new.udp_targets)

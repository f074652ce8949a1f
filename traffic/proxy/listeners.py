"""Which host sockets ``minik8s proxy`` should hold open (pure): ServicePorts -> listeners -> a diff.

Data flow: ``traffic.watch.ServiceWatch.ports()`` -> ``desired(ports, nodeport_addresses=...)``:
one ``Listener`` (address, port, protocol) per ``--nodeport-addresses`` address at every
ServicePort's ``nodePort``, and one per ``status.loadBalancer.ingress[].ip`` at the Service's own
``port``, each mapped to the ServicePort that serves it (two ServicePorts asking for one socket:
the first by key keeps it, the other is a ``Conflict``). ``diff(desired, current)`` against the
listeners that are open -> ``Plan``: which to open, which to close, and which stay open with a
new target (endpoints, affinity): a socket is never reopened because its endpoints moved.

``traffic.proxy.server`` applies a Plan with the relays of ``traffic.proxy.userspace``. No I/O here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from traffic.servicemap import ServicePort

# kube-proxy serves TCP, UDP and SCTP; a user-space relay here does TCP and UDP.
PROTOCOLS = ("TCP", "UDP")
DEFAULT_NODEPORT_ADDRESSES = ("127.0.0.1",)


@dataclass(frozen=True, order=True)
class Listener:
    """One socket of the proxy: ``address:port/protocol``."""

    address: str
    port: int
    protocol: str

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}/{self.protocol.lower()}"

    @property
    def wildcard(self) -> bool:
        return ipaddress.ip_address(self.address).is_unspecified


@dataclass(frozen=True)
class Conflict:
    """A listener two ServicePorts ask for: ``winner`` serves it, ``loser`` is not served there."""

    listener: Listener
    winner: str
    loser: str
    reason: str  # "NodePort" or "LoadBalancer": what the loser wanted it for


@dataclass(frozen=True)
class Desired:
    listeners: dict[Listener, ServicePort] = field(default_factory=dict)
    conflicts: tuple[Conflict, ...] = ()
    unsupported: tuple[str, ...] = ()  # keys of ServicePorts whose protocol no relay speaks


@dataclass(frozen=True)
class Plan:
    open: dict[Listener, ServicePort] = field(default_factory=dict)
    close: tuple[Listener, ...] = ()
    retarget: dict[Listener, ServicePort] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.open or self.close or self.retarget)


def parse_addresses(value: str | Iterable[str]) -> tuple[str, ...]:
    """``--nodeport-addresses``: comma-separated IP addresses (``0.0.0.0``/``::`` = every address),
    normalised and deduplicated in order. Raises ValueError on anything else (CIDRs included)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for raw in items:
        raw = raw.strip()
        if not raw:
            continue
        try:
            address = str(ipaddress.ip_address(raw))
        except ValueError:
            raise ValueError(f"{raw!r} is not an IP address") from None
        if address not in out:
            out.append(address)
    if not out:
        raise ValueError("at least one address is needed")
    return tuple(out)


def _overlaps(a: Listener, b: Listener) -> bool:
    """Whether two listeners want the same socket: one port and protocol, and the same address
    or a wildcard of the same family (binding 127.0.0.1:P fails while 0.0.0.0:P is held)."""
    if a.port != b.port or a.protocol != b.protocol:
        return False
    if a.address == b.address:
        return True
    fa, fb = ipaddress.ip_address(a.address), ipaddress.ip_address(b.address)
    return fa.version == fb.version and (fa.is_unspecified or fb.is_unspecified)


def desired(ports: Iterable[ServicePort], *,
            nodeport_addresses: Iterable[str] = DEFAULT_NODEPORT_ADDRESSES, load_balancers: bool = True) -> Desired:
    """The listeners the ServicePorts call for, each with the ServicePort it relays to (without
    ``load_balancers``: the NodePorts only, as a kubelet serves them on its node's address)."""
    # Wildcards first, so that 0.0.0.0 is the one held when 127.0.0.1 is asked for as well.
    addresses = tuple(sorted(nodeport_addresses, key=lambda a: not ipaddress.ip_address(a).is_unspecified))
    wanted: list[tuple[Listener, ServicePort, str]] = []
    unsupported: list[str] = []
    for sp in sorted(ports, key=lambda p: (p.key, p.protocol)):
        if not sp.node_port and not sp.load_balancer_ips:
            continue
        if sp.protocol not in PROTOCOLS:
            unsupported.append(sp.key)
            continue
        if sp.node_port:
            wanted.extend((Listener(a, sp.node_port, sp.protocol), sp, "NodePort") for a in addresses)
        if sp.port and load_balancers:
            wanted.extend((Listener(str(ipaddress.ip_address(ip)), sp.port, sp.protocol), sp, "LoadBalancer")
                          for ip in sp.load_balancer_ips if _is_ip(ip))
    chosen: dict[Listener, ServicePort] = {}
    conflicts: list[Conflict] = []
    for listener, sp, why in wanted:
        holder = next((other for other in chosen if _overlaps(other, listener)), None)
        if holder is None:
            chosen[listener] = sp
        elif chosen[holder].key != sp.key:  # the same ServicePort twice: the held socket serves it
            conflicts.append(Conflict(listener, chosen[holder].key, sp.key, why))
    return Desired(chosen, tuple(conflicts), tuple(unsupported))


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def diff(want: Mapping[Listener, ServicePort], have: Mapping[Listener, ServicePort]) -> Plan:
    """Open what is wanted and not held, close what is held and not wanted (closing first: a socket
    whose address moved from 127.0.0.1 to 0.0.0.0 must go before the new one binds), and hand
    the new ServicePort to every held listener whose ServicePort changed."""
    return Plan(open={k: v for k, v in sorted(want.items()) if k not in have},
                close=tuple(sorted(k for k in have if k not in want)),
                retarget={k: v for k, v in sorted(want.items()) if k in have and have[k] != v})


__all__ = ["DEFAULT_NODEPORT_ADDRESSES", "PROTOCOLS", "Conflict", "Desired", "Listener", "Plan", "desired",
           "diff", "parse_addresses"]

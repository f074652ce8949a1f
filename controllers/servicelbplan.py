"""Which loopback address each ``type: LoadBalancer`` Service gets: a pure function of all Services.

Data flow: the Services (from the informer cache) and the pool (``--load-balancer-ip-range``,
default ``127.240.0.0/16``: every 127/8 address is this machine's, so ``minik8s proxy`` can
listen there and the address works here) -> ``assign`` -> for each Service key the address its
``status.loadBalancer.ingress`` should hold (None: no address). The rules:

- a Service keeps the pool address its status already names (stable across restarts: the status
  is the only record), unless an older Service holds it too;
- else its ``spec.loadBalancerIP`` (deprecated) if that is in the pool and free; if it is taken the
  Service waits (no other address: the user asked for that one);
- else the lowest free address of the pool;
- Services with ``spec.loadBalancerClass`` are another implementation's: never touched, but their
  pool addresses count as taken; Services of another type get no address (their status is cleared).

Deterministic (Services are taken oldest first, then by namespace/name), so reconciles computed
from the same cache agree.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

Obj = Mapping[str, Any]

DEFAULT_POOL = "127.240.0.0/16"


def key_of(svc: Obj) -> str:
    meta = svc.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def managed(svc: Obj) -> bool:
    """Whether this controller decides the Service's load balancer status (no other class claims it)."""
    return not (svc.get("spec") or {}).get("loadBalancerClass")


def wants_address(svc: Obj) -> bool:
    spec = svc.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and managed(svc) and not (svc.get("metadata") or {}).get("deletionTimestamp")


def status_ips(svc: Obj) -> list[str]:
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [str(i["ip"]) for i in ingress if isinstance(i, Mapping) and i.get("ip")]


def desired_ingress(ip: str | None) -> list[dict[str, Any]]:
    return [{"ip": ip, "ipMode": "VIP"}] if ip else []


def _in_pool(ip: str, pool: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return addr in pool and addr != pool.network_address and addr != pool.broadcast_address


def _order(svc: Obj) -> tuple[str, str]:
    meta = svc.get("metadata") or {}
    return str(meta.get("creationTimestamp") or ""), key_of(svc)


def assign(services: Iterable[Obj], pool: ipaddress.IPv4Network | ipaddress.IPv6Network) -> dict[str, str | None]:
    """key -> the address its status should name, for every Service this controller manages."""
    ordered = sorted(services, key=_order)
    taken: set[str] = set()
    for svc in ordered:  # other implementations' addresses are theirs
        if not managed(svc):
            taken.update(ip for ip in status_ips(svc) if _in_pool(ip, pool))
    out: dict[str, str | None] = {}
    pending: list[Obj] = []
    for svc in ordered:
        if not managed(svc):
            continue
        if not wants_address(svc):
            out[key_of(svc)] = None
            continue
        requested = str((svc.get("spec") or {}).get("loadBalancerIP") or "")
        kept = next((ip for ip in status_ips(svc) if _in_pool(ip, pool) and ip not in taken
                     and requested in ("", ip)), None)
        if kept:
            taken.add(kept)
            out[key_of(svc)] = kept
        else:
            pending.append(svc)
    free = _free(pool, taken)
    for svc in pending:
        requested = str((svc.get("spec") or {}).get("loadBalancerIP") or "")
        if requested:
            ip: str | None = requested if _in_pool(requested, pool) and requested not in taken else None
        else:
            ip = next(free, None)
            while ip is not None and ip in taken:
                ip = next(free, None)
        if ip:
            taken.add(ip)
        out[key_of(svc)] = ip
    return out


def _free(pool: ipaddress.IPv4Network | ipaddress.IPv6Network, taken: set[str]) -> Any:
    for addr in pool.hosts():
        ip = str(addr)
        if ip not in taken:
            yield ip


def status_update(svc: Obj, ip: str | None) -> dict[str, Any] | None:
    """The Service with the status to write, or None when its status already says so."""
    current = (svc.get("status") or {}).get("loadBalancer") or {}
    wanted = desired_ingress(ip)
    if (current.get("ingress") or []) == wanted:
        return None
    body = {**svc, "status": {**(svc.get("status") or {}), "loadBalancer": {"ingress": wanted} if wanted else {}}}
    return body

"""Service ClusterIPs and NodePorts, allocated in etcd so that several apiservers never hand one out twice.

After Kubernetes 1.33's allocators (KEP-1880, IPAddress objects; KEP-3070, the static band): one
etcd key per allocated value, created with the storage layer's create-if-absent, so the allocation
state lives in etcd and not in any apiserver process:

- ``/registry/networking.k8s.io/ipaddresses/<ip>``: a ``networking.k8s.io/v1`` ``IPAddress`` whose
  ``spec.parentRef`` names the Service (and an annotation its uid);
- ``/registry/minik8s.io/servicenodeports/<port>``: ``{namespace, name, uid}`` of the Service. One
  key per port number: a Service may use the same number for TCP and UDP, no other Service may.

Data flow: the Service strategy (``apiserver/kinds/core/service.py``) asks ``ServiceAllocations``
(reached through its ``CreateContext``) on create and update; a value already claimed by the same
Service uid is its own (so retried writes are idempotent). Releases happen after the write is
committed, from the Service watch, in ``AllocationRepair`` (run by every apiserver; the deletes are
compare-and-swap, so two apiservers releasing the same key is harmless): a deleted Service frees
its values at once, an update frees those it no longer uses, and a periodic pass (Kubernetes'
repair controllers) frees keys whose Service never came to be (a create that failed after
allocating) and records keys for Services that lack them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable

import orjson

from machinery import errors
from machinery.errors import StatusCause

from .storage import KeyExistsError, KeyNotFoundError, RevisionConflictError, Storage, StorageUnavailableError

if TYPE_CHECKING:
    from .registry import Registry

log = logging.getLogger(__name__)

IP_PREFIX = b"/registry/networking.k8s.io/ipaddresses/"
PORT_PREFIX = b"/registry/minik8s.io/servicenodeports/"
SERVICE_PREFIX = b"/registry/core/services/"
OWNER_UID = "minik8s.io/service-uid"
MANAGED_BY = "ipallocator.k8s.io"
DEFAULT_NODE_PORT_RANGE = "30000-32767"


@dataclass(frozen=True)
class Owner:
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class Claim:
    """One stored allocation key: who holds it, since when, at which etcd revision."""

    owner: Owner
    created: float
    revision: int


def parse_port_range(text: str) -> tuple[int, int]:
    """``30000-32767`` (or ``30000+2767`` as Kubernetes also accepts) -> (first, last)."""
    text = text.strip()
    try:
        if "+" in text:
            base, extra = text.split("+", 1)
            first, last = int(base), int(base) + int(extra)
        elif "-" in text:
            a, b = text.split("-", 1)
            first, last = int(a), int(b)
        else:
            first = last = int(text)
    except ValueError:
        raise ValueError(f"invalid port range {text!r}: expected FIRST-LAST") from None
    if not 0 < first <= last <= 65535:
        raise ValueError(f"invalid port range {text!r}")
    return first, last


def static_band(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> int:
    """How many addresses at the bottom of the range dynamic allocation avoids (KEP-3070's
    ``min(max(16, size/16), 256)``, none for ranges of 16 addresses or fewer)."""
    size = net.num_addresses
    if size <= 16:
        return 0
    return min(max(16, size // 16), 256)


def usable_offsets(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> range:
    """Offsets from the network address that can be ClusterIPs: not the network or broadcast address."""
    if net.num_addresses <= 2:
        return range(0, net.num_addresses)
    return range(1, net.num_addresses - 1)


def ip_record(ip: str, owner: Owner, now: float) -> bytes:
    return orjson.dumps({
        "apiVersion": "networking.k8s.io/v1", "kind": "IPAddress",
        "metadata": {"name": ip, "uid": f"ip-{owner.uid}-{ip}",
                     "creationTimestamp": datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "labels": {"ipaddress.kubernetes.io/ip-family": "IPv4",
                                "ipaddress.kubernetes.io/managed-by": MANAGED_BY},
                     "annotations": {OWNER_UID: owner.uid, "minik8s.io/allocated-at": repr(now)}},
        "spec": {"parentRef": {"group": "", "resource": "services",
                               "namespace": owner.namespace, "name": owner.name}}})


def _ip_record_of(ip: str, owner: Owner, clock: Callable[[], float]) -> Callable[[], bytes]:
    return lambda: ip_record(ip, owner, clock())


def _candidates(pool: range, base: int, taken: set[str]) -> Iterable[str]:
    """Free addresses of ``pool`` (offsets from ``base``) in random order: a few random picks
    first (a large, mostly free range), then every free one shuffled."""
    if not pool:
        return
    tried: set[int] = set()
    for _ in range(min(32, len(pool))):
        o = random.choice(pool)
        ip = str(ipaddress.ip_address(base + o))
        if o not in tried and ip not in taken:
            tried.add(o)
            yield ip
    rest = [o for o in pool if o not in tried and str(ipaddress.ip_address(base + o)) not in taken]
    random.shuffle(rest)
    for o in rest:
        yield str(ipaddress.ip_address(base + o))


def port_record(owner: Owner, now: float) -> bytes:
    return orjson.dumps({"namespace": owner.namespace, "name": owner.name, "uid": owner.uid, "allocatedAt": now})


def parse_claim(value: bytes, revision: int) -> Claim | None:
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    if doc.get("kind") == "IPAddress":
        meta = doc.get("metadata") or {}
        notes = meta.get("annotations") or {}
        ref = (doc.get("spec") or {}).get("parentRef") or {}
        try:
            created = float(notes.get("minik8s.io/allocated-at") or 0)
        except ValueError:
            created = 0.0
        return Claim(Owner(str(ref.get("namespace") or ""), str(ref.get("name") or ""), str(notes.get(OWNER_UID) or "")),
                     created, revision)
    return Claim(Owner(str(doc.get("namespace") or ""), str(doc.get("name") or ""), str(doc.get("uid") or "")),
                 float(doc.get("allocatedAt") or 0), revision)


def cluster_ips_of(svc: dict[str, Any]) -> set[str]:
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return set()
    ips = list(spec.get("clusterIPs") or []) + ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return {str(ip) for ip in ips if ip and ip != "None"}


def node_ports_of(svc: dict[str, Any]) -> set[int]:
    spec = svc.get("spec") or {}
    if spec.get("type") not in ("NodePort", "LoadBalancer"):
        return set()
    out = {int(p["nodePort"]) for p in spec.get("ports") or [] if isinstance(p, dict) and isinstance(p.get("nodePort"), int) and p["nodePort"]}
    hc = spec.get("healthCheckNodePort")
    if isinstance(hc, int) and hc:
        out.add(hc)
    return out


def owner_of(svc: dict[str, Any]) -> Owner:
    meta = svc.get("metadata") or {}
    return Owner(str(meta.get("namespace") or ""), str(meta.get("name") or ""), str(meta.get("uid") or ""))


class ServiceAllocations:
    """ClusterIP and NodePort allocation against etcd (safe with any number of apiservers)."""

    def __init__(self, storage: Storage, *, cidr: str, node_port_range: str = DEFAULT_NODE_PORT_RANGE,
                 grace_seconds: float = 30.0, release_wait_seconds: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.net = ipaddress.ip_network(cidr, strict=False)
        self.node_ports = parse_port_range(node_port_range)
        self.node_port_range = node_port_range
        self.grace_seconds = grace_seconds  # a claim whose Service does not exist is stale after this
        self.release_wait_seconds = release_wait_seconds
        self.clock = clock

    # ------------------------------------------------------------------ keys
    def ip_key(self, ip: str) -> bytes:
        return IP_PREFIX + ip.encode()

    @staticmethod
    def port_key(port: int) -> bytes:
        return PORT_PREFIX + str(port).encode()

    def in_range(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if addr not in self.net:
            return False
        return int(addr) - int(self.net.network_address) in usable_offsets(self.net)

    def port_in_range(self, port: int) -> bool:
        return self.node_ports[0] <= port <= self.node_ports[1]

    # ------------------------------------------------------------------ ClusterIPs
    async def allocate_ip(self, svc: dict[str, Any], requested: str = "", *, dry_run: bool = False) -> str:
        """For the Service ``svc``: ``requested`` if it is in range and free, else a random free
        address (above the static band first)."""
        owner = owner_of(svc)
        if requested:
            if not self.in_range(requested):
                raise errors.invalid("Service", owner.name, [StatusCause(
                    "FieldValueInvalid",
                    f'Invalid value: ["{requested}"]: failed to allocate IP {requested}: the provided IP ({requested}) '
                    f"is not in the valid range. The range of valid IPs is {self.net}", "spec.clusterIPs")])
            if not await self._claim(self.ip_key(requested), lambda: ip_record(requested, owner, self.clock()),
                                     owner, dry_run=dry_run, is_used=lambda svc: requested in cluster_ips_of(svc)):
                raise errors.invalid("Service", owner.name, [StatusCause(
                    "FieldValueInvalid",
                    f'Invalid value: ["{requested}"]: failed to allocate IP {requested}: provided IP is already allocated',
                    "spec.clusterIPs")])
            return requested
        offsets = usable_offsets(self.net)
        band = static_band(self.net)
        base = int(self.net.network_address)
        deadline = time.monotonic() + self.release_wait_seconds
        taken: set[str] = set()
        while True:
            before, taken = taken, {kv.key[len(IP_PREFIX):].decode() for kv in await self._list(IP_PREFIX)}
            if not before or taken != before:
                for pool in (range(max(offsets.start, band + 1), offsets.stop),
                             range(offsets.start, min(band + 1, offsets.stop))):
                    for ip in _candidates(pool, base, taken):
                        if await self._claim(self.ip_key(ip), _ip_record_of(ip, owner, self.clock), owner,
                                             dry_run=dry_run, is_used=None):
                            return ip
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)  # full: a Service just deleted frees its address in a moment
        raise errors.InternalError(message="Internal error occurred: failed to allocate a serviceIP: range is full")

    # ------------------------------------------------------------------ NodePorts
    async def allocate_port(self, svc: dict[str, Any], requested: int = 0, *, field: str, health_check: bool = False,
                            dry_run: bool = False) -> int:
        """For ``svc``: ``requested`` if it is in the node port range and free (or this Service's
        already), else a random free one."""
        owner = owner_of(svc)
        if requested:
            prefix = f"failed to allocate requested HealthCheck NodePort {requested}: " if health_check else ""
            if not self.port_in_range(requested):
                raise errors.invalid("Service", owner.name, [StatusCause(
                    "FieldValueInvalid", f"Invalid value: {requested}: {prefix}provided port is not in the valid range. "
                    f"The range of valid ports is {self.node_ports[0]}-{self.node_ports[1]}", field)])
            if not await self._claim(self.port_key(requested), lambda: port_record(owner, self.clock()), owner,
                                     dry_run=dry_run, is_used=lambda svc: requested in node_ports_of(svc)):
                raise errors.invalid("Service", owner.name, [StatusCause(
                    "FieldValueInvalid", f"Invalid value: {requested}: {prefix}provided port is already allocated", field)])
            return requested
        deadline = time.monotonic() + self.release_wait_seconds
        taken: set[int] = set()
        while True:
            before, taken = taken, {int(kv.key[len(PORT_PREFIX):]) for kv in await self._list(PORT_PREFIX)
                                    if kv.key[len(PORT_PREFIX):].isdigit()}
            if not before or taken != before:
                free = [p for p in range(self.node_ports[0], self.node_ports[1] + 1) if p not in taken]
                random.shuffle(free)
                for port in free:
                    if await self._claim(self.port_key(port), lambda: port_record(owner, self.clock()), owner,
                                         dry_run=dry_run, is_used=None):
                        return port
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)  # full: a Service just deleted frees its ports in a moment
        raise errors.InternalError(message="Internal error occurred: failed to allocate a nodePort: range is full")

    # ------------------------------------------------------------------ release
    async def release(self, key: bytes, uid: str, *, older_than_revision: int | None = None) -> bool:
        """Delete the claim ``key`` if ``uid`` still holds it (compare-and-swap: never someone else's)."""
        try:
            kv = await self.storage.get(key)
        except KeyNotFoundError:
            return False
        claim = parse_claim(kv.value, kv.mod_revision)
        if claim is None or claim.owner.uid != uid:
            return False
        if older_than_revision is not None and kv.mod_revision >= older_than_revision:
            return False
        try:
            await self.storage.delete(key, expected_revision=kv.mod_revision)
        except (KeyNotFoundError, RevisionConflictError):
            return False
        return True

    async def release_values(self, owner_uid: str, *, ips: Iterable[str] = (), ports: Iterable[int] = (),
                             older_than_revision: int | None = None) -> None:
        for ip in ips:
            await self.release(self.ip_key(ip), owner_uid, older_than_revision=older_than_revision)
        for port in ports:
            await self.release(self.port_key(port), owner_uid, older_than_revision=older_than_revision)

    # ------------------------------------------------------------------ internals
    async def _list(self, prefix: bytes) -> list[Any]:
        try:
            items, _ = await self.storage.list(prefix)
        except StorageUnavailableError as e:
            raise errors.ServiceUnavailableError(message=str(e), retry_after_seconds=1)
        return items

    async def _claim(self, key: bytes, record: Callable[[], bytes], owner: Owner, *, dry_run: bool,
                     is_used: Callable[[dict[str, Any]], bool] | None) -> bool:
        """Whether ``owner`` now holds ``key``. With ``is_used`` (a requested value), a stale claim
        (its Service gone or no longer using the value) is waited out or taken over."""
        deadline = time.monotonic() + self.release_wait_seconds
        while True:
            try:
                if dry_run:
                    kv = await self.storage.get(key)
                else:
                    await self.storage.create(key, record())
                    return True
            except KeyExistsError:
                try:
                    kv = await self.storage.get(key)
                except KeyNotFoundError:
                    continue  # released in between: try again
            except KeyNotFoundError:
                return True  # dry run: free
            except StorageUnavailableError as e:
                raise errors.ServiceUnavailableError(message=str(e), retry_after_seconds=1)
            claim = parse_claim(kv.value, kv.mod_revision)
            if claim is not None and claim.owner.uid == owner.uid:
                return True
            if is_used is None or claim is None:
                return False
            state = await self._holder_state(claim, is_used)
            if state == "holds":
                return False
            if state == "dropped" or self.clock() - claim.created > self.grace_seconds:
                if dry_run:
                    return True
                try:
                    await self.storage.delete(key, expected_revision=kv.mod_revision)
                except (KeyNotFoundError, RevisionConflictError):
                    pass
                continue
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)  # a deleted holder's release is on its way (AllocationRepair)

    async def _holder_state(self, claim: Claim, is_used: Callable[[dict[str, Any]], bool]) -> str:
        """``holds``: the claim's Service exists and uses the value; ``dropped``: it exists and was
        written after the claim without the value; ``unknown``: it does not exist (deleted, or a
        create still in flight)."""
        key = SERVICE_PREFIX + f"{claim.owner.namespace}/{claim.owner.name}".encode()
        try:
            kv = await self.storage.get(key)
        except KeyNotFoundError:
            return "unknown"
        except StorageUnavailableError as e:
            raise errors.ServiceUnavailableError(message=str(e), retry_after_seconds=1)
        try:
            svc = orjson.loads(kv.value)
        except orjson.JSONDecodeError:
            return "unknown"
        if (svc.get("metadata") or {}).get("uid") != claim.owner.uid:
            return "unknown"
        if is_used(svc):
            return "holds"
        return "dropped" if kv.mod_revision > claim.revision else "unknown"


class AllocationRepair:
    """Frees what Services no longer use and records what they use, in every apiserver.

    Events from the Service watch cache free values right after the write that dropped them;
    ``repair`` (at start and every ``interval`` seconds) is Kubernetes' repair controller:
    claims whose Service is gone (after ``allocations.grace_seconds``) are freed, Services whose
    values have no claim get one (a warning when another Service holds it).
    """

    def __init__(self, registry: "Registry", allocations: ServiceAllocations, *, interval: float = 60.0) -> None:
        self.registry = registry
        self.allocations = allocations
        self.interval = interval

    async def run(self) -> None:
        res = self.registry.resources.by_kind("Service", "")
        assert res is not None
        last_repair = 0.0
        while True:
            try:
                await self.registry.cache(res).ready.wait()
                watcher = self.registry.cache(res).watch(from_revision=None, matches=lambda o: True)
                await self.repair()
                last_repair = time.monotonic()
                while True:
                    timeout = max(0.1, self.interval - (time.monotonic() - last_repair))
                    try:
                        item = await asyncio.wait_for(watcher.queue.get(), timeout)
                    except asyncio.TimeoutError:
                        await self.repair()
                        last_repair = time.monotonic()
                        continue
                    if item is None or isinstance(item, Exception):
                        break  # the cache restarted or we were too slow: watch again and repair
                    if item.type == "DELETED":
                        svc = item.entry.obj
                        await self.allocations.release_values(owner_of(svc).uid, ips=cluster_ips_of(svc),
                                                              ports=node_ports_of(svc))
                    elif item.type == "MODIFIED" and item.prev is not None:
                        old, new = item.prev.obj, item.entry.obj
                        await self.allocations.release_values(
                            owner_of(new).uid, ips=cluster_ips_of(old) - cluster_ips_of(new),
                            ports=node_ports_of(old) - node_ports_of(new), older_than_revision=item.revision)
                self.registry.cache(res).unwatch(watcher)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - etcd trouble: try again shortly
                log.warning("service allocation repair: %s", e)
                await asyncio.sleep(1.0)

    async def repair(self) -> None:
        res = self.registry.resources.by_kind("Service", "")
        assert res is not None
        a = self.allocations
        ip_items, _ = await a.storage.list(IP_PREFIX)
        port_items, _ = await a.storage.list(PORT_PREFIX)
        services, _ = await a.storage.list(SERVICE_PREFIX)
        by_uid: dict[str, dict[str, Any]] = {}
        for kv in services:
            try:
                svc = orjson.loads(kv.value)
            except orjson.JSONDecodeError:
                continue
            by_uid[owner_of(svc).uid] = svc
        now = a.clock()
        claimed_ips: dict[str, Claim] = {}
        claimed_ports: dict[int, Claim] = {}
        for kv in ip_items:
            ip = kv.key[len(IP_PREFIX):].decode()
            claim = parse_claim(kv.value, kv.mod_revision)
            if claim is None or not a.in_range(ip):
                continue  # another range's (an apiserver with other flags on this etcd)
            claimed_ips[ip] = claim
            svc = by_uid.get(claim.owner.uid)
            if (svc is None or ip not in cluster_ips_of(svc)) and now - claim.created > a.grace_seconds:
                log.info("releasing ClusterIP %s of %s/%s: not in use", ip, claim.owner.namespace, claim.owner.name)
                await a.release(kv.key, claim.owner.uid)
        for kv in port_items:
            text = kv.key[len(PORT_PREFIX):].decode()
            claim = parse_claim(kv.value, kv.mod_revision)
            if claim is None or not text.isdigit() or not a.port_in_range(int(text)):
                continue
            claimed_ports[int(text)] = claim
            svc = by_uid.get(claim.owner.uid)
            if (svc is None or int(text) not in node_ports_of(svc)) and now - claim.created > a.grace_seconds:
                log.info("releasing NodePort %s of %s/%s: not in use", text, claim.owner.namespace, claim.owner.name)
                await a.release(kv.key, claim.owner.uid)
        for uid, svc in by_uid.items():
            owner = owner_of(svc)
            for ip in cluster_ips_of(svc):
                if not a.in_range(ip):
                    continue
                holder = claimed_ips.get(ip)
                if holder is None:
                    await self._record(a.ip_key(ip), ip_record(ip, owner, now), owner, f"ClusterIP {ip}")
                elif holder.owner.uid != uid:
                    log.warning("ClusterIP %s of %s/%s is also held by %s/%s", ip, owner.namespace, owner.name,
                                holder.owner.namespace, holder.owner.name)
            for port in node_ports_of(svc):
                if not a.port_in_range(port):
                    continue
                held = claimed_ports.get(port)
                if held is None:
                    await self._record(a.port_key(port), port_record(owner, now), owner, f"NodePort {port}")
                elif held.owner.uid != uid:
                    log.warning("NodePort %s of %s/%s is also held by %s/%s", port, owner.namespace, owner.name,
                                held.owner.namespace, held.owner.name)

    async def _record(self, key: bytes, value: bytes, owner: Owner, what: str) -> None:
        try:
            await self.allocations.storage.create(key, value)
            log.info("recorded %s of %s/%s", what, owner.namespace, owner.name)
        except KeyExistsError:
            pass

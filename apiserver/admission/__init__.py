"""The admission chain, in Kubernetes' order: LimitRanger, ServiceAccount, NodeRestriction, the
Docker-socket ban, PodSecurity, ResourceQuota.

The registry's create path calls ``mutate`` after the kind's defaults (before
``prepare_for_create``, as Kubernetes' mutating admission runs before the strategy) and
``validate`` after the object passed validation, right before it is stored; its update path
calls ``validate_update`` for every write (subresources too) and its delete path
``validate_delete``; ``validate``/``validate_update`` answer the ``Warning``s of the write. The
request's user is ``apiserver.auth.context.request_user()`` (the insecure superuser in process
and on the plain-HTTP port):

- ``mutate``: a pod gets the LimitRanges' container defaults (``limitranger.default_pod``), then
  its ServiceAccount and API token volume (``serviceaccount``);
- NodeRestriction (``noderestriction``): a kubelet's identity writes only its own Node, Lease and
  pods' status (403 otherwise); ``admit_token_request`` for ``serviceaccounts/token``;
- the Docker engine's socket is never mounted (``dockersocket``): 403 for pods and hostPath or
  local PersistentVolumes, a ``Warning`` for workload templates;
- Pod Security (``podsecurity``): the namespace's enforce level refuses pods (403), its warn level
  answers ``Warning``s (pods and workload templates), its audit level an audit annotation
  (``apiserver.auth.context.add_audit_annotation``); invalid namespace labels are a 422;
- ``validate``: a pod or claim is checked against the LimitRanges' min/max/ratio
  (``limitranger.violations``), then every ResourceQuota of the namespace that covers the object
  is charged (``resourcequota.evaluate`` / ``charge``): the new ``status.used`` is written to
  the quota through the registry's compare-and-swap update of ``/status`` (re-checked against
  the current quota after a conflict), so two creates racing for the last slot cannot both win
  (within one apiserver the charges of a namespace are also made one at a time). A dry run is
  checked but charges nothing. Refusals are 403 Forbidden with Kubernetes'
  ``<resource> "<name>" is forbidden: <reason>``.

Both read the LimitRanges and quotas from the registry's watch caches after they have seen this
apiserver's own last write (a LimitRange created a moment ago applies). Objects that fail to be
stored after the charge stay charged until the resource quota controller recalculates (as in
Kubernetes).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from machinery import errors
from machinery.quota import ResourceList

from . import limitranger, noderestriction, podsecurity, resourcequota
from .resourcequota import Refused
from .security import SecurityAdmission, forbidden_named

if TYPE_CHECKING:
    from ..kinds.base import Strategy
    from ..registry import Registry

Obj = dict[str, Any]
_LOCK_STRIPES = 64
# What quota evaluates on update besides creates (Kubernetes: services and claims; pods only on resize).
UPDATE_EVALUATED = ("services", "persistentvolumeclaims")


def _namespace(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def forbidden(res: Strategy, obj: Obj, reason: str) -> errors.ForbiddenError:
    return forbidden_named(res, _name(obj), reason)


class Admission:
    """The admission chain of one registry (it reads the registry's caches and writes through it)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        # The charges of one namespace are made one at a time in this process (as Kubernetes'
        # quota evaluator works per namespace), so they do not keep conflicting with each other;
        # the compare-and-swap still guards against other apiservers and the controller.
        self._locks = [asyncio.Lock() for _ in range(_LOCK_STRIPES)]
        self.security = SecurityAdmission(registry)
        if registry.settings.pod_security_default not in podsecurity.LEVELS:
            raise ValueError(f"--pod-security-default must be one of {', '.join(podsecurity.LEVELS)}, "
                             f"not {registry.settings.pod_security_default!r}")

    async def _namespaced(self, kind: str, namespace: str) -> list[Obj]:
        """The live objects of ``kind`` in ``namespace``, once the cache has seen this apiserver's writes."""
        res = self.registry.resources.by_kind(kind, "")
        if res is None or res.group_resource not in self.registry.caches:
            return []
        cache = await self.registry._fresh_cache(res)
        entries, _ = cache.list(res.namespace_prefix(namespace))
        return [e.obj for e in entries if not (e.obj.get("metadata") or {}).get("deletionTimestamp")]

    def _exists(self, res: Strategy, obj: Obj) -> bool:
        meta = obj.get("metadata") or {}
        return self.registry.cache(res).get(res.key(meta.get("namespace"), str(meta.get("name") or ""))) is not None

    def _lock(self, namespace: str) -> asyncio.Lock:
        return self._locks[hash(namespace) % len(self._locks)]

    async def mutate(self, res: Strategy, obj: Obj) -> None:
        if not res.namespaced or res.group_resource != "pods":
            return
        limit_ranges = await self._namespaced("LimitRange", _namespace(obj))
        if limit_ranges:
            limitranger.default_pod(obj, limit_ranges)
        await self.security.service_account(res, obj)

    async def validate(self, res: Strategy, obj: Obj, *, dry_run: bool) -> list[str]:
        """A create: NodeRestriction, the socket ban, Pod Security, LimitRange bounds, then the
        quotas' charges; the write's warnings."""
        self.security.node_restriction(res, noderestriction.CREATE, name=_name(obj), namespace=_namespace(obj),
                                       obj=obj)
        warnings = await self.security.check(res, obj, None, subresource=None)
        if res.namespaced:
            await self._limit(res, obj)
            await self._charge_quotas(res, obj, None, dry_run=dry_run)
        return warnings

    async def validate_update(self, res: Strategy, new: Obj, old: Obj, *, subresource: str | None,
                              dry_run: bool) -> list[str]:
        """An update (of a subresource too): NodeRestriction, the socket ban and Pod Security; for
        what quota evaluates on update (a Service's type, a claim's size) the increase is charged,
        as Kubernetes' service and claim evaluators do. The write's warnings."""
        self.security.node_restriction(res, noderestriction.UPDATE, name=_name(old), namespace=_namespace(old),
                                       subresource=subresource, obj=new, old=old)
        warnings = await self.security.check(res, new, old, subresource=subresource)
        if subresource is None and res.group_resource in UPDATE_EVALUATED:
            await self._limit(res, new)
            await self._charge_quotas(res, new, old, dry_run=dry_run)
        return warnings

    def validate_delete(self, res: Strategy, obj: Obj) -> None:
        """A delete: NodeRestriction (a kubelet deletes only its own Node and the pods bound to it)."""
        self.security.node_restriction(res, noderestriction.DELETE, name=_name(obj), namespace=_namespace(obj),
                                       old=obj)

    async def admit_token_request(self, namespace: str, name: str, spec: Obj) -> None:
        """``POST serviceaccounts/<name>/token`` (a validated TokenRequest spec): NodeRestriction."""
        await self.security.token_request(namespace, name, spec)

    async def _limit(self, res: Strategy, obj: Obj) -> None:
        if res.group_resource in ("pods", "persistentvolumeclaims"):
            limit_ranges = await self._namespaced("LimitRange", _namespace(obj))
            problems = limitranger.violations(res.group_resource, obj, limit_ranges)
            if problems:
                raise forbidden(res, obj, limitranger.message(problems))

    async def _charge_quotas(self, res: Strategy, obj: Obj, old: Obj | None, *, dry_run: bool) -> None:
        namespace = _namespace(obj)
        async with self._lock(namespace):
            quotas = await self._namespaced("ResourceQuota", namespace)
            if not quotas:
                return
            now = self.registry.clock()
            try:
                charges = resourcequota.evaluate(quotas, res.group_resource, obj, now=now, old=old)
                if dry_run or not charges or (old is None and self._exists(res, obj)):
                    return  # nothing to charge; a create of a name in use fails with AlreadyExists next
                requested = resourcequota.request_of(res.group_resource, obj, now=now, old=old)
                for quota_name in charges:
                    await self._charge(namespace, quota_name, requested)
            except Refused as e:
                raise forbidden(res, obj, str(e))

    async def _charge(self, namespace: str, quota_name: str, requested: ResourceList) -> None:
        """Write the quota's new ``status.used`` with a compare-and-swap; after a conflict the
        registry hands ``add`` the current quota and the check runs again against it."""
        quota_res = self.registry.resources.by_kind("ResourceQuota", "")
        assert quota_res is not None

        def add(current: Obj) -> Obj:
            new_used = resourcequota.charge(current, requested)
            if new_used is not None:
                current.setdefault("status", {})["used"] = new_used
            return current

        try:
            await self.registry._guaranteed_update(quota_res, namespace, quota_name, add, subresource="status",
                                                   precondition=None, dry_run=False)
        except errors.NotFoundError:
            pass  # deleted meanwhile: nothing left to charge

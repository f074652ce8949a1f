"""The security admission plugins' glue: ServiceAccount, NodeRestriction, the Docker-socket ban and
Pod Security, fed from the registry's watch caches.

Data flow: a write (resource, operation, new and old object) + the request's user
(``apiserver.auth.context.request_user()``) -> the pure deciders (``serviceaccount``,
``noderestriction``, ``dockersocket``, ``podsecurity``) with the objects they need read from the
caches (the pod's ServiceAccount, the namespace's labels, the namespace's pods, a token's bound
pod) -> a mutated pod, a 403/422 ``ApiError``, or the write's ``Warning``s (and audit annotations
through ``apiserver.auth.context.add_audit_annotation``). ``apiserver.admission.Admission``
calls it at the registry's hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from machinery import errors
from machinery.errors import StatusCause

from ..auth.context import add_audit_annotation, request_user
from . import dockersocket, noderestriction, podsecurity, serviceaccount

if TYPE_CHECKING:
    from ..kinds.base import Strategy
    from ..registry import Registry

Obj = dict[str, Any]


def _meta(obj: Obj | None) -> Obj:
    return (obj or {}).get("metadata") or {}


def _name(obj: Obj | None) -> str:
    return str(_meta(obj).get("name") or "")


def forbidden_named(res: Strategy, name: str, reason: str, *, causes: list[StatusCause] | None = None
                    ) -> errors.ForbiddenError:
    """Kubernetes' admission refusal: 403 ``<resource> "<name>" is forbidden: <reason>``."""
    return errors.ForbiddenError(message=f'{res.group_resource} "{name}" is forbidden: {reason}',
                                 name=name, group=res.group, kind=res.plural, causes=causes or [])


class SecurityAdmission:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    # ------------------------------------------------------------------ reads
    async def _cached(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        """The object from the watch cache; when it is not there, a consistent read (it may have
        been created through another API server a moment ago); None when it does not exist."""
        res = self.registry.resources.by_kind(kind, "")
        if res is None or res.group_resource not in self.registry.caches:
            return None
        cache = await self.registry._fresh_cache(res)
        entry = cache.get(res.key(namespace, name))
        if entry is not None:
            return entry.obj
        try:
            return (await self.registry.get(res, namespace, name)).obj
        except errors.NotFoundError:
            return None

    async def _policy(self, namespace: str) -> tuple[podsecurity.Policy, list[StatusCause]]:
        ns = await self._cached("Namespace", None, namespace)
        return podsecurity.policy_for(_meta(ns).get("labels"), default_level=self.registry.settings.pod_security_default)

    # ------------------------------------------------------------------ ServiceAccount (mutating)
    async def service_account(self, res: Strategy, pod: Obj) -> None:
        namespace = str(_meta(pod).get("namespace") or "")
        name = serviceaccount.default_account(pod)
        account = await self._cached("ServiceAccount", namespace, name)
        if account is None and name != serviceaccount.DEFAULT_ACCOUNT:
            raise forbidden_named(res, _name(pod), serviceaccount.missing_account(namespace, name))
        if self.registry.settings.service_account_token_volume and serviceaccount.should_automount(account, pod):
            from ..registry import name_suffix  # the registry imports this module: no import cycle at load

            serviceaccount.mount_token(pod, suffix=name_suffix())
        serviceaccount.pull_secrets(pod, account)

    # ------------------------------------------------------------------ NodeRestriction
    def node_restriction(self, res: Strategy, operation: str, *, name: str, namespace: str = "",
                         subresource: str | None = None, obj: Obj | None = None, old: Obj | None = None) -> None:
        user = request_user()
        is_node, node = noderestriction.node_identity(user)
        if not is_node:
            return
        if not node:
            raise forbidden_named(res, name, noderestriction.could_not_identify(user))
        reason = noderestriction.admit(noderestriction.Request(
            node=node, operation=operation, resource=res.group_resource, name=name, namespace=namespace,
            subresource=subresource or "", obj=obj, old=old))
        if reason is not None:
            raise forbidden_named(res, name, reason)

    async def token_request(self, namespace: str, name: str, spec: Obj) -> None:
        """NodeRestriction for ``POST serviceaccounts/<name>/token`` by a kubelet."""
        user = request_user()
        is_node, node = noderestriction.node_identity(user)
        if not is_node:
            return
        res = self.registry.resources.by_kind("ServiceAccount", "")
        assert res is not None
        if not node:
            raise forbidden_named(res, name, noderestriction.could_not_identify(user))
        ref = spec.get("boundObjectRef") or {}
        pod: Obj | None = None
        if ref.get("kind") == "Pod" and ref.get("name") and ref.get("uid"):
            pods = self.registry.resources.by_kind("Pod", "")
            assert pods is not None
            pod = (await self.registry.get(pods, namespace, str(ref["name"]))).obj  # 404 when gone, as Kubernetes
        reason = noderestriction.admit_token_request(node, spec, pod)
        if reason is not None:
            raise forbidden_named(res, name, reason)

    # ------------------------------------------------------------------ the socket ban and Pod Security
    async def check(self, res: Strategy, new: Obj, old: Obj | None, *, subresource: str | None) -> list[str]:
        """A create (``old`` None) or update: 403/422 or the write's warnings."""
        gr = res.group_resource
        if gr == "pods" and subresource in (None, "ephemeralcontainers", "resize"):
            return await self._pod(res, new, old)
        if subresource is not None:
            return []
        if gr == "persistentvolumes":
            found = dockersocket.persistent_volume_violations(new)
            if found:
                raise self._socket_forbidden(res, new, found)
        elif gr == "namespaces":
            return await self._namespace(new, old)
        elif gr in podsecurity.TEMPLATE_PATHS:
            return await self._template(res, new)
        return []

    @staticmethod
    def _socket_forbidden(res: Strategy, obj: Obj, found: list[tuple[str, str]]) -> errors.ForbiddenError:
        causes = [StatusCause("FieldValueForbidden", message, field) for field, message in found]
        return forbidden_named(res, _name(obj), ", ".join(f"{field}: {message}" for field, message in found), causes=causes)

    async def _pod(self, res: Strategy, pod: Obj, old: Obj | None) -> list[str]:
        if old is None:
            found = dockersocket.pod_violations(pod.get("spec") or {})
            if found:
                raise self._socket_forbidden(res, pod, found)
        elif not podsecurity.significant_update(pod, old):
            return []
        policy, problems = await self._policy(str(_meta(pod).get("namespace") or ""))
        verdict = podsecurity.evaluate(policy, _meta(pod), pod.get("spec") or {}, enforce=True, policy_errors=problems)
        for key, value in verdict.audit.items():
            add_audit_annotation(key, value)
        if verdict.forbidden is not None:
            raise forbidden_named(res, _name(pod), verdict.forbidden)
        return verdict.warnings

    async def _template(self, res: Strategy, obj: Obj) -> list[str]:
        template = podsecurity.pod_template(res.group_resource, obj)
        if template is None:
            return []
        meta, spec = template
        prefix = ".".join(podsecurity.TEMPLATE_PATHS[res.group_resource]) + ".spec"
        warnings = [f"{field}: {message}" for field, message in dockersocket.pod_violations(spec, field_prefix=prefix)]
        policy, problems = await self._policy(str(_meta(obj).get("namespace") or ""))
        if not problems and policy.warn.level == policy.audit.level == podsecurity.PRIVILEGED:
            return warnings
        verdict = podsecurity.evaluate(policy, meta, spec, enforce=False, policy_errors=problems)
        for key, value in verdict.audit.items():
            add_audit_annotation(key, value)
        return warnings + verdict.warnings

    async def _namespace(self, ns: Obj, old: Obj | None) -> list[str]:
        default = self.registry.settings.pod_security_default
        policy, problems = podsecurity.policy_for(_meta(ns).get("labels"), default_level=default)
        old_policy, old_problems = (podsecurity.policy_for(_meta(old).get("labels"), default_level=default)
                                    if old is not None else (policy, []))
        if problems and (old is None or problems != old_problems):
            raise errors.invalid("Namespace", _name(ns), problems)
        if old is None or not podsecurity.enforce_tightened(policy, old_policy):
            return []
        pod_res = self.registry.resources.by_kind("Pod", "")
        assert pod_res is not None
        cache = await self.registry._fresh_cache(pod_res)
        entries, _ = cache.list(pod_res.namespace_prefix(_name(ns)))
        return podsecurity.existing_pod_warnings(_name(ns), policy.enforce, [e.obj for e in entries])

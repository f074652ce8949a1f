"""The Pod Security Standards' restricted checks (latest version) as pure functions.

After k8s.io/pod-security-admission/policy: each check reads a pod's metadata and spec and
answers ``None`` or ``(reason, detail)`` in Kubernetes' words. ``RESTRICTED_CHECKS`` lists them
with the baseline checks each one replaces (``capabilities_restricted`` overrides
``capabilities_baseline``, ``restrictedVolumes`` overrides ``hostPathVolumes``, ...); the
restricted level runs them together with the remaining baseline checks (``podsecuritychecks``).

Windows pods skip the Linux-only checks (privilege escalation, capabilities, seccomp) and pods in
a user namespace (``hostUsers: false``) the root-user ones, as in Kubernetes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .podsecuritychecks import (
    RESTRICTED,
    SECCOMP_ALLOWED,
    VOLUMES_ALLOWED,
    VOLUME_TYPES,
    Check,
    Obj,
    Result,
    container_name,
    containers_named,
    containers,
    in_user_namespace,
    is_windows,
    join_quote,
    pluralize,
    proc_mount_restricted,
    seccomp_type,
    security_context,
    who_set,
)


def allow_privilege_escalation(meta: Obj, spec: Obj) -> Result:
    if is_windows(spec):
        return None
    bad = [container_name(c) for c in containers(spec)
           if security_context(c).get("allowPrivilegeEscalation") is not False]
    if not bad:
        return None
    return ("allowPrivilegeEscalation != false",
            f"{containers_named(bad)} must set securityContext.allowPrivilegeEscalation=false")


def capabilities_restricted(meta: Obj, spec: Obj) -> Result:
    if is_windows(spec):
        return None
    missing_drop, adding, forbidden = [], [], set()
    for c in containers(spec):
        caps = security_context(c).get("capabilities")
        if not isinstance(caps, Mapping):
            missing_drop.append(container_name(c))
            continue
        if "ALL" not in (caps.get("drop") or []):
            missing_drop.append(container_name(c))
        added = [str(x) for x in caps.get("add") or [] if x != "NET_BIND_SERVICE"]
        if added:
            adding.append(container_name(c))
            forbidden.update(added)
    details = []
    if missing_drop:
        details.append(f"{containers_named(missing_drop)} "
                       'must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{containers_named(adding)} "
                       f"must not include {join_quote(sorted(forbidden))} in securityContext.capabilities.add")
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def _volume_type(volume: Obj) -> str:
    for t in VOLUME_TYPES:
        if volume.get(t) is not None:
            return t
    return "unknown"


def restricted_volumes(meta: Obj, spec: Obj) -> Result:
    bad, types = [], set()
    for v in spec.get("volumes") or []:
        if any(v.get(t) is not None for t in VOLUMES_ALLOWED):
            continue
        bad.append(str(v.get("name") or ""))
        types.add(_volume_type(v))
    if not bad:
        return None
    return ("restricted volume types",
            f"{pluralize('volume', 'volumes', len(bad))} {join_quote(bad)} {pluralize('uses', 'use', len(bad))} "
            f"{pluralize('restricted volume type', 'restricted volume types', len(types))} {join_quote(sorted(types))}")


def run_as_non_root(meta: Obj, spec: Obj) -> Result:
    if in_user_namespace(spec):
        return None
    pod_value = security_context(spec).get("runAsNonRoot")
    explicit, implicit = [], []
    for c in containers(spec):
        value = security_context(c).get("runAsNonRoot")
        if value is not None:
            if value is False:
                explicit.append(container_name(c))
        elif pod_value is not True:
            implicit.append(container_name(c))
    setters = who_set(pod_value is False, explicit)
    if setters:
        return ("runAsNonRoot != true", f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false")
    if implicit:
        return ("runAsNonRoot != true",
                f"pod or {containers_named(implicit)} must set securityContext.runAsNonRoot=true")
    return None


def _root(sc: Obj) -> bool:
    value: Any = sc.get("runAsUser")
    return value is not None and not isinstance(value, bool) and value == 0


def run_as_user(meta: Obj, spec: Obj) -> Result:
    if in_user_namespace(spec):
        return None
    bad = [container_name(c) for c in containers(spec) if _root(security_context(c))]
    setters = who_set(_root(security_context(spec)), bad)
    return ("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0") if setters else None


def seccomp_profile_restricted(meta: Obj, spec: Obj) -> Result:
    if is_windows(spec):
        return None
    bad_values: set[str] = set()
    pod_type = seccomp_type(security_context(spec))
    pod_bad = pod_type is not None and pod_type not in SECCOMP_ALLOWED
    if pod_bad:
        bad_values.add(str(pod_type))
    pod_set = pod_type is not None and not pod_bad
    explicit, implicit = [], []
    for c in containers(spec):
        t = seccomp_type(security_context(c))
        if t is not None:
            if t not in SECCOMP_ALLOWED:
                explicit.append(container_name(c))
                bad_values.add(t)
        elif not pod_set:
            implicit.append(container_name(c))
    setters = who_set(pod_bad, explicit)
    if setters:
        return ("seccompProfile", f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to "
                                  f"{join_quote(sorted(bad_values))}")
    if implicit:
        return ("seccompProfile", f"pod or {containers_named(implicit)} must set "
                                  'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"')
    return None


RESTRICTED_CHECKS = (
    Check("allowPrivilegeEscalation", RESTRICTED, allow_privilege_escalation),
    Check("capabilities_restricted", RESTRICTED, capabilities_restricted, overrides=("capabilities_baseline",)),
    Check("procMount_restricted", RESTRICTED, proc_mount_restricted, overrides=("procMount",)),
    Check("restrictedVolumes", RESTRICTED, restricted_volumes, overrides=("hostPathVolumes",)),
    Check("runAsNonRoot", RESTRICTED, run_as_non_root),
    Check("runAsUser", RESTRICTED, run_as_user),
    Check("seccompProfile_restricted", RESTRICTED, seccomp_profile_restricted, overrides=("seccompProfile_baseline",)),
)

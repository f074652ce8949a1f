"""The Pod Security Standards' baseline checks (latest version) as pure functions, and how checks run.

After k8s.io/pod-security-admission/policy: every check reads a pod's metadata and spec (plain
JSON mappings) and answers ``None`` (allowed) or ``(reason, detail)`` in Kubernetes' own words,
naming the containers, volumes and values at fault, e.g. ``("privileged", 'container "c" must
not set securityContext.privileged=true')``. ``podsecurityrestricted`` holds the restricted
level's own checks; ``ordered`` puts a level's checks in Kubernetes' order, ``run`` runs them over
a pod and ``forbidden_detail`` joins the failures as the admission's messages show them:
``reason (detail), reason (detail)``.

Only the latest policy version is implemented (Kubernetes 1.37's checks); a namespace that pins
an older ``-version`` is checked against the latest one.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

Obj = Mapping[str, Any]
Result = tuple[str, str] | None
CheckFn = Callable[[Obj, Obj], Result]

PRIVILEGED, BASELINE, RESTRICTED = "privileged", "baseline", "restricted"
LEVELS = (PRIVILEGED, BASELINE, RESTRICTED)

_CAPABILITIES_ALLOWED = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP",
    "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
_SYSCTLS_ALLOWED = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"})
_SELINUX_TYPES_ALLOWED = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
SECCOMP_ALLOWED = frozenset({"RuntimeDefault", "Localhost"})
_APPARMOR_ALLOWED = frozenset({"RuntimeDefault", "Localhost"})
_APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
VOLUMES_ALLOWED = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
                              "persistentVolumeClaim", "projected", "secret"})
VOLUME_TYPES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs",
                 "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile", "vsphereVolume", "quobyte",
                 "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos")


# ---------------------------------------------------------------------------- helpers (policy/helpers.go)
def join_quote(items: Sequence[str]) -> str:
    return '"' + '", "'.join(items) + '"' if items else ""


def pluralize(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def containers(spec: Obj) -> Iterator[Obj]:
    """Init containers, containers, then ephemeral containers (policy/visitor.go)."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, Mapping):
                yield c


def security_context(obj: Obj) -> Obj:
    sc = obj.get("securityContext")
    return sc if isinstance(sc, Mapping) else {}


def container_name(c: Obj) -> str:
    return str(c.get("name") or "")


def is_windows(spec: Obj) -> bool:
    return ((spec.get("os") or {}).get("name")) == "windows"


def in_user_namespace(spec: Obj) -> bool:
    return spec.get("hostUsers") is False


def containers_named(names: Sequence[str]) -> str:
    return f"{pluralize('container', 'containers', len(names))} {join_quote(names)}"


def who_set(pod_bad: bool, bad_containers: Sequence[str]) -> list[str]:
    """``pod`` and/or ``container(s) "a", "b"``: who set a forbidden value."""
    out = ["pod"] if pod_bad else []
    if bad_containers:
        out.append(containers_named(bad_containers))
    return out


# ---------------------------------------------------------------------------- baseline
def app_armor_profile(meta: Obj, spec: Obj) -> Result:
    bad_values: set[str] = set()
    pod_profile = security_context(spec).get("appArmorProfile")
    pod_bad = isinstance(pod_profile, Mapping) and pod_profile.get("type") not in _APPARMOR_ALLOWED
    if pod_bad:
        bad_values.add(str(pod_profile.get("type") or ""))  # type: ignore[union-attr]
    bad = []
    for c in containers(spec):
        profile = security_context(c).get("appArmorProfile")
        if isinstance(profile, Mapping) and profile.get("type") not in _APPARMOR_ALLOWED:
            bad.append(container_name(c))
            bad_values.add(str(profile.get("type") or ""))
    setters = who_set(pod_bad, bad)
    annotations = sorted(f'{k}="{v}"' for k, v in (meta.get("annotations") or {}).items()
                         if k.startswith(_APPARMOR_ANNOTATION_PREFIX)
                         and not (not v or v == "runtime/default" or str(v).startswith("localhost/")))
    values = sorted(bad_values) + annotations
    if annotations:
        setters.append(pluralize("annotation", "annotations", len(annotations)))
    if not setters:
        return None
    return (pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(values)),
            f"{' and '.join(setters)} must not set AppArmor profile type to {join_quote(values)}")


def capabilities_baseline(meta: Obj, spec: Obj) -> Result:
    bad, caps = [], set()
    for c in containers(spec):
        added = [str(x) for x in ((security_context(c).get("capabilities") or {}).get("add") or [])]
        forbidden = [x for x in added if x not in _CAPABILITIES_ALLOWED]
        if forbidden:
            bad.append(container_name(c))
            caps.update(forbidden)
    if not bad:
        return None
    return ("non-default capabilities",
            f"{containers_named(bad)} must not include {join_quote(sorted(caps))} in securityContext.capabilities.add")


def host_namespaces(meta: Obj, spec: Obj) -> Result:
    found = [f"{f}=true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f) is True]
    return ("host namespaces", ", ".join(found)) if found else None


def host_path_volumes(meta: Obj, spec: Obj) -> Result:
    names = [str(v.get("name") or "") for v in spec.get("volumes") or [] if v.get("hostPath") is not None]
    return ("hostPath volumes", f"{pluralize('volume', 'volumes', len(names))} {join_quote(names)}") if names else None


def host_ports(meta: Obj, spec: Obj) -> Result:
    bad, ports = [], set()
    for c in containers(spec):
        used = [str(p.get("hostPort")) for p in c.get("ports") or [] if p.get("hostPort")]
        if used:
            bad.append(container_name(c))
            ports.update(used)
    if not bad:
        return None
    return ("hostPort", f"{containers_named(bad)} "
                        f"{pluralize('uses', 'use', len(bad))} {pluralize('hostPort', 'hostPorts', len(ports))} "
                        f"{', '.join(sorted(ports))}")


def _handler_hosts(handler: Any) -> list[str]:
    if not isinstance(handler, Mapping):
        return []
    return [str(h) for h in ((handler.get("httpGet") or {}).get("host"), (handler.get("tcpSocket") or {}).get("host"))
            if h]


def host_probes_and_lifecycle(meta: Obj, spec: Obj) -> Result:
    bad, hosts = set(), set()
    for c in containers(spec):
        lifecycle = c.get("lifecycle") or {}
        found = [h for handler in (c.get("livenessProbe"), c.get("readinessProbe"), c.get("startupProbe"),
                                   lifecycle.get("postStart"), lifecycle.get("preStop"))
                 for h in _handler_hosts(handler)]
        if found:
            bad.add(container_name(c))
            hosts.update(found)
    if not bad:
        return None
    return ("probe or lifecycle host",
            f"{containers_named(sorted(bad))} "
            f"{pluralize('uses', 'use', len(bad))} "
            f"{pluralize('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} "
            f"{join_quote(sorted(hosts))}")


def privileged(meta: Obj, spec: Obj) -> Result:
    bad = [container_name(c) for c in containers(spec) if security_context(c).get("privileged") is True]
    if not bad:
        return None
    return ("privileged", f"{containers_named(bad)} "
                          "must not set securityContext.privileged=true")


def proc_mount(meta: Obj, spec: Obj) -> Result:
    """Baseline relaxes it for pods in a user namespace (``hostUsers: false``); restricted does not."""
    return None if in_user_namespace(spec) else proc_mount_restricted(meta, spec)


def proc_mount_restricted(meta: Obj, spec: Obj) -> Result:
    bad, kinds = [], set()
    for c in containers(spec):
        value = security_context(c).get("procMount")
        if value is not None and value != "Default":
            bad.append(container_name(c))
            kinds.add(str(value))
    if not bad:
        return None
    return ("procMount", f"{containers_named(bad)} "
                         f"must not set securityContext.procMount to {join_quote(sorted(kinds))}")


def se_linux_options(meta: Obj, spec: Obj) -> Result:
    bad_types: set[str] = set()
    flags = {"user": False, "role": False}

    def valid(opts: Any) -> bool:
        if not isinstance(opts, Mapping):
            return True
        ok = True
        if str(opts.get("type") or "") not in _SELINUX_TYPES_ALLOWED:
            ok = False
            bad_types.add(str(opts.get("type")))
        for f in ("user", "role"):
            if opts.get(f):
                ok, flags[f] = False, True
        return ok

    pod_bad = not valid(security_context(spec).get("seLinuxOptions"))
    bad = [container_name(c) for c in containers(spec) if not valid(security_context(c).get("seLinuxOptions"))]
    setters = who_set(pod_bad, bad)
    if not setters:
        return None
    data = [f"{pluralize('type', 'types', len(bad_types))} {join_quote(sorted(bad_types))}"] if bad_types else []
    data += [f"{f} may not be set" for f in ("user", "role") if flags[f]]
    return ("seLinuxOptions",
            f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}")


def seccomp_type(sc: Obj) -> str | None:
    profile = sc.get("seccompProfile")
    return str(profile.get("type") or "") if isinstance(profile, Mapping) else None


def seccomp_profile_baseline(meta: Obj, spec: Obj) -> Result:
    bad_values: set[str] = set()
    pod_type = seccomp_type(security_context(spec))
    pod_bad = pod_type is not None and pod_type not in SECCOMP_ALLOWED
    if pod_bad:
        bad_values.add(str(pod_type))
    bad = []
    for c in containers(spec):
        t = seccomp_type(security_context(c))
        if t is not None and t not in SECCOMP_ALLOWED:
            bad.append(container_name(c))
            bad_values.add(t)
    setters = who_set(pod_bad, bad)
    if not setters:
        return None
    return ("seccompProfile", f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to "
                              f"{join_quote(sorted(bad_values))}")


def sysctls(meta: Obj, spec: Obj) -> Result:
    names = [str(s.get("name")) for s in security_context(spec).get("sysctls") or []
             if s.get("name") not in _SYSCTLS_ALLOWED]
    return ("forbidden sysctls", ", ".join(names)) if names else None


def windows_host_process(meta: Obj, spec: Obj) -> Result:
    def host_process(sc: Obj) -> bool:
        return (sc.get("windowsOptions") or {}).get("hostProcess") is True

    bad = [container_name(c) for c in containers(spec) if host_process(security_context(c))]
    setters = who_set(host_process(security_context(spec)), bad)
    if not setters:
        return None
    return ("hostProcess", f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true")


# ---------------------------------------------------------------------------- the registry (policy/registry.go)
@dataclass(frozen=True)
class Check:
    id: str
    level: str
    fn: CheckFn
    overrides: tuple[str, ...] = ()


BASELINE_CHECKS = (
    Check("appArmorProfile", BASELINE, app_armor_profile),
    Check("capabilities_baseline", BASELINE, capabilities_baseline),
    Check("hostNamespaces", BASELINE, host_namespaces),
    Check("hostPathVolumes", BASELINE, host_path_volumes),
    Check("hostPorts", BASELINE, host_ports),
    Check("hostProbesAndHostLifecycle", BASELINE, host_probes_and_lifecycle),
    Check("privileged", BASELINE, privileged),
    Check("procMount", BASELINE, proc_mount),
    Check("seLinuxOptions", BASELINE, se_linux_options),
    Check("seccompProfile_baseline", BASELINE, seccomp_profile_baseline),
    Check("sysctls", BASELINE, sysctls),
    Check("windowsHostProcess", BASELINE, windows_host_process),
)


def ordered(checks: Sequence[Check]) -> tuple[Check, ...]:
    """The checks to run, in Kubernetes' order: baseline IDs sorted, then restricted IDs sorted; a
    baseline check that a restricted one overrides is left out."""
    baseline = sorted((c for c in checks if c.level == BASELINE), key=lambda c: c.id)
    restricted = sorted((c for c in checks if c.level == RESTRICTED), key=lambda c: c.id)
    overridden = {o for c in restricted for o in c.overrides}
    return tuple(c for c in baseline if c.id not in overridden) + tuple(restricted)


def run(checks: Sequence[Check], meta: Obj, spec: Obj) -> list[tuple[str, str]]:
    """The (reason, detail) of every check the pod fails; empty: allowed."""
    out = []
    for check in checks:
        result = check.fn(meta, spec)
        if result is not None:
            out.append(result)
    return out


def forbidden_detail(failures: Sequence[tuple[str, str]]) -> str:
    """``reason (detail), reason, ...`` (AggregateCheckResult.ForbiddenDetail)."""
    return ", ".join(f"{reason} ({detail})" if detail else reason for reason, detail in failures)


def forbidden_reason(failures: Sequence[tuple[str, str]]) -> str:
    return ", ".join(reason for reason, _ in failures)

"""Every Pod Security check (baseline and restricted) against a table of pods, in Kubernetes' words.

Pure: a pod spec (and metadata) -> ``podsecurity.pod_failures(level, ...)`` -> (reason, detail)
pairs; the expected texts are those of k8s.io/pod-security-admission's checks.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from apiserver.admission import podsecurity
from apiserver.admission.podsecuritychecks import forbidden_detail

Spec = dict[str, Any]


def c(name: str = "c", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", **fields}


def sc(name: str = "c", **security: Any) -> dict[str, Any]:
    return c(name, securityContext=security)


def spec(*containers: dict[str, Any], **fields: Any) -> Spec:
    return {"containers": list(containers) or [c()], **fields}


# A pod the restricted level allows: what the other rows start from.
RESTRICTED_OK: Spec = spec(sc(allowPrivilegeEscalation=False, capabilities={"drop": ["ALL"]}),
                           securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}})

BASELINE_ROWS = [
    ("privileged", spec(sc(privileged=True)), "privileged", 'container "c" must not set securityContext.privileged=true'),
    ("privileged two", spec(sc("a", privileged=True), sc("b", privileged=True)), "privileged",
     'containers "a", "b" must not set securityContext.privileged=true'),
    ("privileged init", {"initContainers": [sc("i", privileged=True)], "containers": [c()]}, "privileged",
     'container "i" must not set securityContext.privileged=true'),
    ("privileged ephemeral", {"containers": [c()], "ephemeralContainers": [sc("dbg", privileged=True)]},
     "privileged", 'container "dbg" must not set securityContext.privileged=true'),
    ("hostNetwork", spec(hostNetwork=True), "host namespaces", "hostNetwork=true"),
    ("all host namespaces", spec(hostNetwork=True, hostPID=True, hostIPC=True), "host namespaces",
     "hostNetwork=true, hostPID=true, hostIPC=true"),
    ("hostPath", spec(volumes=[{"name": "data", "hostPath": {"path": "/data"}}]), "hostPath volumes", 'volume "data"'),
    ("hostPaths", spec(volumes=[{"name": "a", "hostPath": {"path": "/a"}}, {"name": "e", "emptyDir": {}},
                                {"name": "b", "hostPath": {"path": "/b"}}]), "hostPath volumes", 'volumes "a", "b"'),
    ("hostPort", spec(c(ports=[{"containerPort": 80, "hostPort": 8080}])), "hostPort",
     'container "c" uses hostPort 8080'),
    ("hostPorts", spec(c("a", ports=[{"containerPort": 80, "hostPort": 9090}, {"containerPort": 81, "hostPort": 8080}]),
                       c("b", ports=[{"containerPort": 82, "hostPort": 8080}])), "hostPort",
     'containers "a", "b" use hostPorts 8080, 9090'),
    ("capabilities", spec(sc(capabilities={"add": ["NET_ADMIN", "CHOWN", "SYS_ADMIN"]})), "non-default capabilities",
     'container "c" must not include "NET_ADMIN", "SYS_ADMIN" in securityContext.capabilities.add'),
    ("sysctls", spec(securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "1"},
                                                  {"name": "net.ipv4.tcp_keepalive_time", "value": "1"},
                                                  {"name": "net.core.somaxconn", "value": "1"}]}),
     "forbidden sysctls", "kernel.msgmax, net.core.somaxconn"),
    ("procMount", spec(sc(procMount="Unmasked")), "procMount",
     'container "c" must not set securityContext.procMount to "Unmasked"'),
    ("seccomp Unconfined", spec(sc(seccompProfile={"type": "Unconfined"}),
                                securityContext={"seccompProfile": {"type": "Unconfined"}}),
     "seccompProfile", 'pod and container "c" must not set securityContext.seccompProfile.type to "Unconfined"'),
    ("selinux", spec(sc(seLinuxOptions={"type": "spc_t", "user": "u"})), "seLinuxOptions",
     'container "c" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set'),
    ("selinux pod role", spec(securityContext={"seLinuxOptions": {"role": "r"}}), "seLinuxOptions",
     "pod set forbidden securityContext.seLinuxOptions: role may not be set"),
    ("apparmor field", spec(sc(appArmorProfile={"type": "Unconfined"})), "forbidden AppArmor profile",
     'container "c" must not set AppArmor profile type to "Unconfined"'),
    ("apparmor annotation", spec(), "forbidden AppArmor profile",
     # Kubernetes quotes the key=%q pair once more, unescaped.
     'annotation must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/c="unconfined""'),
    ("windows hostProcess", spec(sc(windowsOptions={"hostProcess": True})), "hostProcess",
     'container "c" must not set securityContext.windowsOptions.hostProcess=true'),
    ("probe host", spec(c(livenessProbe={"httpGet": {"port": 80, "host": "10.0.0.1"}},
                          lifecycle={"preStop": {"tcpSocket": {"port": 1, "host": "evil"}}})),
     "probe or lifecycle host", 'container "c" uses probe or lifecycle hosts "10.0.0.1", "evil"'),
]
ANNOTATIONS = {"apparmor annotation": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}}


@pytest.mark.parametrize("case,pod_spec,reason,detail", BASELINE_ROWS, ids=[r[0] for r in BASELINE_ROWS])
def test_baseline_check(case: str, pod_spec: Spec, reason: str, detail: str) -> None:
    meta = {"name": "p", "annotations": ANNOTATIONS.get(case, {})}
    assert podsecurity.pod_failures("baseline", meta, pod_spec) == [(reason, detail)]
    # Restricted includes every baseline check (hostPath as a restricted volume type).
    assert podsecurity.pod_failures("restricted", meta, pod_spec)
    assert podsecurity.pod_failures("privileged", meta, pod_spec) == []


@pytest.mark.parametrize("pod_spec", [
    spec(),
    spec(sc(privileged=False, capabilities={"add": ["NET_BIND_SERVICE", "CHOWN"]}, procMount="Default",
            seccompProfile={"type": "RuntimeDefault"}, seLinuxOptions={"type": "container_t"},
            appArmorProfile={"type": "Localhost", "localhostProfile": "x"})),
    spec(c(ports=[{"containerPort": 80}], readinessProbe={"httpGet": {"port": 80}}),
         securityContext={"sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1 2"}]},
         volumes=[{"name": "e", "emptyDir": {}}, {"name": "s", "secret": {"secretName": "x"}}]),
    spec(sc(procMount="Unmasked"), hostUsers=False),  # a user namespace relaxes procMount for baseline
], ids=["minimal", "allowed values", "allowed sources", "user namespace procMount"])
def test_baseline_allows(pod_spec: Spec) -> None:
    assert podsecurity.pod_failures("baseline", {}, pod_spec) == []


def _with(change: Any) -> Spec:
    s = copy.deepcopy(RESTRICTED_OK)
    change(s)
    return s


RESTRICTED_ROWS = [
    ("allowPrivilegeEscalation", lambda s: s["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
     "allowPrivilegeEscalation != false", 'container "c" must set securityContext.allowPrivilegeEscalation=false'),
    ("drop ALL", lambda s: s["containers"][0]["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
     "unrestricted capabilities", 'container "c" must set securityContext.capabilities.drop=["ALL"]'),
    ("add", lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["NET_BIND_SERVICE", "CHOWN"]),
     "unrestricted capabilities", 'container "c" must not include "CHOWN" in securityContext.capabilities.add'),
    ("runAsNonRoot unset", lambda s: s["securityContext"].pop("runAsNonRoot"),
     "runAsNonRoot != true", 'pod or container "c" must set securityContext.runAsNonRoot=true'),
    ("runAsNonRoot false", lambda s: s["containers"][0]["securityContext"].update(runAsNonRoot=False),
     "runAsNonRoot != true", 'container "c" must not set securityContext.runAsNonRoot=false'),
    ("runAsUser 0", lambda s: s["securityContext"].update(runAsUser=0),
     "runAsUser=0", "pod must not set runAsUser=0"),
    ("seccomp unset", lambda s: s["securityContext"].pop("seccompProfile"),
     "seccompProfile", 'pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" '
                       'or "Localhost"'),
    ("volumes", lambda s: s.update(volumes=[{"name": "n", "nfs": {"server": "x", "path": "/"}},
                                            {"name": "ok", "configMap": {"name": "c"}}]),
     "restricted volume types", 'volume "n" uses restricted volume type "nfs"'),
    ("procMount", lambda s: s.update(hostUsers=False) or s["containers"][0]["securityContext"].update(
        procMount="Unmasked"), "procMount", 'container "c" must not set securityContext.procMount to "Unmasked"'),
]


@pytest.mark.parametrize("case,change,reason,detail", RESTRICTED_ROWS, ids=[r[0] for r in RESTRICTED_ROWS])
def test_restricted_check(case: str, change: Any, reason: str, detail: str) -> None:
    assert podsecurity.pod_failures("restricted", {}, _with(change)) == [(reason, detail)]


def test_restricted_allows_a_hardened_pod_and_relaxes_windows_and_user_namespaces() -> None:
    assert podsecurity.pod_failures("restricted", {}, RESTRICTED_OK) == []
    windows = spec(os={"name": "windows"}, securityContext={"runAsNonRoot": True})
    assert podsecurity.pod_failures("restricted", {}, windows) == []
    userns = _with(lambda s: s.update(hostUsers=False) or s["securityContext"].update(runAsNonRoot=False, runAsUser=0))
    assert podsecurity.pod_failures("restricted", {}, userns) == []


def test_restricted_order_and_overrides_as_kubernetes() -> None:
    """Baseline checks first (sorted by ID), restricted ones after; hostPath is reported once, as a
    restricted volume type, and added capabilities once, by the restricted check."""
    pod_spec = spec(sc(privileged=True, capabilities={"add": ["SYS_ADMIN"]}),
                    volumes=[{"name": "h", "hostPath": {"path": "/h"}}])
    reasons = [r for r, _ in podsecurity.pod_failures("restricted", {}, pod_spec)]
    assert reasons == ["privileged", "allowPrivilegeEscalation != false", "unrestricted capabilities",
                       "restricted volume types", "runAsNonRoot != true", "seccompProfile"]
    assert forbidden_detail([("a", "x"), ("b", "")]) == "a (x), b"

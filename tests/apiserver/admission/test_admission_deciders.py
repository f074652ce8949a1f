"""The pure deciders of the security admission: Pod Security's namespace policy, the Docker-socket
paths, ServiceAccount mutation and NodeRestriction, as parametrized tables."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.admission import dockersocket, noderestriction, podsecurity, serviceaccount
from apiserver.admission.noderestriction import CREATE, DELETE, UPDATE, Request
from machinery.userinfo import NODES_GROUP, UserInfo

P = "pod-security.kubernetes.io/"


# ---------------------------------------------------------------------------- namespace policy
@pytest.mark.parametrize("labels,default,want", [
    ({}, "baseline", ("baseline:latest", "baseline:latest", "baseline:latest")),
    ({}, "privileged", ("privileged:latest", "privileged:latest", "privileged:latest")),
    ({P + "enforce": "privileged"}, "baseline", ("privileged:latest", "privileged:latest", "privileged:latest")),
    ({P + "enforce": "restricted", P + "enforce-version": "v1.30"}, "baseline",
     ("restricted:v1.30", "restricted:v1.30", "restricted:v1.30")),
    ({P + "warn": "restricted"}, "baseline", ("baseline:latest", "restricted:latest", "baseline:latest")),
    ({P + "enforce": "privileged", P + "audit": "restricted", P + "audit-version": "latest"}, "baseline",
     ("privileged:latest", "privileged:latest", "restricted:latest")),
])
def test_policy_for(labels: dict[str, str], default: str, want: tuple[str, str, str]) -> None:
    policy, causes = podsecurity.policy_for(labels, default_level=default)
    assert (str(policy.enforce), str(policy.warn), str(policy.audit)) == want and causes == []


@pytest.mark.parametrize("label,value,enforce,message", [
    ("enforce", "strict", "restricted", 'Invalid value: "strict": must be one of privileged, baseline, restricted'),
    ("warn", "Baseline", "baseline", 'Invalid value: "Baseline": must be one of privileged, baseline, restricted'),
    ("enforce-version", "1.30", "baseline", 'Invalid value: "1.30": must be "latest" or "v1.x"'),
    ("audit-version", "v1.030", "baseline", 'Invalid value: "v1.030": must be "latest" or "v1.x"'),
])
def test_invalid_labels(label: str, value: str, enforce: str, message: str) -> None:
    policy, [cause] = podsecurity.policy_for({P + label: value})
    assert cause.field == f"metadata.labels[{P}{label}]" and cause.message == message
    assert policy.enforce.level == enforce  # an invalid enforce level fails closed


def test_evaluate_enforce_warn_audit() -> None:
    policy, _ = podsecurity.policy_for({P + "warn": "restricted", P + "audit": "restricted"})
    meta, spec = {"name": "p"}, {"containers": [{"name": "c", "image": "i"}]}
    v = podsecurity.evaluate(policy, meta, spec, enforce=True)
    assert v.forbidden is None and v.warnings[0].startswith('would violate PodSecurity "restricted:latest": ')
    assert v.audit[podsecurity.ENFORCE_POLICY] == "baseline:latest" and podsecurity.AUDIT_VIOLATIONS in v.audit
    v = podsecurity.evaluate(policy, meta, {**spec, "hostPID": True}, enforce=True)
    assert v.forbidden == 'violates PodSecurity "baseline:latest": host namespaces (hostPID=true)'
    assert v.warnings == []  # a refused pod gets no warning
    assert podsecurity.evaluate(policy, meta, {**spec, "hostPID": True}, enforce=False).forbidden is None


@pytest.mark.parametrize("gr,obj,found", [
    ("deployments.apps", {"spec": {"template": {"spec": {"hostPID": True}}}}, True),
    ("cronjobs.batch", {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"hostPID": True}}}}}}, True),
    ("podtemplates", {"template": {"spec": {"hostPID": True}}}, True),
    ("configmaps", {"spec": {"template": {"spec": {}}}}, False),
    ("jobs.batch", {"spec": {}}, False),
])
def test_pod_template(gr: str, obj: dict[str, Any], found: bool) -> None:
    assert (podsecurity.pod_template(gr, obj) is not None) is found


@pytest.mark.parametrize("change,significant", [
    (lambda s: s["containers"][0].update(image="other"), True),
    (lambda s: s["containers"].append({"name": "d", "image": "x"}), True),
    (lambda s: s.update(ephemeralContainers=[{"name": "dbg", "image": "x"}]), True),
    (lambda s: s.update(activeDeadlineSeconds=5), False),
    (lambda s: s["containers"][0].update(resources={"limits": {"cpu": "1"}}), False),
])
def test_significant_update(change: Any, significant: bool) -> None:
    old = {"spec": {"containers": [{"name": "c", "image": "i"}]}}
    new: dict[str, Any] = {"spec": {"containers": [{"name": "c", "image": "i"}]}}
    change(new["spec"])
    assert podsecurity.significant_update(new, old) is significant


def test_existing_pod_warnings_group_by_reason_and_controller() -> None:
    def pod(name: str, uid: str | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if uid:
            meta["ownerReferences"] = [{"uid": uid, "controller": True}]
        return {"metadata": meta, "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "i"}]}}

    warnings = podsecurity.existing_pod_warnings("ns", podsecurity.LevelVersion("baseline"),
                                                 [pod("web-2", "rs"), pod("web-1", "rs"), pod("solo")])
    assert warnings == ['existing pods in namespace "ns" violate the new PodSecurity enforce level "baseline:latest"',
                        "solo (and 2 other pods): host namespaces"]


# ---------------------------------------------------------------------------- the Docker socket
@pytest.mark.parametrize("path,socket", [
    ("/var/run/docker.sock", "/var/run/docker.sock"), ("/run/docker.sock", "/run/docker.sock"),
    ("/var/run/docker.sock/", "/var/run/docker.sock"), ("//var//run///docker.sock", "/var/run/docker.sock"),
    ("/var/./run/docker.sock", "/var/run/docker.sock"), ("/var/lib/../run/docker.sock", "/var/run/docker.sock"),
    ("/", "/var/run/docker.sock"), ("//", "/var/run/docker.sock"), ("/var", "/var/run/docker.sock"),
    ("/var/run", "/var/run/docker.sock"), ("/var/run/", "/var/run/docker.sock"), ("/run", "/run/docker.sock"),
    ("var/run/docker.sock", "/var/run/docker.sock"),
    ("/var/lib", None), ("/var/run/docker", None), ("/run/docker.sock.bak", None), ("/data", None),
    ("/runner", None), ("/variable", None),
])
def test_exposed_socket(path: str, socket: str | None) -> None:
    assert dockersocket.exposed_socket(path) == socket


def test_socket_violations_name_the_field() -> None:
    spec = {"volumes": [{"name": "e", "emptyDir": {}}, {"name": "s", "hostPath": {"path": "/run"}}]}
    [(field, message)] = dockersocket.pod_violations(spec, field_prefix="spec.template.spec")
    assert field == "spec.template.spec.volumes[1].hostPath.path"
    assert message == 'Forbidden: "/run" contains the Docker engine\'s socket /run/docker.sock, which can never be ' \
                      "mounted into a pod"
    pv = {"spec": {"local": {"path": "/var/run/docker.sock"}}}
    assert dockersocket.persistent_volume_violations(pv) == [
        ("spec.local.path", 'Forbidden: "/var/run/docker.sock" is the Docker engine\'s socket, which can never be '
                            "mounted into a pod")]


# ---------------------------------------------------------------------------- ServiceAccount
@pytest.mark.parametrize("pod_choice,account_choice,mount", [
    (None, None, True), (None, False, False), (True, False, True), (False, None, False), (False, True, False),
])
def test_should_automount(pod_choice: bool | None, account_choice: bool | None, mount: bool) -> None:
    pod = {"spec": {} if pod_choice is None else {"automountServiceAccountToken": pod_choice}}
    account = {} if account_choice is None else {"automountServiceAccountToken": account_choice}
    assert serviceaccount.should_automount(account, pod) is mount


@pytest.mark.parametrize("spec,name", [
    ({}, "default"), ({"serviceAccountName": "robot"}, "robot"), ({"serviceAccount": "legacy"}, "legacy"),
])
def test_default_account(spec: dict[str, Any], name: str) -> None:
    pod: dict[str, Any] = {"spec": dict(spec)}
    assert serviceaccount.default_account(pod) == name
    assert pod["spec"]["serviceAccountName"] == pod["spec"]["serviceAccount"] == name


def test_mount_token_reuses_an_existing_volume_and_skips_mounted_containers() -> None:
    own = {"name": "own", "mountPath": serviceaccount.TOKEN_MOUNT_PATH}
    pod: dict[str, Any] = {"spec": {"containers": [{"name": "a"}, {"name": "b", "volumeMounts": [own]}],
                                    "volumes": [{"name": "kube-api-access-old", "projected": {"sources": []}}]}}
    assert serviceaccount.mount_token(pod, suffix="xxxxx") is True
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["kube-api-access-old"]
    assert pod["spec"]["containers"][0]["volumeMounts"][0]["name"] == "kube-api-access-old"
    assert pod["spec"]["containers"][1]["volumeMounts"] == [own]
    assert serviceaccount.mount_token({"spec": {"containers": [{"name": "b", "volumeMounts": [own]}]}},
                                      suffix="xxxxx") is False


# ---------------------------------------------------------------------------- NodeRestriction
def test_node_identity() -> None:
    assert noderestriction.node_identity(UserInfo("system:node:a", groups=(NODES_GROUP,))) == (True, "a")
    assert noderestriction.node_identity(UserInfo("system:node:a")) == (False, "")
    assert noderestriction.node_identity(UserInfo("alice", groups=(NODES_GROUP,))) == (False, "")
    assert noderestriction.node_identity(UserInfo("system:node:", groups=(NODES_GROUP,))) == (True, "")


def _pod(node: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": "p", "labels": labels}, "spec": {"nodeName": node}}


def _node(labels: dict[str, str] | None = None, taints: list[Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "a", "labels": labels or {}}, "spec": {"taints": taints or []}}


NODE_ROWS = [
    ("own node status", Request("a", UPDATE, "nodes", "a", subresource="status", obj=_node(), old=_node()), None),
    ("other node", Request("a", UPDATE, "nodes", "b", obj=_node(), old=_node()),
     'node "a" is not allowed to modify node "b"'),
    ("delete other node", Request("a", DELETE, "nodes", "b", old=_node()), 'node "a" is not allowed to modify node "b"'),
    ("register with kubelet labels", Request("a", CREATE, "nodes", "a", obj=_node(
        {"kubernetes.io/hostname": "a", "kubernetes.io/os": "linux", "node.kubernetes.io/exclude": "x",
         "example.com/rack": "1", "minik8s.io/simulated": "true"})), None),
    ("register with restricted label", Request("a", CREATE, "nodes", "a", obj=_node(
        {"node-restriction.kubernetes.io/secure": "y", "foo.kubernetes.io/bar": "x"})),
     'node "a" is not allowed to set the following labels: foo.kubernetes.io/bar, '
     "node-restriction.kubernetes.io/secure"),
    ("relabel role", Request("a", UPDATE, "nodes", "a", obj=_node({"node-role.kubernetes.io/control-plane": ""}),
                             old=_node()), "is not allowed to modify labels: node-role.kubernetes.io/control-plane"),
    ("taints", Request("a", UPDATE, "nodes", "a", obj=_node(taints=[]), old=_node(taints=[{"key": "k"}])),
     'node "a" is not allowed to modify taints'),
    ("own pod status", Request("a", UPDATE, "pods", "p", "ns", "status", obj=_pod("a"), old=_pod("a")), None),
    ("other pod status", Request("a", UPDATE, "pods", "p", "ns", "status", obj=_pod("b"), old=_pod("b")),
     'node "a" can only update pod status for pods with spec.nodeName set to itself'),
    ("labels through status", Request("a", UPDATE, "pods", "p", "ns", "status", obj=_pod("a", x="y"),
                                      old=_pod("a")), 'node "a" cannot update labels through pod status'),
    ("pod binding", Request("a", UPDATE, "pods", "p", "ns", "binding", obj=_pod("a"), old=_pod("")),
     "unexpected pod subresource \"binding\", only 'status' and 'eviction' are allowed"),
    ("pod update", Request("a", UPDATE, "pods", "p", "ns", obj=_pod("a"), old=_pod("a")),
     'unexpected operation "UPDATE", node "a" can only create and delete mirror pods'),
    ("pod create", Request("a", CREATE, "pods", "p", "ns", obj=_pod("a")),
     'pod does not have "kubernetes.io/config.mirror" annotation, node "a" can only create mirror pods'),
    ("delete own pod", Request("a", DELETE, "pods", "p", "ns", old=_pod("a")), None),
    ("delete other pod", Request("a", DELETE, "pods", "p", "ns", old=_pod("b")),
     'node "a" can only delete pods with spec.nodeName set to itself'),
    ("own lease", Request("a", CREATE, "leases.coordination.k8s.io", "", "kube-node-lease",
                          obj={"metadata": {"name": "a"}}), None),
    ("other lease", Request("a", UPDATE, "leases.coordination.k8s.io", "b", "kube-node-lease"),
     "can only access node lease with the same name as the requesting node"),
    ("lease elsewhere", Request("a", UPDATE, "leases.coordination.k8s.io", "a", "default"),
     'can only access leases in the "kube-node-lease" system namespace'),
    ("claim spec", Request("a", UPDATE, "persistentvolumeclaims", "c", "ns"), "may only update PVC status"),
    ("claim capacity", Request("a", UPDATE, "persistentvolumeclaims", "c", "ns", "status",
                               obj={"status": {"capacity": {"storage": "2Gi"}}}, old={"status": {}}), None),
    ("claim phase", Request("a", UPDATE, "persistentvolumeclaims", "c", "ns", "status",
                            obj={"status": {"phase": "Lost"}}, old={"status": {}}),
     'node "a" is not allowed to update fields other than status.capacity and status.conditions'),
    ("configmaps are not its business", Request("a", CREATE, "configmaps", "x", "ns", obj={}), None),
]


@pytest.mark.parametrize("case,request_,reason", NODE_ROWS, ids=[r[0] for r in NODE_ROWS])
def test_node_restriction(case: str, request_: Request, reason: str | None) -> None:
    assert noderestriction.admit(request_) == reason


@pytest.mark.parametrize("spec,pod,reason", [
    ({}, None, "node requested token not bound to a pod"),
    ({"boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "u"}}, None,
     "node requested token not bound to a pod"),
    ({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p"}}, None,
     "node requested token with a pod binding without a uid"),
    ({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1"}},
     {"metadata": {"uid": "u2"}, "spec": {"nodeName": "a"}},
     "the UID in the bound object reference (u1) does not match the UID in record. The object might have been "
     "deleted and then recreated"),
    ({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1"}},
     {"metadata": {"uid": "u1"}, "spec": {"nodeName": "b"}},
     "node requested token bound to a pod scheduled on a different node"),
    ({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1"}},
     {"metadata": {"uid": "u1"}, "spec": {"nodeName": "a"}}, None),
])
def test_token_requests(spec: dict[str, Any], pod: dict[str, Any] | None, reason: str | None) -> None:
    assert noderestriction.admit_token_request("a", spec, pod) == reason

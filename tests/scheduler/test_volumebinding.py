"""The scheduler's VolumeBinding plugin (pure parts): PreFilter messages, the per-node filter, the
bindings a chosen node implies, and the FitError text; then prebind's writes with a recording client."""

from __future__ import annotations

from typing import Any, Mapping

import pytest

from machinery import errors
from scheduler.plugins import NodeFacts, fit_error_message, node_facts
from scheduler.volumebinding import (REASON_BIND_CONFLICT, REASON_NODE_CONFLICT, REASON_PV_MISSING,
                                     UNBOUND_IMMEDIATE, PodVolumes, VolumeBinding, decide, pod_volumes,
                                     prefilter_message)

Obj = dict[str, Any]

CLASSES = {
    "local-path": {"metadata": {"name": "local-path"}, "provisioner": "minik8s.io/local-path",
                   "volumeBindingMode": "WaitForFirstConsumer"},
    "static": {"metadata": {"name": "static"}, "provisioner": "kubernetes.io/no-provisioner",
               "volumeBindingMode": "WaitForFirstConsumer"},
    "zoned": {"metadata": {"name": "zoned"}, "provisioner": "example.com/p", "volumeBindingMode": "WaitForFirstConsumer",
              "allowedTopologies": [{"matchLabelExpressions": [{"key": "zone", "values": ["a"]}]}]},
    "now": {"metadata": {"name": "now"}, "provisioner": "example.com/p", "volumeBindingMode": "Immediate"},
}


def pod(*claims: str, ephemeral: str = "") -> Obj:
    volumes: list[Obj] = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
    if ephemeral:
        volumes.append({"name": ephemeral, "ephemeral": {"volumeClaimTemplate": {"spec": {}}}})
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": [], "volumes": volumes}}


def claim(name: str, cls: str = "local-path", *, volume: str = "", deleting: bool = False, size: str = "1Gi") -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": "3"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec: Obj = {"storageClassName": cls, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if volume:
        spec["volumeName"] = volume
    return {"metadata": meta, "spec": spec}


def volume(name: str, node: str | None = None, *, cls: str = "static", size: str = "1Gi") -> Obj:
    spec: Obj = {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                 "local": {"path": f"/mnt/{name}"}}
    if node is not None:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
    return {"metadata": {"name": name, "resourceVersion": "2"}, "spec": spec, "status": {"phase": "Available"}}


def facts(name: str, **labels: str) -> NodeFacts:
    return node_facts({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
                       "status": {"conditions": [{"type": "Ready", "status": "True"}]}})


def prefilter(the_pod: Obj, claims: list[Obj], volumes: list[Obj] | None = None) -> PodVolumes | str | None:
    by_key = {f"ns/{c['metadata']['name']}": c for c in claims}
    return pod_volumes(the_pod, claims=by_key.get, volumes=volumes or [], classes=CLASSES)


@pytest.mark.parametrize("the_pod,claims,message", [
    (pod("data"), [], 'persistentvolumeclaim "data" not found'),
    (pod("data"), [claim("data", deleting=True)], 'persistentvolumeclaim "data" is being deleted'),
    (pod("data"), [claim("data", "now")], UNBOUND_IMMEDIATE),
    (pod(ephemeral="scratch"), [],
     'waiting for ephemeral volume controller to create the persistentvolumeclaim "p-scratch"'),
])
def test_prefilter_rejects_the_pod_everywhere(the_pod: Obj, claims: list[Obj], message: str) -> None:
    assert prefilter(the_pod, claims) == message


def test_prefilter_messages_read_like_kubernetes() -> None:
    assert prefilter_message(3, UNBOUND_IMMEDIATE) == (
        "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are "
        "available: 3 Preemption is not helpful for scheduling.")
    assert prefilter(pod(), []) is None
    assert fit_error_message(2, {"a": [REASON_NODE_CONFLICT], "b": [REASON_NODE_CONFLICT]}) == (
        "0/2 nodes are available: 2 node(s) had volume node affinity conflict. preemption: 0/2 nodes are "
        "available: 2 Preemption is not helpful for scheduling.")


def test_a_bound_claims_volume_pins_the_pod_to_its_node() -> None:
    found = prefilter(pod("data"), [claim("data", volume="pv1")], [volume("pv1", "n1")])
    assert isinstance(found, PodVolumes)
    assert decide(found, facts("n1"), taken={}) == (None, [])
    assert decide(found, facts("n2"), taken={})[0] == [REASON_NODE_CONFLICT]
    missing = prefilter(pod("data"), [claim("data", volume="gone")], [])
    assert isinstance(missing, PodVolumes) and decide(missing, facts("n1"), taken={})[0] == [REASON_PV_MISSING]


def test_an_unbound_wait_for_first_consumer_claim() -> None:
    provisioned = prefilter(pod("data"), [claim("data")])
    assert isinstance(provisioned, PodVolumes)
    reasons, choices = decide(provisioned, facts("n1"), taken={})
    assert reasons is None and [c.volume for c in choices] == [None]  # provision on n1
    static = prefilter(pod("data"), [claim("data", "static")], [volume("small", "n2", size="1Gi"),
                                                                 volume("big", "n1", size="5Gi")])
    assert isinstance(static, PodVolumes)
    assert decide(static, facts("n3"), taken={})[0] == [REASON_BIND_CONFLICT]  # no volume there, no provisioner
    reasons, choices = decide(static, facts("n1"), taken={})
    assert reasons is None and choices[0].volume is not None and choices[0].volume["metadata"]["name"] == "big"
    assert decide(static, facts("n1"), taken={"big": "ns/other"})[0] == [REASON_BIND_CONFLICT]
    zoned = prefilter(pod("data"), [claim("data", "zoned")])
    assert isinstance(zoned, PodVolumes)
    assert decide(zoned, facts("n1", zone="a"), taken={})[0] is None
    assert decide(zoned, facts("n1", zone="b"), taken={})[0] == [REASON_BIND_CONFLICT]


def test_two_claims_of_one_pod_never_share_a_volume() -> None:
    both = prefilter(pod("a", "b"), [claim("a", "static"), claim("b", "static")], [volume("only", "n1")])
    assert isinstance(both, PodVolumes)
    assert decide(both, facts("n1"), taken={})[0] == [REASON_BIND_CONFLICT]


class RecordingClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def update(self, resource: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(("update", body))
        return dict(body)

    async def patch(self, resource: Any, name: str, patch: Any, *, namespace: str | None = None) -> dict[str, Any]:
        self.calls.append(("patch", (namespace, name, patch)))
        return {}


class Store:
    def __init__(self, items: list[Obj]) -> None:
        self.items = items

    def get(self, key: str) -> Obj | None:
        return next((o for o in self.items if f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}" == key
                     or o["metadata"]["name"] == key), None)

    def list(self, namespace: str | None = None) -> list[Obj]:
        return self.items


async def test_prebind_selects_the_node_or_prebinds_the_volume() -> None:
    claims = [claim("dyn"), claim("st", "static")]
    plugin = VolumeBinding(Store(claims), Store([volume("pv1", "n1")]), Store(list(CLASSES.values())))
    found = plugin.prefilter(pod("dyn", "st"))
    assert isinstance(found, PodVolumes)
    client = RecordingClient()
    waits = 0

    async def binder_works(_seconds: float) -> None:  # the binder and provisioner, while the scheduler waits
        nonlocal waits
        waits += 1
        for c in claims:
            c["spec"]["volumeName"], c["status"] = "some-pv", {"phase": "Bound"}
    await plugin.prebind(client, found, facts("n1"), sleep=binder_works)
    assert waits == 1  # it waited for the claims to be Bound
    assert client.calls[0] == ("patch", ("ns", "dyn", {"metadata": {"annotations": {
        "volume.kubernetes.io/selected-node": "n1"}}}))
    kind, body = client.calls[1]
    assert kind == "update" and body["spec"]["claimRef"]["uid"] == "uid-st"
    assert body["metadata"]["annotations"] == {"pv.kubernetes.io/bound-by-controller": "yes"}
    assert plugin.taken == {"pv1": "ns/st"}  # until the cache shows the claimRef
    plugin.volume_seen(body)
    assert plugin.taken == {}


async def test_prebind_gives_up_when_the_claims_do_not_bind_in_time() -> None:
    plugin = VolumeBinding(Store([claim("dyn")]), Store([]), Store(list(CLASSES.values())), bind_timeout_s=0.0)
    found = plugin.prefilter(pod("dyn"))
    assert isinstance(found, PodVolumes)

    async def nothing_happens(_seconds: float) -> None:
        return None
    with pytest.raises(errors.ConflictError, match="binding volumes: context deadline exceeded"):
        await plugin.prebind(RecordingClient(), found, facts("n1"), sleep=nothing_happens)

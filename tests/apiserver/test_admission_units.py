"""The pure decisions of the LimitRanger and ResourceQuota admission and of machinery.quota."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from apiserver.admission import limitranger, resourcequota
from apiserver.admission.resourcequota import Refused
from machinery import quota as q

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def pod(*containers: dict[str, Any], init: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "p", "namespace": "ns"},
                            "spec": {"containers": list(containers), **spec}}
    if init:
        body["spec"]["initContainers"] = init
    return body


def c(name: str = "app", **resources: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "image": "busybox", **({"resources": resources} if resources else {})}


def quota(hard: dict[str, str], used: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "q", "namespace": "ns"}, "spec": {"hard": hard, **spec},
            "status": {"hard": hard, "used": used if used is not None else {k: "0" for k in hard}}}


@pytest.mark.parametrize("text, expected", [
    ("1.5", "1500m"), ("2000", "2k"), ("100M", "100M"), ("1.5Gi", "1536Mi"), ("1Gi", "1Gi"), ("1000", "1k"),
    ("500m", "500m"), ("0", "0"), ("512", "512"), ("1024", "1024"), ("2Ki", "2Ki"), ("0.1n", "1n"),
])
def test_canonical_quantities(text: str, expected: str) -> None:
    assert str(q.Quantity.parse(text)) == expected


def test_sums_keep_the_first_format_and_zero_takes_the_other() -> None:
    assert str(q.Quantity.parse("512Mi") + q.Quantity.parse("512Mi")) == "1Gi"
    assert str(q.Quantity(Decimal(0)) + q.Quantity.parse("512Mi")) == "512Mi"
    assert str(q.Quantity.parse("500m") + q.Quantity.parse("500m")) == "1"


@pytest.mark.parametrize("body, expected", [
    (pod(c()), {"count/pods": "1", "pods": "1"}),
    (pod(c(requests={"cpu": "100m", "memory": "64Mi"}, limits={"cpu": "200m"}),
         c("b", requests={"cpu": "300m"})),
     {"count/pods": "1", "pods": "1", "cpu": "400m", "requests.cpu": "400m", "limits.cpu": "200m",
      "memory": "64Mi", "requests.memory": "64Mi"}),
    # an init container asking more than the containers' sum sets the floor
    (pod(c(requests={"cpu": "100m"}), init=[c("init", requests={"cpu": "1"})]),
     {"count/pods": "1", "pods": "1", "cpu": "1", "requests.cpu": "1"}),
    (pod(c(requests={"example.com/gpu": "2", "hugepages-2Mi": "4Mi"})),
     {"count/pods": "1", "pods": "1", "requests.example.com/gpu": "2", "hugepages-2Mi": "4Mi",
      "requests.hugepages-2Mi": "4Mi"}),
    ({**pod(c(requests={"cpu": "1"})), "status": {"phase": "Succeeded"}}, {"count/pods": "1"}),
])
def test_pod_usage(body: dict[str, Any], expected: dict[str, str]) -> None:
    assert q.to_strings(q.usage("pods", body, now=NOW)) == expected


def test_other_usage() -> None:
    svc = {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}}
    assert q.to_strings(q.usage("services", svc, now=NOW)) == {
        "count/services": "1", "services": "1", "services.loadbalancers": "1", "services.nodeports": "2"}
    pvc = {"spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "1Gi"}}}}
    assert q.to_strings(q.usage("persistentvolumeclaims", pvc, now=NOW)) == {
        "count/persistentvolumeclaims": "1", "persistentvolumeclaims": "1", "requests.storage": "1Gi",
        "fast.storageclass.storage.k8s.io/persistentvolumeclaims": "1",
        "fast.storageclass.storage.k8s.io/requests.storage": "1Gi"}
    assert q.to_strings(q.usage("deployments.apps", {}, now=NOW)) == {"count/deployments.apps": "1"}
    assert q.to_strings(q.usage("configmaps", {}, now=NOW)) == {"configmaps": "1", "count/configmaps": "1"}


@pytest.mark.parametrize("scopes, body, matches", [
    (["BestEffort"], pod(c()), True),
    (["BestEffort"], pod(c(requests={"cpu": "1"})), False),
    (["NotBestEffort"], pod(c(limits={"memory": "1Gi"})), True),
    (["Terminating"], pod(c(), activeDeadlineSeconds=30), True),
    (["Terminating"], pod(c()), False),
    (["NotTerminating"], pod(c()), True),
])
def test_scopes(scopes: list[str], body: dict[str, Any], matches: bool) -> None:
    assert q.matches(quota({"pods": "1"}, scopes=scopes), "pods", body) is matches
    # scoped quotas never cover other kinds
    assert q.matches(quota({"pods": "1", "services": "1"}, scopes=scopes), "services", {}) is False


def test_priority_class_scope_selector() -> None:
    selector = {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}
    quota_obj = quota({"pods": "1"}, scopeSelector=selector)
    assert q.matches(quota_obj, "pods", pod(c(), priorityClassName="high"))
    assert not q.matches(quota_obj, "pods", pod(c(), priorityClassName="low"))


def test_exceeded_quota_message() -> None:
    with pytest.raises(Refused) as e:
        resourcequota.evaluate([quota({"pods": "2"}, {"pods": "2"})], "pods", pod(c()), now=NOW)
    assert str(e.value) == "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"


def test_charge_adds_to_used() -> None:
    charges = resourcequota.evaluate([quota({"pods": "2", "requests.memory": "1Gi"},
                                           {"pods": "1", "requests.memory": "512Mi"})],
                                     "pods", pod(c(requests={"memory": "512Mi"})), now=NOW)
    assert charges == {"q": {"pods": "2", "requests.memory": "1Gi"}}


def test_must_specify_message() -> None:
    body = pod(c(limits={"cpu": "1"}), c("side"))
    with pytest.raises(Refused) as e:
        resourcequota.evaluate([quota({"limits.cpu": "2", "requests.memory": "1Gi"})], "pods", body, now=NOW)
    assert str(e.value) == "failed quota: q: must specify limits.cpu for: side; requests.memory for: app,side"


def test_updates_charge_only_the_increase() -> None:
    quotas = [quota({"requests.storage": "10Gi", "persistentvolumeclaims": "5"},
                    {"requests.storage": "3Gi", "persistentvolumeclaims": "1"})]
    old = {"spec": {"resources": {"requests": {"storage": "3Gi"}}}}
    new = {"spec": {"resources": {"requests": {"storage": "5Gi"}}}}
    assert resourcequota.evaluate(quotas, "persistentvolumeclaims", new, now=NOW, old=old) == {
        "q": {"persistentvolumeclaims": "1", "requests.storage": "5Gi"}}
    assert resourcequota.evaluate(quotas, "persistentvolumeclaims", old, now=NOW, old=new) == {}


def test_unrelated_quotas_do_not_charge() -> None:
    assert resourcequota.evaluate([quota({"services": "1"})], "pods", pod(c()), now=NOW) == {}
    assert resourcequota.evaluate([quota({"requests.storage": "1Gi"})], "configmaps", {}, now=NOW) == {}


LR = {"spec": {"limits": [
    {"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m", "memory": "64Mi"},
     "max": {"cpu": "1"}, "min": {"cpu": "50m"}, "maxLimitRequestRatio": {"cpu": "4"}},
    {"type": "Pod", "max": {"memory": "100Mi"}},
]}}


def test_limit_range_defaults_only_what_is_missing() -> None:
    body = pod(c(requests={"cpu": "200m"}), init=[c("init")])
    assert limitranger.default_pod(body, [LR])
    assert body["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "200m", "memory": "64Mi"},
                                                          "limits": {"cpu": "500m"}}
    assert body["spec"]["initContainers"][0]["resources"] == {"requests": {"cpu": "100m", "memory": "64Mi"},
                                                              "limits": {"cpu": "500m"}}
    assert body["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: memory request for container app; cpu limit for container app; "
        "cpu, memory request for init container init; cpu limit for init container init")
    unchanged = copy.deepcopy(body)
    assert not limitranger.default_pod(unchanged, [LR]) and unchanged == body


@pytest.mark.parametrize("resources, expected", [
    ({"requests": {"cpu": "100m"}, "limits": {"cpu": "300m", "memory": "10Mi"}}, []),
    ({"requests": {"cpu": "100m"}, "limits": {"cpu": "2", "memory": "10Mi"}},
     ["maximum cpu usage per Container is 1, but limit is 2.",
      "cpu max limit to request ratio per Container is 4, but provided ratio is 20.000000."]),
    ({"requests": {"cpu": "10m"}, "limits": {"cpu": "100m", "memory": "10Mi"}},
     ["minimum cpu usage per Container is 50m, but request is 10m.",
      "cpu max limit to request ratio per Container is 4, but provided ratio is 10.000000."]),
    ({"requests": {"cpu": "100m"}, "limits": {"cpu": "100m", "memory": "200Mi"}},
     ["maximum memory usage per Pod is 100Mi, but limit is 200Mi."]),
    ({"requests": {"cpu": "100m"}}, ["maximum cpu usage per Container is 1.  No limit is specified.",
                                     "cpu max limit to request ratio per Container is 4, but no limit is specified "
                                     "or limit is 0.",
                                     "maximum memory usage per Pod is 100Mi.  No limit is specified."]),
])
def test_limit_range_violations(resources: dict[str, Any], expected: list[str]) -> None:
    assert limitranger.violations("pods", pod(c(**resources)), [LR]) == expected


def test_pvc_limits_and_aggregate_message() -> None:
    lr = {"spec": {"limits": [{"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "2Gi"}}]}}
    claim = {"spec": {"resources": {"requests": {"storage": "5Gi"}}}}
    assert limitranger.violations("persistentvolumeclaims", claim, [lr]) == [
        "maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 5Gi."]
    assert limitranger.message(["a", "b"]) == "[a, b]" and limitranger.message(["a"]) == "a"

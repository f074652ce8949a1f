"""validate_object reports Kubernetes' own field causes, per kind, on create and on update."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.apiserver.kindtools import apply_defaults, validate
from machinery.errors import StatusCause

Obj = dict[str, Any]
NAMESPACED = {"Pod": True, "Deployment": True, "ReplicaSet": True, "Service": True, "Namespace": False,
              "Node": False, "Endpoints": True, "ConfigMap": True, "Event": True, "Ingress": True, "Lease": True}

DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


def _template() -> Obj:
    return {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}}


def valid(kind: str) -> Obj:
    """A minimal valid object of each kind, before defaulting."""
    meta = {"name": "web", "namespace": "default"} if NAMESPACED[kind] else {"name": "web"}
    bodies: dict[str, Obj] = {
        "Pod": {"spec": _template()["spec"]},
        "Deployment": {"spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": _template()}},
        "ReplicaSet": {"spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": _template()}},
        "Service": {"spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
        "Namespace": {},
        "Node": {"spec": {"podCIDR": "10.244.1.0/24"}, "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}},
        "Endpoints": {"subsets": [{"addresses": [{"ip": "10.244.1.5"}], "ports": [{"port": 8080}]}]},
        "ConfigMap": {"data": {"app.conf": "x=1", "KEY_NAME": "v"}, "binaryData": {"blob": "aGVsbG8="}},
        "Event": {"involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"}, "type": "Normal",
                  "reason": "Started", "message": "ok"},
        "Ingress": {"spec": {"rules": [{"host": "example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}},
        "Lease": {"spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}},
    }
    return {"metadata": meta, **bodies[kind]}


def check(kind: str, obj: Obj, *, old: Obj | None = None) -> list[StatusCause]:
    apply_defaults(kind, obj)
    return validate(kind, obj, old=old)


@pytest.mark.parametrize("kind", sorted(NAMESPACED))
def test_valid_objects_have_no_causes(kind: str) -> None:
    assert check(kind, valid(kind)) == []


Mutation = Callable[[Obj], None]


def _c(obj: Obj) -> Obj:
    """The first container of a Pod."""
    return obj["spec"]["containers"][0]


def _tc(obj: Obj) -> Obj:
    """The first container of a Deployment/ReplicaSet template."""
    return obj["spec"]["template"]["spec"]["containers"][0]


INVALID: list[tuple[str, str, Mutation, str, str]] = [
    # ---- metadata
    ("Pod", "missing name", lambda o: o["metadata"].pop("name"), "metadata.name", "FieldValueRequired"),
    ("Pod", "bad name", lambda o: o["metadata"].update(name="Web_1"), "metadata.name", "FieldValueInvalid"),
    ("Pod", "name too long", lambda o: o["metadata"].update(name="a" * 254), "metadata.name", "FieldValueInvalid"),
    ("Pod", "bad generateName", lambda o: o["metadata"].update(name="", generateName="Bad-"), "metadata.generateName", "FieldValueInvalid"),
    ("Pod", "missing namespace", lambda o: o["metadata"].pop("namespace"), "metadata.namespace", "FieldValueRequired"),
    ("Pod", "bad namespace", lambda o: o["metadata"].update(namespace="a.b"), "metadata.namespace", "FieldValueInvalid"),
    ("Node", "namespace on cluster-scoped", lambda o: o["metadata"].update(namespace="default"), "metadata.namespace", "FieldValueForbidden"),
    ("Pod", "bad label key", lambda o: o["metadata"].update(labels={"-bad": "x"}), "metadata.labels", "FieldValueInvalid"),
    ("Pod", "bad label value", lambda o: o["metadata"].update(labels={"app": "a b"}), "metadata.labels", "FieldValueInvalid"),
    ("Pod", "long label value", lambda o: o["metadata"].update(labels={"app": "a" * 64}), "metadata.labels", "FieldValueInvalid"),
    ("Pod", "label value not string", lambda o: o["metadata"].update(labels={"app": 1}), "metadata.labels[app]", "FieldValueInvalid"),
    ("Pod", "bad annotation key", lambda o: o["metadata"].update(annotations={"a/b/c": "x"}), "metadata.annotations", "FieldValueInvalid"),
    ("Pod", "huge annotations", lambda o: o["metadata"].update(annotations={"a": "x" * 262144}), "metadata.annotations", "FieldValueTooLong"),
    ("Pod", "labels not a map", lambda o: o["metadata"].update(labels=["a"]), "metadata.labels", "FieldValueInvalid"),
    ("Pod", "metadata not a map", lambda o: o.update(metadata="x"), "metadata", "FieldValueInvalid"),
    ("Pod", "owner without uid", lambda o: o["metadata"].update(ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r"}]),
     "metadata.ownerReferences.uid", "FieldValueInvalid"),
    ("Namespace", "namespace name with dots", lambda o: o["metadata"].update(name="a.b"), "metadata.name", "FieldValueInvalid"),
    ("Service", "service name starting with digit", lambda o: o["metadata"].update(name="1web"), "metadata.name", "FieldValueInvalid"),
    # ---- pod spec
    ("Pod", "no containers", lambda o: o["spec"].update(containers=[]), "spec.containers", "FieldValueRequired"),
    ("Pod", "containers not a list", lambda o: o["spec"].update(containers={"a": 1}), "spec.containers", "FieldValueInvalid"),
    ("Pod", "container name missing", lambda o: _c(o).pop("name"), "spec.containers[0].name", "FieldValueRequired"),
    ("Pod", "container name invalid", lambda o: _c(o).update(name="Web"), "spec.containers[0].name", "FieldValueInvalid"),
    ("Pod", "duplicate container", lambda o: o["spec"]["containers"].append(copy.deepcopy(_c(o))), "spec.containers[1].name", "FieldValueDuplicate"),
    ("Pod", "init container duplicates", lambda o: o["spec"].update(initContainers=[{"name": "web", "image": "busybox"}]),
     "spec.initContainers[0].name", "FieldValueDuplicate"),
    ("Pod", "image missing", lambda o: _c(o).pop("image"), "spec.containers[0].image", "FieldValueRequired"),
    ("Pod", "image whitespace", lambda o: _c(o).update(image=" nginx"), "spec.containers[0].image", "FieldValueInvalid"),
    ("Pod", "image not string", lambda o: _c(o).update(image=5), "spec.containers[0].image", "FieldValueInvalid"),
    ("Pod", "containerPort zero", lambda o: _c(o).update(ports=[{"containerPort": 0}]), "spec.containers[0].ports[0].containerPort", "FieldValueRequired"),
    ("Pod", "containerPort too big", lambda o: _c(o).update(ports=[{"containerPort": 70000}]), "spec.containers[0].ports[0].containerPort", "FieldValueInvalid"),
    ("Pod", "containerPort string", lambda o: _c(o).update(ports=[{"containerPort": "80"}]), "spec.containers[0].ports[0].containerPort", "FieldValueInvalid"),
    ("Pod", "hostPort too big", lambda o: _c(o).update(ports=[{"containerPort": 80, "hostPort": 65536}]), "spec.containers[0].ports[0].hostPort", "FieldValueInvalid"),
    ("Pod", "bad protocol", lambda o: _c(o).update(ports=[{"containerPort": 80, "protocol": "ICMP"}]), "spec.containers[0].ports[0].protocol", "FieldValueNotSupported"),
    ("Pod", "port name too long", lambda o: _c(o).update(ports=[{"containerPort": 80, "name": "a-very-long-port-name"}]), "spec.containers[0].ports[0].name", "FieldValueInvalid"),
    ("Pod", "port name digits only", lambda o: _c(o).update(ports=[{"containerPort": 80, "name": "8080"}]), "spec.containers[0].ports[0].name", "FieldValueInvalid"),
    ("Pod", "duplicate port name", lambda o: _c(o).update(ports=[{"containerPort": 80, "name": "http"}, {"containerPort": 81, "name": "http"}]),
     "spec.containers[0].ports[1].name", "FieldValueDuplicate"),
    ("Pod", "duplicate host port", lambda o: _c(o).update(ports=[{"containerPort": 80, "hostPort": 80}, {"containerPort": 81, "hostPort": 80}]),
     "spec.containers[0].ports[1].hostPort", "FieldValueDuplicate"),
    ("Pod", "env name missing", lambda o: _c(o).update(env=[{"value": "x"}]), "spec.containers[0].env[0].name", "FieldValueRequired"),
    ("Pod", "env name with =", lambda o: _c(o).update(env=[{"name": "A=B"}]), "spec.containers[0].env[0].name", "FieldValueInvalid"),
    ("Pod", "env valueFrom empty", lambda o: _c(o).update(env=[{"name": "A", "valueFrom": {}}]), "spec.containers[0].env[0].valueFrom", "FieldValueInvalid"),
    ("Pod", "env valueFrom and value", lambda o: _c(o).update(env=[{"name": "A", "value": "x", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]),
     "spec.containers[0].env[0].valueFrom", "FieldValueInvalid"),
    ("Pod", "env two sources", lambda o: _c(o).update(env=[{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}, "secretKeyRef": {"name": "s", "key": "k"}}}]),
     "spec.containers[0].env[0].valueFrom", "FieldValueInvalid"),
    ("Pod", "env bad fieldPath", lambda o: _c(o).update(env=[{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}]),
     "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath", "FieldValueNotSupported"),
    ("Pod", "bad quantity", lambda o: _c(o).update(resources={"limits": {"cpu": "lots"}}), "spec.containers[0].resources.limits[cpu]", "FieldValueInvalid"),
    ("Pod", "negative quantity", lambda o: _c(o).update(resources={"requests": {"memory": "-1Gi"}}), "spec.containers[0].resources.requests[memory]", "FieldValueInvalid"),
    ("Pod", "request above limit", lambda o: _c(o).update(resources={"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}}),
     "spec.containers[0].resources.requests", "FieldValueInvalid"),
    ("Pod", "unknown resource", lambda o: _c(o).update(resources={"limits": {"gpu": "1"}}), "spec.containers[0].resources.limits[gpu]", "FieldValueInvalid"),
    ("Pod", "bad restartPolicy", lambda o: o["spec"].update(restartPolicy="Sometimes"), "spec.restartPolicy", "FieldValueNotSupported"),
    ("Pod", "bad dnsPolicy", lambda o: o["spec"].update(dnsPolicy="Google"), "spec.dnsPolicy", "FieldValueNotSupported"),
    ("Pod", "dnsPolicy None without config", lambda o: o["spec"].update(dnsPolicy="None"), "spec.dnsConfig", "FieldValueRequired"),
    ("Pod", "bad imagePullPolicy", lambda o: _c(o).update(imagePullPolicy="Sometimes"), "spec.containers[0].imagePullPolicy", "FieldValueNotSupported"),
    ("Pod", "probe without handler", lambda o: _c(o).update(livenessProbe={"periodSeconds": 5}), "spec.containers[0].livenessProbe", "FieldValueRequired"),
    ("Pod", "probe two handlers", lambda o: _c(o).update(readinessProbe={"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}),
     "spec.containers[0].readinessProbe.tcpSocket", "FieldValueForbidden"),
    ("Pod", "probe negative delay", lambda o: _c(o).update(readinessProbe={"tcpSocket": {"port": 80}, "initialDelaySeconds": -1}),
     "spec.containers[0].readinessProbe.initialDelaySeconds", "FieldValueInvalid"),
    ("Pod", "liveness successThreshold", lambda o: _c(o).update(livenessProbe={"tcpSocket": {"port": 80}, "successThreshold": 2}),
     "spec.containers[0].livenessProbe.successThreshold", "FieldValueInvalid"),
    ("Pod", "startup successThreshold", lambda o: _c(o).update(startupProbe={"tcpSocket": {"port": 80}, "successThreshold": 3}),
     "spec.containers[0].startupProbe.successThreshold", "FieldValueInvalid"),
    ("Pod", "httpGet bad port name", lambda o: _c(o).update(livenessProbe={"httpGet": {"port": "HTTP"}}), "spec.containers[0].livenessProbe.httpGet.port", "FieldValueInvalid"),
    ("Pod", "httpGet bad scheme", lambda o: _c(o).update(livenessProbe={"httpGet": {"port": 80, "scheme": "FTP"}}),
     "spec.containers[0].livenessProbe.httpGet.scheme", "FieldValueNotSupported"),
    ("Pod", "exec without command", lambda o: _c(o).update(livenessProbe={"exec": {}}), "spec.containers[0].livenessProbe.exec.command", "FieldValueRequired"),
    ("Pod", "init container probe", lambda o: o["spec"].update(initContainers=[{"name": "init", "image": "busybox", "livenessProbe": {"tcpSocket": {"port": 1}}}]),
     "spec.initContainers[0].livenessProbe", "FieldValueInvalid"),
    ("Pod", "duplicate volume", lambda o: o["spec"].update(volumes=[{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]),
     "spec.volumes[1].name", "FieldValueDuplicate"),
    ("Pod", "volume two sources", lambda o: o["spec"].update(volumes=[{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}]),
     "spec.volumes[0].emptyDir", "FieldValueForbidden"),
    ("Pod", "volume bad name", lambda o: o["spec"].update(volumes=[{"name": "V", "emptyDir": {}}]), "spec.volumes[0].name", "FieldValueInvalid"),
    ("Pod", "mount of unknown volume", lambda o: _c(o).update(volumeMounts=[{"name": "data", "mountPath": "/data"}]),
     "spec.containers[0].volumeMounts[0].name", "FieldValueNotFound"),
    ("Pod", "mount without path", lambda o: (o["spec"].update(volumes=[{"name": "data"}]), _c(o).update(volumeMounts=[{"name": "data"}])),
     "spec.containers[0].volumeMounts[0].mountPath", "FieldValueRequired"),
    ("Pod", "negative grace period", lambda o: o["spec"].update(terminationGracePeriodSeconds=-1), "spec.terminationGracePeriodSeconds", "FieldValueInvalid"),
    ("Pod", "zero activeDeadlineSeconds", lambda o: o["spec"].update(activeDeadlineSeconds=0), "spec.activeDeadlineSeconds", "FieldValueInvalid"),
    ("Pod", "bad nodeSelector", lambda o: o["spec"].update(nodeSelector={"disk": "ssd fast"}), "spec.nodeSelector", "FieldValueInvalid"),
    ("Pod", "nodeSelector not map", lambda o: o["spec"].update(nodeSelector="disk=ssd"), "spec.nodeSelector", "FieldValueInvalid"),
    ("Pod", "bad nodeName", lambda o: o["spec"].update(nodeName="Node_1"), "spec.nodeName", "FieldValueInvalid"),
    ("Pod", "toleration operator", lambda o: o["spec"].update(tolerations=[{"key": "k", "operator": "Like"}]),
     "spec.tolerations[0].operator", "FieldValueNotSupported"),
    ("Pod", "toleration effect", lambda o: o["spec"].update(tolerations=[{"key": "k", "operator": "Exists", "effect": "Never"}]),
     "spec.tolerations[0].effect", "FieldValueNotSupported"),
    ("Pod", "toleration Exists with value", lambda o: o["spec"].update(tolerations=[{"key": "k", "operator": "Exists", "value": "v"}]),
     "spec.tolerations[0].operator", "FieldValueInvalid"),
    ("Pod", "toleration empty key Equal", lambda o: o["spec"].update(tolerations=[{"operator": "Equal", "value": "v"}]),
     "spec.tolerations[0].operator", "FieldValueInvalid"),
    ("Pod", "tolerationSeconds without NoExecute", lambda o: o["spec"].update(tolerations=[{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}]),
     "spec.tolerations[0].effect", "FieldValueInvalid"),
    ("Pod", "spec is a list", lambda o: o.update(spec=[]), "spec", "FieldValueInvalid"),
    # ---- deployment / replicaset
    ("Deployment", "negative replicas", lambda o: o["spec"].update(replicas=-1), "spec.replicas", "FieldValueInvalid"),
    ("Deployment", "replicas string", lambda o: o["spec"].update(replicas="3"), "spec.replicas", "FieldValueInvalid"),
    ("Deployment", "replicas overflow", lambda o: o["spec"].update(replicas=2**31), "spec.replicas", "FieldValueInvalid"),
    ("Deployment", "missing selector", lambda o: o["spec"].pop("selector"), "spec.selector", "FieldValueRequired"),
    ("Deployment", "empty selector", lambda o: o["spec"].update(selector={}), "spec.selector", "FieldValueInvalid"),
    ("Deployment", "selector mismatch", lambda o: o["spec"]["template"]["metadata"].update(labels={"app": "other"}),
     "spec.template.metadata.labels", "FieldValueInvalid"),
    ("Deployment", "bad selector operator", lambda o: o["spec"].update(selector={"matchExpressions": [{"key": "app", "operator": "Is", "values": ["web"]}]}),
     "spec.selector.matchExpressions[0].operator", "FieldValueNotSupported"),
    ("Deployment", "In without values", lambda o: o["spec"].update(selector={"matchExpressions": [{"key": "app", "operator": "In"}]}),
     "spec.selector.matchExpressions[0].values", "FieldValueRequired"),
    ("Deployment", "template image missing", lambda o: _tc(o).pop("image"), "spec.template.spec.containers[0].image", "FieldValueRequired"),
    ("Deployment", "template restartPolicy", lambda o: o["spec"]["template"]["spec"].update(restartPolicy="Never"),
     "spec.template.spec.restartPolicy", "FieldValueNotSupported"),
    ("Deployment", "template activeDeadlineSeconds", lambda o: o["spec"]["template"]["spec"].update(activeDeadlineSeconds=10),
     "spec.template.spec.activeDeadlineSeconds", "FieldValueForbidden"),
    ("Deployment", "bad strategy", lambda o: o["spec"].update(strategy={"type": "BlueGreen"}), "spec.strategy", "FieldValueNotSupported"),
    ("Deployment", "recreate with rollingUpdate", lambda o: o["spec"].update(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
     "spec.strategy.rollingUpdate", "FieldValueForbidden"),
    ("Deployment", "both zero", lambda o: o["spec"].update(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}),
     "spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid"),
    ("Deployment", "bad percent", lambda o: o["spec"].update(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25 percent", "maxUnavailable": 1}}),
     "spec.strategy.rollingUpdate.maxSurge", "FieldValueInvalid"),
    ("Deployment", "negative surge", lambda o: o["spec"].update(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": -1, "maxUnavailable": 1}}),
     "spec.strategy.rollingUpdate.maxSurge", "FieldValueInvalid"),
    ("Deployment", "unavailable over 100%", lambda o: o["spec"].update(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "150%"}}),
     "spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid"),
    ("Deployment", "negative revisionHistoryLimit", lambda o: o["spec"].update(revisionHistoryLimit=-1), "spec.revisionHistoryLimit", "FieldValueInvalid"),
    ("Deployment", "negative minReadySeconds", lambda o: o["spec"].update(minReadySeconds=-1), "spec.minReadySeconds", "FieldValueInvalid"),
    ("Deployment", "deadline not above minReady", lambda o: o["spec"].update(minReadySeconds=30, progressDeadlineSeconds=30),
     "spec.progressDeadlineSeconds", "FieldValueInvalid"),
    ("ReplicaSet", "negative replicas", lambda o: o["spec"].update(replicas=-2), "spec.replicas", "FieldValueInvalid"),
    ("ReplicaSet", "selector mismatch", lambda o: o["spec"].update(selector={"matchLabels": {"tier": "db"}}), "spec.template.metadata.labels", "FieldValueInvalid"),
    ("ReplicaSet", "missing selector", lambda o: o["spec"].pop("selector"), "spec.selector", "FieldValueRequired"),
    ("ReplicaSet", "template no containers", lambda o: o["spec"]["template"]["spec"].update(containers=[]), "spec.template.spec.containers", "FieldValueRequired"),
    # ---- service
    ("Service", "no ports", lambda o: o["spec"].update(ports=[]), "spec.ports", "FieldValueRequired"),
    ("Service", "port zero", lambda o: o["spec"].update(ports=[{"port": 0}]), "spec.ports[0].port", "FieldValueInvalid"),
    ("Service", "unnamed ports", lambda o: o["spec"].update(ports=[{"port": 80}, {"port": 443}]), "spec.ports[0].name", "FieldValueRequired"),
    ("Service", "duplicate port names", lambda o: o["spec"].update(ports=[{"name": "a", "port": 80}, {"name": "a", "port": 443}]),
     "spec.ports[1].name", "FieldValueDuplicate"),
    ("Service", "duplicate ports", lambda o: o["spec"].update(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}]), "spec.ports[1]", "FieldValueDuplicate"),
    ("Service", "bad targetPort", lambda o: o["spec"].update(ports=[{"port": 80, "targetPort": 0x10000}]), "spec.ports[0].targetPort", "FieldValueInvalid"),
    ("Service", "bad targetPort name", lambda o: o["spec"].update(ports=[{"port": 80, "targetPort": "Web_Port"}]), "spec.ports[0].targetPort", "FieldValueInvalid"),
    ("Service", "bad protocol", lambda o: o["spec"].update(ports=[{"port": 80, "protocol": "HTTP"}]), "spec.ports[0].protocol", "FieldValueNotSupported"),
    ("Service", "bad type", lambda o: o["spec"].update(type="Magic"), "spec.type", "FieldValueNotSupported"),
    ("Service", "nodePort on ClusterIP", lambda o: o["spec"].update(ports=[{"port": 80, "nodePort": 30080}]), "spec.ports[0].nodePort", "FieldValueForbidden"),
    # (whether a node port is in --service-node-port-range is the allocator's answer: tests/apiserver/test_service_alloc.py)
    ("Service", "nodePort not a port", lambda o: o["spec"].update(type="NodePort", ports=[{"port": 80, "nodePort": 70000}]), "spec.ports[0].nodePort", "FieldValueInvalid"),
    ("Service", "headless NodePort", lambda o: o["spec"].update(type="NodePort", clusterIP="None"), "spec.clusterIP", "FieldValueInvalid"),
    ("Service", "bad clusterIP", lambda o: o["spec"].update(clusterIP="10.0.0.300"), "spec.clusterIP", "FieldValueInvalid"),
    ("Service", "bad selector", lambda o: o["spec"].update(selector={"app": "we b"}), "spec.selector", "FieldValueInvalid"),
    ("Service", "bad sessionAffinity", lambda o: o["spec"].update(sessionAffinity="Sticky"), "spec.sessionAffinity", "FieldValueNotSupported"),
    ("Service", "ExternalName without name", lambda o: o["spec"].update(type="ExternalName"), "spec.externalName", "FieldValueRequired"),
    ("Service", "externalTrafficPolicy on ClusterIP", lambda o: o["spec"].update(externalTrafficPolicy="Local"), "spec.externalTrafficPolicy", "FieldValueInvalid"),
    ("Service", "bad externalIP", lambda o: o["spec"].update(externalIPs=["not-an-ip"]), "spec.externalIPs[0]", "FieldValueInvalid"),
    # ---- other kinds
    ("Namespace", "bad finalizer", lambda o: o.update(spec={"finalizers": ["bad finalizer"]}), "spec.finalizers[0]", "FieldValueInvalid"),
    ("Node", "taint without effect", lambda o: o["spec"].update(taints=[{"key": "k"}]), "spec.taints[0].effect", "FieldValueRequired"),
    ("Node", "taint bad effect", lambda o: o["spec"].update(taints=[{"key": "k", "effect": "Evict"}]), "spec.taints[0].effect", "FieldValueNotSupported"),
    ("Node", "bad podCIDR", lambda o: o["spec"].update(podCIDR="10.0.0.0"), "spec.podCIDR", "FieldValueInvalid"),
    ("Node", "bad capacity", lambda o: o["status"].update(capacity={"cpu": "four"}), "status.capacity[cpu]", "FieldValueInvalid"),
    ("Endpoints", "subset without addresses", lambda o: o["subsets"][0].pop("addresses"), "subsets[0]", "FieldValueRequired"),
    ("Endpoints", "bad ip", lambda o: o["subsets"][0].update(addresses=[{"ip": "10.0.0"}]), "subsets[0].addresses[0].ip", "FieldValueInvalid"),
    ("Endpoints", "loopback ip", lambda o: o["subsets"][0].update(addresses=[{"ip": "127.0.0.1"}]), "subsets[0].addresses[0].ip", "FieldValueInvalid"),
    ("Endpoints", "bad port", lambda o: o["subsets"][0].update(ports=[{"port": 0}]), "subsets[0].ports[0].port", "FieldValueInvalid"),
    ("Endpoints", "unnamed ports", lambda o: o["subsets"][0].update(ports=[{"port": 1}, {"port": 2}]), "subsets[0].ports[0].name", "FieldValueRequired"),
    ("Endpoints", "bad protocol", lambda o: o["subsets"][0].update(ports=[{"port": 1, "protocol": "tcp"}]), "subsets[0].ports[0].protocol", "FieldValueNotSupported"),
    ("ConfigMap", "bad key", lambda o: o["data"].update({"a b": "x"}), "data[a b]", "FieldValueInvalid"),
    ("ConfigMap", "dotdot key", lambda o: o["data"].update({"..a": "x"}), "data[..a]", "FieldValueInvalid"),
    ("ConfigMap", "key in both", lambda o: o["binaryData"].update({"app.conf": "aGk="}), "binaryData[app.conf]", "FieldValueInvalid"),
    ("ConfigMap", "too big", lambda o: o["data"].update({"big": "x" * (1024 * 1024 + 1)}), "", "FieldValueTooLong"),
    ("ConfigMap", "value not string", lambda o: o["data"].update({"n": 1}), "data[n]", "FieldValueInvalid"),
    ("Event", "no involvedObject", lambda o: o.pop("involvedObject"), "involvedObject", "FieldValueRequired"),
    ("Event", "namespace mismatch", lambda o: o["involvedObject"].update(namespace="other"), "involvedObject.namespace", "FieldValueInvalid"),
    ("Ingress", "no rules no backend", lambda o: o["spec"].pop("rules"), "spec", "FieldValueInvalid"),
    ("Ingress", "bad host", lambda o: o["spec"]["rules"][0].update(host="Example.com"), "spec.rules[0].host", "FieldValueInvalid"),
    ("Ingress", "bad wildcard", lambda o: o["spec"]["rules"][0].update(host="*.*.example.com"), "spec.rules[0].host", "FieldValueInvalid"),
    ("Ingress", "ip host", lambda o: o["spec"]["rules"][0].update(host="1.2.3.4"), "spec.rules[0].host", "FieldValueInvalid"),
    ("Ingress", "no pathType", lambda o: o["spec"]["rules"][0]["http"]["paths"][0].pop("pathType"),
     "spec.rules[0].http.paths[0].pathType", "FieldValueRequired"),
    ("Ingress", "bad pathType", lambda o: o["spec"]["rules"][0]["http"]["paths"][0].update(pathType="Regex"),
     "spec.rules[0].http.paths[0].pathType", "FieldValueNotSupported"),
    ("Ingress", "relative path", lambda o: o["spec"]["rules"][0]["http"]["paths"][0].update(path="api"),
     "spec.rules[0].http.paths[0].path", "FieldValueInvalid"),
    ("Ingress", "no service name", lambda o: o["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"].pop("name"),
     "spec.rules[0].http.paths[0].backend.service.name", "FieldValueRequired"),
    ("Ingress", "no port", lambda o: o["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"].update(port={}),
     "spec.rules[0].http.paths[0].backend", "FieldValueRequired"),
    ("Ingress", "port name and number", lambda o: o["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"].update(port={"name": "http", "number": 80}),
     "spec.rules[0].http.paths[0].backend", "FieldValueInvalid"),
    ("Ingress", "no paths", lambda o: o["spec"]["rules"][0]["http"].update(paths=[]), "spec.rules[0].http.paths", "FieldValueRequired"),
    ("Lease", "zero duration", lambda o: o["spec"].update(leaseDurationSeconds=0), "spec.leaseDurationSeconds", "FieldValueInvalid"),
    ("Lease", "holder not string", lambda o: o["spec"].update(holderIdentity=["a"]), "spec.holderIdentity", "FieldValueInvalid"),
]


@pytest.mark.parametrize(("kind", "case", "mutate", "path", "reason"), INVALID, ids=[f"{k}-{c}" for k, c, *_ in INVALID])
def test_invalid_objects(kind: str, case: str, mutate: Mutation, path: str, reason: str) -> None:
    obj = valid(kind)
    mutate(obj)
    causes = check(kind, obj)
    assert (path, reason) in [(c.field, c.reason) for c in causes], causes


@pytest.mark.parametrize(
    ("kind", "mutate", "path", "message"),
    [
        ("Pod", lambda o: o["metadata"].pop("name"), "metadata.name", "Required value: name or generateName is required"),
        ("Pod", lambda o: o["metadata"].update(name="Web"), "metadata.name", 'Invalid value: "Web": ' + DNS1123_SUBDOMAIN_MSG),
        ("Namespace", lambda o: o["metadata"].update(name="a.b"), "metadata.name", 'Invalid value: "a.b": must not contain dots'),
        ("Node", lambda o: o["metadata"].update(namespace="x"), "metadata.namespace", "Forbidden: not allowed on this type"),
        ("Pod", lambda o: o["spec"].update(restartPolicy="Sometimes"), "spec.restartPolicy",
         'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'),
        ("Pod", lambda o: _c(o).update(ports=[{"containerPort": 70000}]), "spec.containers[0].ports[0].containerPort",
         "Invalid value: 70000: must be between 1 and 65535, inclusive"),
        ("Pod", lambda o: o["spec"]["containers"].append(copy.deepcopy(_c(o))), "spec.containers[1].name", 'Duplicate value: "web"'),
        ("Pod", lambda o: _c(o).update(volumeMounts=[{"name": "data", "mountPath": "/d"}]), "spec.containers[0].volumeMounts[0].name",
         'Not found: "data"'),
        ("Pod", lambda o: _c(o).update(resources={"limits": {"cpu": "lots"}}), "spec.containers[0].resources.limits[cpu]",
         "Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
        ("Pod", lambda o: _c(o).update(resources={"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}}), "spec.containers[0].resources.requests",
         'Invalid value: "1": must be less than or equal to cpu limit of 500m'),
        ("Pod", lambda o: _c(o).update(ports=[{"containerPort": 80, "name": "a-very-long-port-name"}]), "spec.containers[0].ports[0].name",
         'Invalid value: "a-very-long-port-name": must be no more than 15 characters'),
        ("Deployment", lambda o: o["spec"]["template"]["metadata"].update(labels={"app": "x"}), "spec.template.metadata.labels",
         'Invalid value: {"app":"x"}: `selector` does not match template `labels`'),
        ("Deployment", lambda o: o["spec"].update(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
         "spec.strategy.rollingUpdate.maxUnavailable", "Invalid value: 0: may not be 0 when `maxSurge` is 0"),
        ("Deployment", lambda o: o["spec"].update(replicas="3"), "spec.replicas", 'Invalid value: "3": must be of type int32'),
        ("Service", lambda o: o["spec"].update(ports=[{"port": 80, "nodePort": 30080}]), "spec.ports[0].nodePort",
         "Forbidden: may not be used when `type` is 'ClusterIP'"),
        ("Ingress", lambda o: o["spec"]["rules"][0]["http"]["paths"][0].pop("pathType"), "spec.rules[0].http.paths[0].pathType",
         "Required value: pathType must be specified"),
        ("ConfigMap", lambda o: o["data"].update({"big": "x" * (1024 * 1024 + 1)}), "", "Too long: may not be more than 1048576 bytes"),
    ],
)
def test_messages_match_kubernetes(kind: str, mutate: Mutation, path: str, message: str) -> None:
    obj = valid(kind)
    mutate(obj)
    causes = check(kind, obj)
    assert (path, message) in [(c.field, c.message) for c in causes], causes


def test_every_problem_is_reported() -> None:
    pod = valid("Pod")
    pod["metadata"]["name"] = "Bad"
    _c(pod).pop("image")
    pod["spec"]["restartPolicy"] = "Sometimes"
    fields = {c.field for c in check("Pod", pod)}
    assert {"metadata.name", "spec.containers[0].image", "spec.restartPolicy"} <= fields


@pytest.mark.parametrize(
    ("kind", "mutate"),
    [
        ("Pod", lambda o: o["metadata"].update(name="", generateName="web-")),
        ("Pod", lambda o: o["metadata"].update(labels={"app.kubernetes.io/name": "web", "empty": ""})),
        ("Pod", lambda o: o["metadata"].update(annotations={"Example.com/Key": "any value at all"})),
        ("Pod", lambda o: _c(o).update(env=[{"name": "my.env-name", "value": "1"},
                                             {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}])),
        ("Pod", lambda o: _c(o).update(resources={"limits": {"cpu": "1", "memory": "1Gi", "example.com/gpu": "1"},
                                                  "requests": {"cpu": 0.5, "memory": "512Mi", "example.com/gpu": "1"}})),
        ("Pod", lambda o: (o["spec"].update(volumes=[{"name": "data", "emptyDir": {}}]),
                           _c(o).update(volumeMounts=[{"name": "data", "mountPath": "/data"}]))),
        ("Pod", lambda o: o["spec"].update(tolerations=[{"operator": "Exists"},
                                                        {"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute", "tolerationSeconds": 30}])),
        ("Pod", lambda o: o["spec"].update(initContainers=[{"name": "sidecar", "image": "envoy", "restartPolicy": "Always",
                                                            "readinessProbe": {"tcpSocket": {"port": 9901}}}])),
        ("Deployment", lambda o: o["spec"].update(selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]})),
        ("Deployment", lambda o: o["spec"].update(strategy={"type": "Recreate"})),
        ("Deployment", lambda o: o["spec"].update(replicas=0, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})),
        ("Service", lambda o: o["spec"].update(clusterIP="None", ports=[])),
        ("Service", lambda o: o["spec"].update(type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}, {"name": "dns", "port": 53, "protocol": "UDP"}])),
        ("Service", lambda o: o.update(spec={"type": "ExternalName", "externalName": "db.example.com."})),
        ("Service", lambda o: o["spec"].update(clusterIP="10.96.0.10", ports=[{"port": 80, "targetPort": "http"}])),
        ("Ingress", lambda o: o["spec"]["rules"][0].update(host="*.example.com")),
        ("Ingress", lambda o: o.update(spec={"defaultBackend": {"service": {"name": "web", "port": {"name": "http"}}}})),
        ("Event", lambda o: o["involvedObject"].pop("namespace")),
        ("Endpoints", lambda o: o["subsets"][0].update(addresses=[], notReadyAddresses=[{"ip": "fd00::1"}])),
        ("Node", lambda o: o["spec"].update(taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}])),
    ],
)
def test_valid_variants(kind: str, mutate: Mutation) -> None:
    obj = valid(kind)
    mutate(obj)
    assert check(kind, obj) == []


# ---------------------------------------------------------------------------- updates

def _stored(kind: str) -> Obj:
    obj = valid(kind)
    apply_defaults(kind, obj)
    return obj


@pytest.mark.parametrize(
    "mutate",
    [
        lambda o: _c(o).update(image="nginx:1.26"),
        lambda o: o["spec"].update(activeDeadlineSeconds=100),
        lambda o: o["spec"].update(tolerations=[{"key": "k", "operator": "Exists"}]),
        lambda o: o["metadata"].update(labels={"new": "label"}),
        lambda o: o.update(status={"phase": "Running"}),
    ],
)
def test_pod_update_allowed(mutate: Mutation) -> None:
    old = _stored("Pod")
    new = copy.deepcopy(old)
    mutate(new)
    assert check("Pod", new, old=old) == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda o: _c(o).update(ports=[{"containerPort": 81}]),
        lambda o: o["spec"].update(restartPolicy="Never"),
        lambda o: o["spec"].update(nodeName="other-node"),
        lambda o: o["spec"]["containers"].append({"name": "b", "image": "busybox"}),
        lambda o: o["spec"].update(terminationGracePeriodSeconds=5),
    ],
)
def test_pod_update_forbidden(mutate: Mutation) -> None:
    old = _stored("Pod")
    new = copy.deepcopy(old)
    mutate(new)
    causes = check("Pod", new, old=old)
    spec_causes = [c for c in causes if c.field == "spec"]
    assert len(spec_causes) == 1 and spec_causes[0].reason == "FieldValueForbidden"
    assert spec_causes[0].message.startswith("Forbidden: pod updates may not change fields other than `spec.containers[*].image`")


def test_pod_update_tolerations_only_additions() -> None:
    old = _stored("Pod")
    old["spec"]["tolerations"] = [{"key": "a", "operator": "Exists"}]
    new = copy.deepcopy(old)
    new["spec"]["tolerations"] = [{"key": "b", "operator": "Exists"}]
    causes = check("Pod", new, old=old)
    assert ("spec.tolerations", "FieldValueForbidden") in [(c.field, c.reason) for c in causes]


def test_pod_update_deadline_may_only_shrink() -> None:
    old = _stored("Pod")
    old["spec"]["activeDeadlineSeconds"] = 100
    new = copy.deepcopy(old)
    new["spec"]["activeDeadlineSeconds"] = 200
    causes = check("Pod", new, old=old)
    assert ("spec.activeDeadlineSeconds", "FieldValueInvalid") in [(c.field, c.reason) for c in causes]


def test_pod_update_grace_period_negative_to_one() -> None:
    old = _stored("Pod")
    old["spec"]["terminationGracePeriodSeconds"] = -1
    new = copy.deepcopy(old)
    new["spec"]["terminationGracePeriodSeconds"] = 1
    assert not [c for c in check("Pod", new, old=old) if c.field == "spec"]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet"])
def test_selector_is_immutable(kind: str) -> None:
    old = _stored(kind)
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "fe"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "fe"
    causes = check(kind, new, old=old)
    assert [(c.field, c.reason, c.message.split(": ")[-1]) for c in causes] == [
        ("spec.selector", "FieldValueInvalid", "field is immutable")]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet"])
def test_scaling_is_an_allowed_update(kind: str) -> None:
    old = _stored(kind)
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    assert check(kind, new, old=old) == []


def test_service_cluster_ip_is_immutable_once_set() -> None:
    old = _stored("Service")
    old["spec"]["clusterIP"] = "10.96.0.10"
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.11"
    causes = check("Service", new, old=old)
    assert [(c.field, c.message) for c in causes] == [("spec.clusterIP", 'Invalid value: "10.96.0.11": field is immutable')]
    unset = _stored("Service")
    assert check("Service", copy.deepcopy(new), old=unset) == []  # allocation happens after create


def test_immutable_config_map() -> None:
    old = _stored("ConfigMap")
    old["immutable"] = True
    new = copy.deepcopy(old)
    new["data"]["app.conf"] = "x=2"
    new["immutable"] = False
    fields = [(c.field, c.reason) for c in check("ConfigMap", new, old=old)]
    assert ("data", "FieldValueForbidden") in fields and ("immutable", "FieldValueForbidden") in fields


# ---------------------------------------------------------------------------- robustness

_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=True)
    | st.text(max_size=12) | st.sampled_from(["", "None", "Always", "In", "Exists", "TCP", "1Gi", "25%", "-1", "a/b/c", "..", "Prefix"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "image", "containers", "ports", "selector", "template", "spec", "metadata", "labels",
                         "matchLabels", "matchExpressions", "resources", "limits", "requests", "strategy", "rollingUpdate",
                         "maxSurge", "maxUnavailable", "volumes", "volumeMounts", "env", "valueFrom", "rules", "http",
                         "paths", "backend", "service", "port", "subsets", "addresses", "data", "binaryData", "type",
                         "clusterIP", "tolerations", "livenessProbe", "httpGet", "exec", "initContainers", "replicas",
                         "namespace", "generateName", "annotations", "ownerReferences", "finalizers", "taints", "capacity",
                         "involvedObject", "eventTime", "sessionAffinity", "targetPort", "nodePort", "protocol"])
        | st.text(max_size=6), children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(NAMESPACED) + ["Unknown"]), spec=_json, metadata=_json, extra=_json, old=_json)
def test_garbage_never_raises(kind: str, spec: Any, metadata: Any, extra: Any, old: Any) -> None:
    obj: Obj = {"metadata": metadata, "spec": spec, "status": extra, "subsets": extra, "data": extra,
                "involvedObject": extra, "template": spec}
    apply_defaults(kind, obj)
    causes = validate(kind, obj, old={"spec": old, "metadata": old})
    assert isinstance(causes, list)
    assert all(isinstance(c, StatusCause) and c.reason != "InternalError" for c in causes), causes


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(sorted(NAMESPACED)), path_choice=st.integers(min_value=0, max_value=10**6), value=_json)
def test_one_garbage_field_in_a_valid_object_never_raises(kind: str, path_choice: int, value: Any) -> None:
    """Replace one node of a real object with random JSON: still a list of causes, never an exception."""
    obj = _stored(kind)
    nodes: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                nodes.append((node, k))
                walk(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                nodes.append((node, i))
                walk(v)

    walk(obj)
    parent, slot = nodes[path_choice % len(nodes)]
    parent[slot] = value
    causes = validate(kind, obj, old=_stored(kind))
    assert all(c.reason != "InternalError" for c in causes), causes

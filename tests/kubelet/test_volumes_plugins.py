"""The kubelet's volume decisions without a cluster: downward API values, projected payloads,
claims and PVs, local-path reclaim, hostPath type checks, tmpfs sizes, the atomic writer and the
Node's local-path annotation."""

from __future__ import annotations

import base64
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from datetime import datetime, timezone

from kubelet.nodestatus import LOCAL_PATH_DIR_ANNOTATION, NodeIdentity, new_node, node_spec_patch
from kubelet.volumes import SourceError, emptydir, hostpath, writer
from kubelet.volumes.downward import field_value, format_map, resource_value
from kubelet.volumes.localpath import PROVISIONED_BY, PROVISIONER, affinity_nodes, reclaim_path, within
from kubelet.volumes.projection import (
    CONFIGMAPS, SECRETS, File, Ref, TokenRef, references, token_refs, volume_payload,
)
from kubelet.volumes.pvc import claim_volume_name, pv_source

POD: dict[str, Any] = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"b": "2", "a": "x\"y"},
                 "annotations": {"note": "hi"}},
    "spec": {"nodeName": "n1", "containers": [
        {"name": "c", "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "250m"}}},
        {"name": "free"}]},
}
ALLOC = {"cpu": "4", "memory": "8Gi"}


@pytest.mark.parametrize("path,want", [
    ("metadata.name", "p"), ("metadata.namespace", "ns"), ("metadata.uid", "u-1"),
    ("metadata.labels", 'a="x\\"y"\nb="2"'), ("metadata.annotations", 'note="hi"'),
    ("metadata.labels['b']", "2"), ("metadata.annotations['missing']", ""),
])
def test_field_value(path: str, want: str) -> None:
    assert field_value(POD, path) == want


def test_field_value_unsupported() -> None:
    with pytest.raises(SourceError, match="unsupported fieldPath"):
        field_value(POD, "status.phase")


@pytest.mark.parametrize("ref,want", [
    ({"containerName": "c", "resource": "limits.cpu"}, "1"),  # 500m rounded up to whole cores
    ({"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}, "500"),
    ({"containerName": "c", "resource": "requests.cpu", "divisor": "1m"}, "250"),
    ({"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}, "64"),
    ({"containerName": "c", "resource": "requests.memory"}, str(64 * 2**20)),  # the limit
    ({"containerName": "free", "resource": "limits.memory", "divisor": "1Gi"}, "8"),  # node allocatable
    ({"containerName": "free", "resource": "requests.cpu"}, "0"),
])
def test_resource_value(ref: dict[str, str], want: str) -> None:
    assert resource_value(POD, ref, allocatable=ALLOC) == want


@pytest.mark.parametrize("ref,match", [
    ({"containerName": "nope", "resource": "limits.cpu"}, "container nope not found"),
    ({"containerName": "c", "resource": "limits.gpu"}, "unsupported container resource"),
])
def test_resource_value_errors(ref: dict[str, str], match: str) -> None:
    with pytest.raises(SourceError, match=match):
        resource_value(POD, ref, allocatable=ALLOC)


def test_format_map_sorted() -> None:
    assert format_map({"z": 1, "a": "b"}) == 'a="b"\nz="1"'


CM = {"data": {"a": "1", "b": "2"}, "binaryData": {"bin": base64.b64encode(b"\x00\x01").decode()}}
SECRET = {"data": {"user": base64.b64encode(b"admin").decode(), "pw": base64.b64encode(b"s3cret").decode()}}


def _payload(volume: dict[str, Any], objects: dict[Ref, Any] | None = None,
             tokens: dict[int, str] | None = None) -> dict[str, File]:
    return volume_payload(POD, {"name": "v", **volume}, objects=objects or {}, tokens=tokens or {}, allocatable=ALLOC)


def test_configmap_all_keys_default_mode() -> None:
    got = _payload({"configMap": {"name": "cm"}}, {Ref(CONFIGMAPS, "cm", False): CM})
    assert got == {"a": File(b"1", 0o644), "b": File(b"2", 0o644), "bin": File(b"\x00\x01", 0o644)}


def test_secret_items_modes() -> None:
    vol = {"secret": {"secretName": "s", "defaultMode": 0o400,
                      "items": [{"key": "user", "path": "conf/user"}, {"key": "pw", "path": "pw", "mode": 0o600}]}}
    got = _payload(vol, {Ref(SECRETS, "s", False): SECRET})
    assert got == {"conf/user": File(b"admin", 0o400), "pw": File(b"s3cret", 0o600)}


@pytest.mark.parametrize("volume,objects,match", [
    ({"configMap": {"name": "cm"}}, {}, 'configmap "cm" not found'),
    ({"secret": {"secretName": "s"}}, {}, 'secret "s" not found'),
    ({"configMap": {"name": "cm", "items": [{"key": "zz", "path": "z"}]}}, {Ref(CONFIGMAPS, "cm", False): CM},
     "configmap references non-existent config key: zz"),
    ({"secret": {"secretName": "s", "items": [{"key": "zz", "path": "z"}]}}, {Ref(SECRETS, "s", False): SECRET},
     "references non-existent secret key: zz"),
])
def test_missing_objects_and_keys(volume: dict[str, Any], objects: dict[Ref, Any], match: str) -> None:
    with pytest.raises(SourceError, match=match):
        _payload(volume, objects)


def test_optional_missing_object_and_key() -> None:
    assert _payload({"configMap": {"name": "cm", "optional": True}}) == {}
    got = _payload({"secret": {"secretName": "s", "optional": True, "items": [{"key": "zz", "path": "z"},
                                                                             {"key": "pw", "path": "p"}]}},
                   {Ref(SECRETS, "s", True): SECRET})
    assert got == {"p": File(b"s3cret", 0o644)}


def test_downward_api_volume() -> None:
    vol = {"downwardAPI": {"defaultMode": 0o444, "items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o400},
        {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}}]}}
    assert _payload(vol) == {"labels": File(b'a="x\\"y"\nb="2"', 0o444), "name": File(b"p", 0o400),
                             "cpu": File(b"500", 0o444)}


def test_projected_sources_together() -> None:
    vol = {"projected": {"defaultMode": 0o440, "sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 600, "audience": "api"}},
        {"configMap": {"name": "cm", "items": [{"key": "a", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
        {"secret": {"name": "s", "optional": True}}]}}
    assert references({"name": "v", **vol}) == [Ref(CONFIGMAPS, "cm", False), Ref(SECRETS, "s", True)]
    assert token_refs({"name": "v", **vol}) == [TokenRef(index=0, audience="api", expiration_seconds=600,
                                                         path="token")]
    got = _payload(vol, {Ref(CONFIGMAPS, "cm", False): CM}, {0: "jwt"})
    assert got == {"token": File(b"jwt", 0o440), "ca.crt": File(b"1", 0o440), "namespace": File(b"ns", 0o440)}


# ----------------------------------------------------------------------------- claims and PVs
def _claim(phase: str = "Bound", volume: str = "pv1", deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "data"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"volumeName": volume}, "status": {"phase": phase}}


@pytest.mark.parametrize("claim,match", [
    (None, 'persistentvolumeclaim "data" not found'),
    (_claim("Pending", ""), "unbound immediate PersistentVolumeClaims"),
    (_claim(deleting=True), "is being deleted"),
])
def test_claim_not_ready(claim: dict[str, Any] | None, match: str) -> None:
    with pytest.raises(SourceError, match=match):
        claim_volume_name("ns", "data", claim)


def test_claim_bound() -> None:
    assert claim_volume_name("ns", "data", _claim()) == "pv1"


def test_pv_sources() -> None:
    local = {"metadata": {"annotations": {PROVISIONED_BY: PROVISIONER}}, "spec": {"local": {"path": "/d/x"}}}
    src = pv_source(local, name="pv1", read_only=True)
    assert (src.path, src.read_only, src.create, src.must_exist) == ("/d/x", True, True, False)
    static = pv_source({"spec": {"local": {"path": "/mnt/disk"}}}, name="pv2", read_only=False)
    assert (static.create, static.must_exist) == (False, True)
    hp = pv_source({"spec": {"hostPath": {"path": "/h", "type": "DirectoryOrCreate"}}}, name="pv3", read_only=False)
    assert (hp.path, hp.host_path_type) == ("/h", "DirectoryOrCreate")
    with pytest.raises(SourceError, match="nfs is not supported"):
        pv_source({"spec": {"nfs": {"server": "x", "path": "/"}}}, name="pv4", read_only=False)
    with pytest.raises(SourceError, match='persistentvolume "pv5" not found'):
        pv_source(None, name="pv5", read_only=False)


# ----------------------------------------------------------------------------- local-path reclaim
def _pv(phase: str = "Released", policy: str = "Delete", node: str = "n1", path: str = "/root/n1/local-path/pv_ns_c",
        provisioner: str = PROVISIONER) -> dict[str, Any]:
    return {"metadata": {"name": "pv", "annotations": {PROVISIONED_BY: provisioner}},
            "spec": {"persistentVolumeReclaimPolicy": policy, "local": {"path": path},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}},
            "status": {"phase": phase}}


@pytest.mark.parametrize("pv,want", [
    (_pv(), "/root/n1/local-path/pv_ns_c"),
    (_pv(phase="Bound"), None),
    (_pv(policy="Retain"), None),
    (_pv(node="n2"), None),
    (_pv(provisioner="other"), None),
    (_pv(path="/etc"), None),  # never outside the node's local-path directory
    (_pv(path="/root/n1/local-path"), None),  # nor the directory itself
    (_pv(path="/root/n1/local-path/../../x"), None),
])
def test_reclaim_path(pv: dict[str, Any], want: str | None) -> None:
    assert reclaim_path(pv, node="n1", local_dir="/root/n1/local-path") == want


def test_affinity_and_within() -> None:
    assert affinity_nodes(_pv(node="a")) == {"a"}
    assert within("/a/b/c", "/a/b") and not within("/a/bc", "/a/b")


# ----------------------------------------------------------------------------- hostPath
def test_host_path_types(tmp_path: Path) -> None:
    d, f = tmp_path / "d", tmp_path / "f"
    d.mkdir()
    f.write_text("x")
    sock_path = str(tmp_path / "s")
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock_path)
    try:
        for path, kind in ((str(d), "Directory"), (str(f), "File"), (sock_path, "Socket"), ("/dev/null", "CharDevice")):
            hostpath.ensure(path, kind)
            hostpath.ensure(path, "")
    finally:
        s.close()
    with pytest.raises(SourceError, match=f"hostPath type check failed: {f} is not a directory, it's a File"):
        hostpath.ensure(str(f), "Directory")
    with pytest.raises(SourceError, match=f"hostPath type check failed: {d} is not a file, it's a Directory"):
        hostpath.ensure(str(d), "FileOrCreate")
    with pytest.raises(SourceError, match=f"hostPath {tmp_path}/missing doesn't exist"):
        hostpath.ensure(str(tmp_path / "missing"), "File")
    with pytest.raises(SourceError, match="Weird is an invalid volume type"):
        hostpath.ensure(str(d), "Weird")
    hostpath.ensure(str(tmp_path / "new" / "dir"), "DirectoryOrCreate")
    assert (tmp_path / "new" / "dir").is_dir()
    hostpath.ensure(str(tmp_path / "new" / "file"), "FileOrCreate")
    assert (tmp_path / "new" / "file").is_file()
    with pytest.raises(SourceError, match="no such file"):
        hostpath.ensure(str(tmp_path / "absent" / "file"), "FileOrCreate")


# ----------------------------------------------------------------------------- emptyDir
@pytest.mark.parametrize("volume,containers,want", [
    ({"emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}, [{}], 64 * 2**20),
    ({"emptyDir": {"medium": "Memory"}}, [{"resources": {"limits": {"memory": "1Mi"}}},
                                          {"resources": {"limits": {"memory": "2Mi"}}}], 3 * 2**20),
    ({"emptyDir": {"medium": "Memory"}}, [{"resources": {"limits": {"memory": "1Mi"}}}, {}], None),
])
def test_tmpfs_size(volume: dict[str, Any], containers: list[dict[str, Any]], want: int | None) -> None:
    assert emptydir.tmpfs_size({"spec": {"containers": containers}}, volume) == want


def test_memory_volume_name() -> None:
    assert emptydir.is_memory({"emptyDir": {"medium": "Memory"}}) and not emptydir.is_memory({"emptyDir": {}})
    assert emptydir.memory_volume_name("u/1", "cache~x") == "mk8s-u-1-cache-x"


# ----------------------------------------------------------------------------- the atomic writer
def test_writer_layout_update_and_removal(tmp_path: Path) -> None:
    d = tmp_path / "vol"
    assert writer.write(d, {"a": File(b"1", 0o644), "dir/b": File(b"2", 0o400)})
    assert (d / "a").read_bytes() == b"1" and (d / "dir" / "b").read_bytes() == b"2"
    assert os.readlink(d / "a") == "..data/a" and os.stat(d / "dir" / "b").st_mode & 0o777 == 0o400
    first = os.readlink(d / "..data")
    assert not writer.write(d, {"a": File(b"1", 0o644), "dir/b": File(b"2", 0o400)})  # unchanged: no write
    assert writer.write(d, {"a": File(b"new", 0o600)})
    assert (d / "a").read_bytes() == b"new" and not (d / "dir").exists()
    assert not (d / first).exists() and os.readlink(d / "..data") != first
    assert sorted(p.name for p in d.iterdir() if not p.name.startswith("..")) == ["a"]


@pytest.mark.parametrize("path", ["/abs", "../x", "a/../b", "..data", "a//b"])
def test_writer_rejects_paths(tmp_path: Path, path: str) -> None:
    with pytest.raises(SourceError):
        writer.write(tmp_path / "v", {path: File(b"", 0o644)})


# ----------------------------------------------------------------------------- the Node
def test_node_publishes_local_path_dir() -> None:
    ident = NodeIdentity(name="n1", pod_cidr="10.0.0.0/24", internal_ip="10.0.0.1", capacity={},
                         local_path_dir="/var/lib/minik8s/kubelet/n1/local-path")
    node = new_node(ident, now=datetime.now(timezone.utc))
    assert node["metadata"]["annotations"][LOCAL_PATH_DIR_ANNOTATION] == "/var/lib/minik8s/kubelet/n1/local-path"
    patch = node_spec_patch(ident, {"metadata": {"labels": ident.labels(), "annotations": {}},
                                    "spec": {"podCIDR": "10.0.0.0/24"}})
    assert patch == {"metadata": {"annotations": {LOCAL_PATH_DIR_ANNOTATION: ident.local_path_dir}}}
    assert node_spec_patch(ident, node) is None


def test_disk_size_limit_eviction_decision() -> None:
    pod = {"spec": {"volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}},
                                {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                                {"name": "free", "emptyDir": {}}]}}
    limits = emptydir.disk_limits(pod)
    assert limits == [("scratch", 2**20, "1Mi")]
    assert emptydir.over_limit(limits, {"scratch": 2**20}) is None
    message = emptydir.over_limit(limits, {"scratch": 2**20 + 4096})
    assert message == 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '
    status = emptydir.evicted_status({"phase": "Failed", "reason": "Terminated", "conditions": [
        {"type": "DisruptionTarget", "status": "True", "message": "x"}, {"type": "Ready", "status": "False"}]}, message)
    assert status["reason"] == "Evicted" and status["message"] == message
    assert status["conditions"][0]["message"] == message and status["conditions"][1] == {"type": "Ready",
                                                                                          "status": "False"}


@pytest.mark.parametrize("text,want", [
    ("$(POD)", "web-1"), ("logs/$(POD)/$(NS)", "logs/web-1/prod"), ("$(MISSING)", "$(MISSING)"),
    ("$$(POD)", "$(POD)"), ("a$b", "a$b"), ("$(POD", "$(POD"), ("", ""),
])
def test_sub_path_expansion(text: str, want: str) -> None:
    from kubelet.volumes.downward import expand
    assert expand(text, {"POD": "web-1", "NS": "prod"}) == want

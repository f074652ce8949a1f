"""A container's bind mounts from its pod's prepared volumes (``VolumeManager.mounts``): subPath
directories made inside writable volumes, a projected volume's file copied aside, read-only
rules and the errors; and the disk usage the sizeLimit eviction measures. No API, no engine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kubelet.cri import Mount
from kubelet.volumes import MountError, writer
from kubelet.volumes.manager import Source, VolumeManager, _usage
from kubelet.volumes.projection import File


def _manager(tmp: Path) -> VolumeManager:
    # No engine here (runtime None): only the file-system calls come through the pool.
    return VolumeManager(None, None, node_name="n1", pod_dir=lambda uid: tmp / "pods" / uid,  # type: ignore[arg-type]
                         run_blocking=asyncio.to_thread, allocatable=lambda: {})


POD = {"metadata": {"uid": "u1", "name": "p", "namespace": "ns"}}


def _mounts(tmp: Path, volumes: dict[str, Source], *mounts: dict[str, Any]) -> list[Mount]:
    return asyncio.run(_manager(tmp).mounts(POD, {"name": "c", "volumeMounts": list(mounts)}, volumes))


def test_plain_and_read_only_mounts(tmp_path: Path) -> None:
    vols = {"data": Source(path="/d"), "claim": Source(path="/pv", read_only=True),
            "cfg": Source(path="/cfg", read_only=True, projected=True), "mem": Source(path="mk8s-u1-mem", engine=True)}
    got = _mounts(tmp_path, vols, {"name": "data", "mountPath": "/a"},
                  {"name": "data", "mountPath": "/b", "readOnly": True}, {"name": "claim", "mountPath": "/c"},
                  {"name": "cfg", "mountPath": "/e"}, {"name": "mem", "mountPath": "/m"})
    assert got == [Mount("/d", "/a"), Mount("/d", "/b", True), Mount("/pv", "/c", True), Mount("/cfg", "/e", True),
                   Mount("mk8s-u1-mem", "/m")]


def test_sub_path_made_inside_a_writable_volume(tmp_path: Path) -> None:
    vol = tmp_path / "pv"
    vol.mkdir()
    got = _mounts(tmp_path, {"data": Source(path=str(vol))}, {"name": "data", "mountPath": "/x", "subPath": "a/b"})
    assert got == [Mount(str(vol / "a" / "b"), "/x")] and (vol / "a" / "b").is_dir()


def test_sub_path_of_a_projected_volume_is_a_copy(tmp_path: Path) -> None:
    vol = tmp_path / "cfg"
    writer.write(vol, {"nginx.conf": File(b"conf", 0o644)})
    got = _mounts(tmp_path, {"cfg": Source(path=str(vol), read_only=True, projected=True)},
                  {"name": "cfg", "mountPath": "/etc/nginx/nginx.conf", "subPath": "nginx.conf"})
    aside = Path(got[0].source)
    assert aside.read_bytes() == b"conf" and not aside.is_symlink() and got[0].read_only
    assert aside.is_relative_to(tmp_path / "pods" / "u1" / "volume-subpaths" / "cfg")


@pytest.mark.parametrize("volumes,mount,match", [
    ({}, {"name": "gone", "mountPath": "/x"}, "volume gone not found"),
    ({"m": Source(path="v", engine=True)}, {"name": "m", "mountPath": "/x", "subPath": "a"},
     "subPath is not supported"),
    ({"d": Source(path="/d")}, {"name": "d", "mountPath": "/x", "subPath": "../etc"}, "subPath: invalid path"),
])
def test_mount_errors(tmp_path: Path, volumes: dict[str, Source], mount: dict[str, Any], match: str) -> None:
    with pytest.raises(MountError, match=match):
        _mounts(tmp_path, volumes, mount)


def test_usage_counts_allocated_bytes(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f").write_bytes(b"x" * 100_000)
    assert 100_000 <= _usage(tmp_path) < 200_000
    assert _usage(tmp_path / "absent") == 0


def test_sub_path_expr_uses_the_environment(tmp_path: Path) -> None:
    vol = tmp_path / "logs"
    vol.mkdir()
    got = asyncio.run(_manager(tmp_path).mounts(
        POD, {"name": "c", "volumeMounts": [{"name": "logs", "mountPath": "/l", "subPathExpr": "$(POD_NAME)"}]},
        {"logs": Source(path=str(vol))}, env={"POD_NAME": "web-1"}))
    assert got == [Mount(str(vol / "web-1"), "/l")] and (vol / "web-1").is_dir()

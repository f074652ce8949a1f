"""The Docker engine's socket can never be mounted into a pod: minik8s' own admission rule, pure.

Whoever mounts ``/var/run/docker.sock`` controls the engine that runs every pod of the node, so
this holds in every namespace, ``privileged`` ones included. Data flow: a pod (or a workload's
pod template, or a hostPath/local PersistentVolume) -> every host path it names
(``spec.volumes[i].hostPath.path``, ``spec.hostPath.path``, ``spec.local.path``) -> normalised
as the kernel resolves it (``//``, ``/./``, ``..``, trailing slashes) -> refused when it is the
socket or a directory that contains it (``/``, ``/var``, ``/var/run``, ``/run``).
``pod_violations`` and ``persistent_volume_violations`` answer ``(field, message)`` pairs; the
caller turns them into a 403 for pods and volumes and a ``Warning`` for workload templates (their
pods are refused when they are created).

The API server cannot see the node's filesystem: a symlink elsewhere on the host that points at
the socket is not caught here.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

Obj = Mapping[str, Any]

# /var/run is a symlink to /run on the engine's hosts: both names reach the same socket.
ENGINE_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")


def normalized(path: str) -> str:
    """The absolute path the kernel would resolve (without following symlinks)."""
    clean = posixpath.normpath("/" + path.lstrip("/"))
    return "/" + clean.lstrip("/")


def exposed_socket(path: str) -> str | None:
    """The engine socket a host path exposes (the socket itself or a directory above it), else None."""
    target = normalized(path)
    for socket in ENGINE_SOCKETS:
        if target == socket or socket.startswith(target.rstrip("/") + "/"):
            return socket
    return None


def message(path: str, socket: str) -> str:
    what = ("is the Docker engine's socket" if normalized(path) == socket
            else f"contains the Docker engine's socket {socket}")
    return f'Forbidden: "{path}" {what}, which can never be mounted into a pod'


def _check(field_path: str, path: Any) -> list[tuple[str, str]]:
    socket = exposed_socket(path) if isinstance(path, str) else None
    return [(field_path, message(path, socket))] if socket is not None else []


def pod_violations(spec: Obj, *, field_prefix: str = "spec") -> list[tuple[str, str]]:
    """(field, message) for every hostPath volume of a pod spec that exposes the engine socket;
    ``field_prefix`` is where the spec sits (``spec.template.spec`` in a Deployment)."""
    out = []
    for i, volume in enumerate(spec.get("volumes") or []):
        if isinstance(volume, Mapping):
            out += _check(f"{field_prefix}.volumes[{i}].hostPath.path", (volume.get("hostPath") or {}).get("path"))
    return out


def persistent_volume_violations(pv: Obj) -> list[tuple[str, str]]:
    """The same for a PersistentVolume's hostPath or local path."""
    spec = pv.get("spec") or {}
    return [v for source in ("hostPath", "local") for v in _check(f"spec.{source}.path",
                                                                  (spec.get(source) or {}).get("path"))]

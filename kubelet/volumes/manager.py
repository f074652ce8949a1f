"""The kubelet's volume manager: sets up a pod's volumes and gives each container its mounts.

Data flow (``kubelet.containerconfig`` calls it before each container start; the agent calls
``refresh`` on every sync of a running pod and ``teardown`` when the pod is gone):

    pod.spec.volumes -> setup(pod) -> {volume name: Source}   (every volume of the pod, as the
        kubelet's WaitForAttachAndMount does; the first that fails is a MountError)
          emptyDir            -> <pod dir>/volumes/kubernetes.io~empty-dir/<name>, or a tmpfs
                                 engine volume (medium Memory; kubelet.volumes.emptydir)
          hostPath            -> the type check (kubelet.volumes.hostpath)
          persistentVolumeClaim -> GET claim, GET PV (kubelet.volumes.pvc); local-path dirs made
          configMap, secret, downwardAPI, projected
                              -> GET the objects (and tokens: kubelet.volumes.tokens, TokenRequests
                                 refreshed at 80% of their lifetime) -> projection -> writer
                                 (<pod dir>/volumes/kubernetes.io~<plugin>/<name>, read-only mounts)
    container.volumeMounts -> mounts(pod, container) -> [Mount] (subPath, or subPathExpr expanded
        with the container's environment: a directory inside the volume, made when missing; a
        file of a projected volume is copied aside, as a subPath mount of one gets no updates in
        Kubernetes either)
    refresh(pod)    -> the projected-type volumes written again when their content changed
                       (label/annotation changes at once; ConfigMap/Secret edits and token
                       rotation within ``refresh_interval``, 5 s)
    over_limit(pod) -> the eviction message when a disk emptyDir outgrew its sizeLimit
    teardown(uid)   -> the pod's tmpfs volumes removed; its directories go with the pod directory.
                       A PVC's data is never touched here.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from kubelet.blocking import RunBlocking
from kubelet.cri import LABEL_NODE, LABEL_POD_UID, ContainerRuntime, ContainerRuntimeError, Mount
from kubelet.volumes import MountError, SourceError, emptydir, hostpath, writer
from kubelet.volumes.downward import expand
from kubelet.volumes.projection import CONFIGMAPS, SECRETS, Ref, references, token_refs, volume_payload
from kubelet.volumes.pvc import claim_volume_name, pv_source
from kubelet.volumes.tokens import TokenManager
from machinery import errors
from machinery.client import ApiClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PVCS, PVS = ("v1", "persistentvolumeclaims"), ("v1", "persistentvolumes")
PROJECTED_KINDS = ("configMap", "secret", "downwardAPI", "projected")
_PLUGIN_DIRS = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
                "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
                "projected": "kubernetes.io~projected"}


@dataclass(frozen=True)
class Source:
    path: str  # host path, or an engine volume's name (engine=True)
    read_only: bool = False
    projected: bool = False  # written by the kubelet in the ..data layout (always mounted read-only)
    engine: bool = False


def volume_kind(volume: Mapping[str, Any]) -> str:
    return next((k for k in volume if k != "name"), "")


class VolumeManager:
    def __init__(self, client: ApiClient, runtime: ContainerRuntime, *, node_name: str,
                 pod_dir: Callable[[str], Path], run_blocking: RunBlocking,
                 allocatable: Callable[[], Mapping[str, str]], usage_interval: float = 2.0,
                 refresh_interval: float = 5.0) -> None:
        self.client = client
        self.runtime = runtime
        self.node_name = node_name
        self.pod_dir = pod_dir
        self.run_blocking = run_blocking
        self.allocatable = allocatable
        self.tokens = TokenManager(client)  # serviceAccountToken sources (kubelet.volumes.tokens)
        self._measured: dict[str, float] = {}  # pod uid -> when its emptyDir usage was last measured
        self._refreshed: dict[tuple[str, int], float] = {}  # (pod uid, volume index) -> last refresh
        self.usage_interval = usage_interval
        self.refresh_interval = refresh_interval

    # ------------------------------------------------------------------ setup
    async def setup(self, pod: Obj) -> dict[str, Source]:
        out: dict[str, Source] = {}
        for i, volume in enumerate((pod.get("spec") or {}).get("volumes") or []):
            name = str(volume.get("name"))
            try:
                out[name] = await self._setup_one(pod, i, volume)
            except SourceError as e:
                raise MountError(name, str(e)) from None
            except OSError as e:
                raise MountError(name, str(e)) from None
        return out

    def _dir(self, pod: Obj, kind: str, name: str) -> Path:
        uid = str((pod.get("metadata") or {}).get("uid"))
        return self.pod_dir(uid) / "volumes" / _PLUGIN_DIRS[kind] / name

    async def _setup_one(self, pod: Obj, index: int, volume: Obj) -> Source:
        kind = volume_kind(volume)
        name = str(volume.get("name"))
        meta = pod.get("metadata") or {}
        if kind == "emptyDir":
            if emptydir.is_memory(volume):
                engine_name = emptydir.memory_volume_name(str(meta.get("uid")), name)
                try:
                    await self.run_blocking(self.runtime.ensure_tmpfs_volume, engine_name,
                                            size_bytes=emptydir.tmpfs_size(pod, volume),
                                            labels={LABEL_POD_UID: str(meta.get("uid")), LABEL_NODE: self.node_name})
                except ContainerRuntimeError as e:
                    raise SourceError(str(e)) from None
                return Source(path=engine_name, engine=True)
            path = self._dir(pod, kind, name)
            await self.run_blocking(_mkdir, path, 0o777)
            return Source(path=str(path))
        if kind == "hostPath":
            hp = volume.get("hostPath") or {}
            host = str(hp.get("path") or "")
            await self.run_blocking(hostpath.ensure, host, str(hp.get("type") or ""))
            return Source(path=host)
        if kind == "persistentVolumeClaim":
            return await self._claim(pod, volume)
        if kind in PROJECTED_KINDS:
            path = self._dir(pod, kind, name)
            await self._write_projected(pod, index, volume, path)
            return Source(path=str(path), read_only=True, projected=True)
        raise SourceError(f"volume type {kind or 'none'} is not supported by this kubelet")

    async def _claim(self, pod: Obj, volume: Obj) -> Source:
        src = volume.get("persistentVolumeClaim") or {}
        ns = str((pod.get("metadata") or {}).get("namespace"))
        claim_name = str(src.get("claimName") or "")
        claim = await self._get(PVCS, claim_name, namespace=ns)
        pv_name = claim_volume_name(ns, claim_name, claim)
        pv = await self._get(PVS, pv_name)
        source = pv_source(pv, name=pv_name, read_only=bool(src.get("readOnly")))
        if source.create:
            await self.run_blocking(_mkdir, Path(source.path), 0o777)
        elif source.must_exist and not await self.run_blocking(os.path.exists, source.path):
            raise SourceError(f'path "{source.path}" does not exist')
        if source.host_path_type:
            await self.run_blocking(hostpath.ensure, source.path, source.host_path_type)
        return Source(path=source.path, read_only=source.read_only)

    async def _get(self, resource: Any, name: str, *, namespace: str | None = None) -> Obj | None:
        try:
            return await self.client.get(resource, name, namespace=namespace)
        except errors.NotFoundError:
            return None
        except errors.ApiError as e:
            raise SourceError(f"failed to fetch {name}: {e}") from None

    async def _write_projected(self, pod: Obj, index: int, volume: Obj, path: Path) -> bool:
        meta = pod.get("metadata") or {}
        ns = str(meta.get("namespace"))
        objects: dict[Ref, Obj | None] = {}
        for ref in references(volume):
            if ref not in objects:
                resource = ("v1", CONFIGMAPS if ref.kind == CONFIGMAPS else SECRETS)
                objects[ref] = await self._get(resource, ref.name, namespace=ns)
        tokens = {t.index: await self.tokens.get(pod, t) for t in token_refs(volume)}
        payload = volume_payload(pod, volume, objects=objects, tokens=tokens, allocatable=self.allocatable(),
                                 node_name=self.node_name)
        return bool(await self.run_blocking(writer.write, path, payload))

    # ------------------------------------------------------------------ per container
    async def mounts(self, pod: Obj, container: Obj, volumes: Mapping[str, Source], *,
                     env: Mapping[str, str] | None = None) -> list[Mount]:
        """The container's bind mounts; ``env`` (its environment) expands ``subPathExpr``."""
        out: list[Mount] = []
        uid = str((pod.get("metadata") or {}).get("uid"))
        for i, vm in enumerate(container.get("volumeMounts") or []):
            name = str(vm.get("name"))
            source = volumes.get(name)
            if source is None:
                raise MountError(name, f"volume {name} not found in the pod's volumes")
            path = source.path
            sub = str(vm.get("subPath") or "") or expand(str(vm.get("subPathExpr") or ""), env or {})
            if sub:
                try:
                    writer.validate(sub)
                except SourceError as e:
                    raise MountError(name, f"subPath: {e}") from None
                if source.engine:
                    raise MountError(name, "subPath is not supported on an emptyDir of medium Memory here")
                if source.projected:
                    aside = self.pod_dir(uid) / "volume-subpaths" / name / str(container.get("name")) / str(i)
                    path = await self.run_blocking(_copy_aside, Path(source.path) / sub, aside)
                else:
                    path = str(Path(source.path) / sub)
                    if not await self.run_blocking(os.path.exists, path):
                        await self.run_blocking(_mkdir, Path(path), 0o777)
            out.append(Mount(source=path, target=str(vm.get("mountPath")),
                             read_only=bool(vm.get("readOnly")) or source.read_only))
        return out

    # ------------------------------------------------------------------ while running, and after
    async def refresh(self, pod: Obj) -> None:
        """Writes the projected-type volumes again where their content changed; failures only log
        (the files keep their last content, as in Kubernetes). A volume made of the pod's own
        fields is looked at on every call; one that reads ConfigMaps, Secrets or tokens at most
        every ``refresh_interval`` seconds (each look is a GET per object)."""
        uid = str((pod.get("metadata") or {}).get("uid"))
        if not self.pod_dir(uid).exists():
            return
        now = time.monotonic()
        for i, volume in enumerate((pod.get("spec") or {}).get("volumes") or []):
            kind = volume_kind(volume)
            if kind not in PROJECTED_KINDS:
                continue
            path = self._dir(pod, kind, str(volume.get("name")))
            if not path.exists():
                continue
            if references(volume) or token_refs(volume):
                if now - self._refreshed.get((uid, i), 0.0) < self.refresh_interval:
                    continue
                self._refreshed[(uid, i)] = now
            try:
                if await self._write_projected(pod, i, volume, path):
                    log.info("pod %s: volume %s updated", (pod.get("metadata") or {}).get("name"), volume.get("name"))
            except (SourceError, OSError) as e:
                log.info("pod %s: volume %s not updated: %s", (pod.get("metadata") or {}).get("name"),
                         volume.get("name"), e)

    async def over_limit(self, pod: Obj) -> str | None:
        """The eviction message when a disk emptyDir uses more than its sizeLimit (measured at
        most every ``usage_interval`` seconds per pod), else None."""
        limits = emptydir.disk_limits(pod)
        uid = str((pod.get("metadata") or {}).get("uid"))
        if not limits or time.monotonic() - self._measured.get(uid, 0.0) < self.usage_interval:
            return None
        self._measured[uid] = time.monotonic()
        usage = {name: await self.run_blocking(_usage, self._dir(pod, "emptyDir", name)) for name, _, _ in limits}
        return emptydir.over_limit(limits, usage)

    async def teardown(self, uid: str) -> None:
        """Removes the pod's engine volumes (tmpfs) and forgets its tokens."""
        self.tokens.forget(uid)
        self._measured.pop(uid, None)
        for k in [k for k in self._refreshed if k[0] == uid]:
            del self._refreshed[k]
        try:
            for v in await self.run_blocking(self.runtime.list_volumes, {LABEL_POD_UID: uid}):
                await self.run_blocking(self.runtime.remove_volume, v.name)
        except ContainerRuntimeError as e:
            log.info("removing the tmpfs volumes of pod uid %s: %s (housekeeping tries again)", uid, e)

    async def remove_orphans(self, live_uids: set[str]) -> int:
        """Engine volumes of this node whose pod is gone; how many were removed."""
        gone = [v for v in await self.run_blocking(self.runtime.list_volumes, {LABEL_NODE: self.node_name})
                if v.labels.get(LABEL_POD_UID) not in live_uids]
        for v in gone:
            try:
                await self.run_blocking(self.runtime.remove_volume, v.name)
            except ContainerRuntimeError as e:
                log.info("volume %s: %s", v.name, e)
        return len(gone)


def _mkdir(path: Path, mode: int) -> None:
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)


def _usage(path: Path) -> int:
    """Bytes used under ``path`` (du: allocated blocks, symlinks not followed)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                continue
    return total


def _copy_aside(source: Path, aside: Path) -> str:
    """A projected volume's file or directory copied to ``aside`` (resolving the ..data links)."""
    real = source.resolve()
    if not real.exists():
        raise MountError(aside.parent.parent.name, f"subPath {source.name} does not exist in the volume")
    if aside.exists() or aside.is_symlink():
        shutil.rmtree(aside) if aside.is_dir() and not aside.is_symlink() else aside.unlink()
    aside.parent.mkdir(parents=True, exist_ok=True)
    if real.is_dir():
        shutil.copytree(real, aside)
    else:
        shutil.copy2(real, aside)
    return str(aside)


__all__ = ["Source", "VolumeManager", "volume_kind"]

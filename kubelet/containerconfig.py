"""What a container of a pod starts with: its environment, its volume mounts, its engine spec.

Data flow (the pod worker, ``kubelet.podworker``, calls ``spec`` for each container it creates):
    pod + container spec + the Services of the pod's namespace (kubelet.poddns.service_env)
        -> ``env``: the Service variables, then ``envFrom`` (ConfigMaps, Secrets), then ``env``
           (values, ``fieldRef``, ``resourceFieldRef``, ``configMapKeyRef``, ``secretKeyRef``)
           read through the API
    pod volumes + the container's ``volumeMounts``
        -> ``mounts``: every volume of the pod set up by ``kubelet.volumes`` (emptyDir, hostPath,
           persistentVolumeClaim, configMap, secret, downwardAPI, projected), then the
           container's bind mounts
    env + mounts + resources.limits + the running sandbox -> ``spec``: the ``ContainerSpec`` the
        engine creates (cpu limit as nano CPUs, memory limit in bytes, restart count and
        init-container labels)
A missing object or key of the environment that is not optional is a ``ConfigError`` (the
kubelet reports CreateContainerConfigError, as Kubernetes does); a volume that cannot be set up
is a ``kubelet.volumes.MountError`` (ContainerCreating and a FailedMount event).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Callable, Mapping

from kubelet.cri import ContainerInfo, ContainerRuntime, ContainerSpec, Mount
from kubelet.podsync import LABEL_INIT
from kubelet.poddns import service_env
from kubelet.volumes import SourceError
from kubelet.volumes.downward import resource_value
from kubelet.blocking import RunBlocking
from kubelet.volumes.manager import VolumeManager
from machinery import errors
from machinery.client import ApiClient
from machinery.quantity import parse_quantity, to_bytes

Obj = dict[str, Any]


class ConfigError(Exception):
    """The pod refers to something missing (a ConfigMap, a key): CreateContainerConfigError."""


class ContainerConfig:
    def __init__(self, client: ApiClient, *, node_name: str, node_address: Callable[[], str],
                 services: Callable[[], list[Obj]], pod_dir: Callable[[str], Path], runtime: ContainerRuntime,
                 run_blocking: RunBlocking, allocatable: Callable[[], Mapping[str, str]]) -> None:
        self.client = client
        self.node_name = node_name
        self.node_address = node_address
        self.services = services
        self.pod_dir = pod_dir
        self.volumes = VolumeManager(client, runtime, node_name=node_name, pod_dir=pod_dir,
                                     run_blocking=run_blocking, allocatable=allocatable)

    async def lookup(self, kind: str, namespace: str, name: str, key: str, optional: bool) -> str | None:
        try:
            obj = await self.client.get(("v1", kind), name, namespace=namespace)
        except errors.NotFoundError:
            if optional:
                return None
            raise ConfigError(f"{kind[:-1]} \"{name}\" not found")
        if kind == "secrets":
            raw = (obj.get("data") or {}).get(key)
            value = base64.b64decode(raw).decode() if raw is not None else (obj.get("stringData") or {}).get(key)
        else:
            value = (obj.get("data") or {}).get(key)
        if value is None and not optional:
            raise ConfigError(f"couldn't find key {key} in {kind[:-1]} {namespace}/{name}")
        return value

    async def env(self, pod: Obj, c: Obj, *, pod_ip: str) -> dict[str, str]:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        ns = str(meta.get("namespace"))
        fields = {"metadata.name": meta.get("name"), "metadata.namespace": ns, "metadata.uid": meta.get("uid"),
                  "status.podIP": pod_ip, "status.hostIP": self.node_address(), "spec.nodeName": self.node_name,
                  "spec.serviceAccountName": spec.get("serviceAccountName") or "default"}
        # The Services of the pod's namespace as they are now (Kubernetes' service links); the
        # container's own variables below override them.
        env: dict[str, str] = service_env(pod, self.services())
        for src in c.get("envFrom") or []:
            prefix = src.get("prefix") or ""
            for kind, ref_key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
                ref = src.get(ref_key)
                if not ref:
                    continue
                try:
                    obj = await self.client.get(("v1", kind), ref["name"], namespace=ns)
                except errors.NotFoundError:
                    if ref.get("optional"):
                        continue
                    raise ConfigError(f"{kind[:-1]} \"{ref['name']}\" not found")
                for k, v in (obj.get("data") or {}).items():
                    env[prefix + k] = base64.b64decode(v).decode() if kind == "secrets" else str(v)
        for e in c.get("env") or []:
            name = str(e.get("name"))
            if "value" in e:
                env[name] = str(e.get("value") or "")
                continue
            vf = e.get("valueFrom") or {}
            if "fieldRef" in vf:
                path = vf["fieldRef"].get("fieldPath")
                if path.startswith("metadata.labels['") or path.startswith("metadata.annotations['"):
                    which = "labels" if "labels" in path else "annotations"
                    env[name] = str((meta.get(which) or {}).get(path.split("'")[1], ""))
                else:
                    env[name] = str(fields.get(path) or "")
            elif "resourceFieldRef" in vf:
                try:
                    env[name] = resource_value(pod, vf["resourceFieldRef"], allocatable=self.volumes.allocatable(),
                                               default_container=str(c.get("name")))
                except SourceError as e:
                    raise ConfigError(str(e)) from None
            elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
                kind, ref = ("configmaps", vf["configMapKeyRef"]) if "configMapKeyRef" in vf \
                    else ("secrets", vf["secretKeyRef"])
                value = await self.lookup(kind, ns, ref["name"], ref["key"], bool(ref.get("optional")))
                if value is not None:
                    env[name] = value
        return env

    async def mounts(self, pod: Obj, c: Obj, *, env: Mapping[str, str] | None = None) -> list[Mount]:
        """Every volume of the pod set up (kubelet.volumes; a MountError while one cannot be),
        then this container's bind mounts (``env`` expands ``subPathExpr``)."""
        volumes = await self.volumes.setup(pod)
        return await self.volumes.mounts(pod, c, volumes, env=env)

    async def spec(self, pod: Obj, c: Obj, *, sandbox: ContainerInfo, restart_count: int,
                   init: bool) -> ContainerSpec:
        """The engine's spec of container ``c`` of ``pod`` in ``sandbox`` (ConfigError, MountError)."""
        meta = pod.get("metadata") or {}
        env = await self.env(pod, c, pod_ip=sandbox.ip or "")
        mounts = await self.mounts(pod, c, env=env)
        limits = (c.get("resources") or {}).get("limits") or {}
        nano_cpus = int(parse_quantity(limits["cpu"]) * 1_000_000_000) if limits.get("cpu") else None
        mem = to_bytes(limits["memory"]) if limits.get("memory") else None
        return ContainerSpec(
            pod_uid=str(meta.get("uid")), pod_name=str(meta.get("name")), namespace=str(meta.get("namespace")),
            node=self.node_name, name=str(c.get("name")), image=str(c.get("image")), sandbox_id=sandbox.id,
            command=c.get("command"), args=c.get("args"), env=env, working_dir=c.get("workingDir"),
            nano_cpus=nano_cpus, mem_limit=mem, mounts=mounts, restart_count=restart_count,
            stdin=bool(c.get("stdin")), tty=bool(c.get("tty")),
            labels={LABEL_INIT: "true"} if init else {})

"""What a container of a pod starts with: its environment and its volume mounts.

Data flow (the kubelet calls it for each container it creates):
    pod + container spec + the Services of the pod's namespace (kubelet.poddns.service_env)
        -> ``env``: the Service variables, then ``envFrom`` (ConfigMaps, Secrets), then ``env``
           (values, ``fieldRef``, ``configMapKeyRef``, ``secretKeyRef``) read through the API
    pod volumes + the container's ``volumeMounts``
        -> ``mounts``: ``emptyDir`` made, ``configMap``/``secret`` files written under the pod's
           directory (atomically, one file at a time), the bind mounts for the container
A missing object or key that is not optional is a ``ConfigError`` (the kubelet reports
CreateContainerConfigError, as Kubernetes does).
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any, Callable

from kubelet.cri import Mount
from kubelet.poddns import service_env
from machinery import errors
from machinery.client import ApiClient

Obj = dict[str, Any]


class ConfigError(Exception):
    """The pod refers to something missing (a ConfigMap, a key): CreateContainerConfigError."""


class ContainerConfig:
    def __init__(self, client: ApiClient, *, node_name: str, node_address: Callable[[], str],
                 services: Callable[[], list[Obj]], pod_dir: Callable[[str], Path]) -> None:
        self.client = client
        self.node_name = node_name
        self.node_address = node_address
        self.services = services
        self.pod_dir = pod_dir

    async def lookup(self, kind: str, namespace: str, name: str, key: str, optional: bool) -> str | None:
        try:
            obj = await self.client.get(kind, name, namespace=namespace)
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
                    obj = await self.client.get(kind, ref["name"], namespace=ns)
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
            elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
                kind, ref = ("configmaps", vf["configMapKeyRef"]) if "configMapKeyRef" in vf \
                    else ("secrets", vf["secretKeyRef"])
                value = await self.lookup(kind, ns, ref["name"], ref["key"], bool(ref.get("optional")))
                if value is not None:
                    env[name] = value
        return env

    async def mounts(self, pod: Obj, c: Obj) -> list[Mount]:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        volumes = {v.get("name"): v for v in spec.get("volumes") or []}
        base = self.pod_dir(str(meta.get("uid"))) / "volumes"
        mounts: list[Mount] = []
        for vm in c.get("volumeMounts") or []:
            vol = volumes.get(vm.get("name"))
            if vol is None:
                raise ConfigError(f"volume {vm.get('name')} not found")
            path = base / str(vm.get("name"))
            if "emptyDir" in vol:
                await asyncio.to_thread(_mkdir, path)
            elif "configMap" in vol or "secret" in vol:
                kind = "configmaps" if "configMap" in vol else "secrets"
                src = vol.get("configMap") or vol.get("secret") or {}
                obj_name = src.get("name") or src.get("secretName")
                try:
                    obj = await self.client.get(kind, str(obj_name), namespace=str(meta.get("namespace")))
                except errors.NotFoundError:
                    if not src.get("optional"):
                        raise ConfigError(f"{kind[:-1]} \"{obj_name}\" not found")
                    obj = {}
                data = dict(obj.get("data") or {})
                if kind == "secrets":
                    data = {k: base64.b64decode(v).decode() for k, v in data.items()}
                items = src.get("items")
                files = {i["path"]: data.get(i["key"], "") for i in items} if items else data
                await asyncio.to_thread(_write_files, path, files)
            else:
                raise ConfigError(f"volume {vm.get('name')}: only emptyDir, configMap and secret are supported")
            target = str(vm.get("mountPath"))
            if vm.get("subPath"):
                path = path / str(vm["subPath"])
            mounts.append(Mount(source=str(path), target=target,
                                read_only=bool(vm.get("readOnly")) or "configMap" in vol or "secret" in vol))
        return mounts


def _mkdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o777)


def _write_files(path: Path, files: dict[str, str]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(content)
        os.replace(tmp, target)

"""Which objects each node may read: the Node authorizer's graph (plugin/pkg/auth/authorizer/node/graph.go).

Data flow: pods bound to a node (``spec.nodeName``) and PersistentVolumes -> per node the sets of
Secrets, ConfigMaps, PersistentVolumeClaims, ServiceAccounts (namespace, name) and
PersistentVolumes (name) it reaches: a pod's volumes (secret, configMap, projected sources,
persistentVolumeClaim, generic ephemeral volumes as ``<pod>-<volume>``, the secretRefs of the
volume plugins), its containers' ``env``/``envFrom`` (init and ephemeral containers too), its
``imagePullSecrets`` and ``serviceAccountName``; a PersistentVolume through the claim its
``claimRef`` names, and that PV's secret references in turn. Pure: ``NodeGraph.update`` takes the
object lists and re-reads only objects whose resourceVersion moved.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = Mapping[str, Any]
Ref = tuple[str, str]  # (namespace, name); cluster-scoped PVs use ("", name)

# Volume sources whose ``secretRef`` (or ``secretName``) names a Secret of the pod's namespace.
_SECRET_REF_VOLUMES = ("cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO", "storageos")
_CSI_PV_SECRETS = ("controllerPublishSecretRef", "nodeStageSecretRef", "nodePublishSecretRef",
                   "controllerExpandSecretRef", "nodeExpandSecretRef")


@dataclass
class PodRefs:
    secrets: set[str] = field(default_factory=set)
    configmaps: set[str] = field(default_factory=set)
    claims: set[str] = field(default_factory=set)
    service_account: str = ""


def _map(value: Any) -> Obj:
    return value if isinstance(value, Mapping) else {}


def _maps(value: Any) -> Iterator[Obj]:
    return (v for v in value if isinstance(v, Mapping)) if isinstance(value, list) else iter(())


def _name(value: Any, key: str = "name") -> str:
    name = _map(value).get(key)
    return name if isinstance(name, str) else ""


def pod_refs(pod: Obj) -> PodRefs:
    """Every Secret, ConfigMap, claim and the ServiceAccount one pod names (its own namespace)."""
    spec, pod_name = _map(pod.get("spec")), _name(pod.get("metadata"))
    refs = PodRefs(service_account=spec.get("serviceAccountName") or "")
    refs.secrets.update(_name(s) for s in _maps(spec.get("imagePullSecrets")))
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for c in _maps(spec.get(group)):
            for env in _maps(c.get("env")):
                value_from = _map(env.get("valueFrom"))
                refs.secrets.add(_name(value_from.get("secretKeyRef")))
                refs.configmaps.add(_name(value_from.get("configMapKeyRef")))
            for env_from in _maps(c.get("envFrom")):
                refs.secrets.add(_name(env_from.get("secretRef")))
                refs.configmaps.add(_name(env_from.get("configMapRef")))
    for volume in _maps(spec.get("volumes")):
        refs.secrets.add(_name(volume.get("secret"), "secretName"))
        refs.configmaps.add(_name(volume.get("configMap")))
        for source in _maps(_map(volume.get("projected")).get("sources")):
            refs.secrets.add(_name(source.get("secret")))
            refs.configmaps.add(_name(source.get("configMap")))
        for plugin in _SECRET_REF_VOLUMES:
            refs.secrets.add(_name(_map(volume.get(plugin)).get("secretRef")))
        refs.secrets.add(_name(volume.get("azureFile"), "secretName"))
        refs.secrets.add(_name(_map(volume.get("csi")).get("nodePublishSecretRef")))
        refs.claims.add(_name(volume.get("persistentVolumeClaim"), "claimName"))
        if isinstance(volume.get("ephemeral"), Mapping) and pod_name:
            refs.claims.add(f"{pod_name}-{_name(volume)}")
    for names in (refs.secrets, refs.configmaps, refs.claims):
        names.discard("")
        names.discard(f"{pod_name}-")
    return refs


def pv_secrets(pv: Obj) -> set[Ref]:
    """Namespace-qualified Secret references of a PersistentVolume's source."""
    spec = _map(pv.get("spec"))
    out: set[Ref] = set()
    refs = [_map(_map(spec.get("csi")).get(k)) for k in _CSI_PV_SECRETS]
    refs += [_map(_map(spec.get(p)).get("secretRef")) for p in _SECRET_REF_VOLUMES]
    for ref in refs:
        if ref.get("name"):
            out.add((str(ref.get("namespace") or ""), str(ref["name"])))
    return out


@dataclass
class NodeReach:
    secrets: set[Ref] = field(default_factory=set)
    configmaps: set[Ref] = field(default_factory=set)
    claims: set[Ref] = field(default_factory=set)
    service_accounts: set[Ref] = field(default_factory=set)
    volumes: set[str] = field(default_factory=set)


class NodeGraph:
    """The per-node reach, recomputed from memoized per-object facts when pods or PVs change."""

    def __init__(self) -> None:
        self._pods: dict[Ref, tuple[str, str, str, PodRefs]] = {}  # key -> (rv, node, namespace, refs)
        self._pvs: dict[str, tuple[str, Ref | None, set[Ref]]] = {}  # name -> (rv, claim, secrets)
        self.reach: dict[str, NodeReach] = {}

    def update(self, pods: Iterable[Obj], pvs: Iterable[Obj]) -> None:
        fresh_pods: dict[Ref, tuple[str, str, str, PodRefs]] = {}
        for pod in pods:
            meta = _map(pod.get("metadata"))
            key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
            rv = str(meta.get("resourceVersion") or "")
            known = self._pods.get(key)
            if known is not None and known[0] == rv and rv:
                fresh_pods[key] = known
                continue
            node = _map(pod.get("spec")).get("nodeName")
            if isinstance(node, str) and node:
                fresh_pods[key] = (rv, node, key[0], pod_refs(pod))
        fresh_pvs: dict[str, tuple[str, Ref | None, set[Ref]]] = {}
        for pv in pvs:
            meta = _map(pv.get("metadata"))
            name, rv = str(meta.get("name") or ""), str(meta.get("resourceVersion") or "")
            claim_ref = _map(_map(pv.get("spec")).get("claimRef"))
            claim = (str(claim_ref.get("namespace") or ""), str(claim_ref.get("name") or "")) \
                if claim_ref.get("name") else None
            fresh_pvs[name] = (rv, claim, pv_secrets(pv))
        self._pods, self._pvs = fresh_pods, fresh_pvs
        self.reach = self._build()

    def _build(self) -> dict[str, NodeReach]:
        reach: dict[str, NodeReach] = {}
        for _, node, namespace, refs in self._pods.values():
            r = reach.setdefault(node, NodeReach())
            r.secrets.update((namespace, s) for s in refs.secrets)
            r.configmaps.update((namespace, c) for c in refs.configmaps)
            r.claims.update((namespace, c) for c in refs.claims)
            if refs.service_account:
                r.service_accounts.add((namespace, refs.service_account))
        claim_nodes: dict[Ref, list[NodeReach]] = {}
        for r in reach.values():
            for claim in r.claims:
                claim_nodes.setdefault(claim, []).append(r)
        for name, (_, pv_claim, secrets) in self._pvs.items():
            for r in claim_nodes.get(pv_claim, []) if pv_claim else []:
                r.volumes.add(name)
                r.secrets.update(secrets)
        return reach

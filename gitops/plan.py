"""What a reconcile must write: ``plan(desired, live, inventory)`` (pure; DESIGN pattern 6).

Data flow: the built objects of a revision -> ``prepare`` (server-set fields and ``status`` dropped,
the namespace decided, this GitSync's labels and a hash of the manifest added) -> ``Desired`` ->
with the live objects (the reconciler's informer caches) and the inventory of the GitSync's status
-> ``plan`` -> ``Plan``: what to apply (and why), what to prune, whether pruning is blocked.

How "nothing changed" is decided without a request, the same way by the reconciler and by
``mkctl gitops diff``:
- the object is missing -> create;
- its ``gitops.minik8s.io/manifest-hash`` annotation differs from the manifest's hash -> Git changed;
- its uid differs from the inventory's, or the fields this GitSync's field manager owns (its
  ``Apply`` entry in ``metadata.managedFields``) no longer hash to what they were right after the
  last apply -> drift. Server-side apply moves a field to whoever changes it (``kubectl scale``,
  ``kubectl edit``), so any change of a field that Git sets shows here, while fields that Git does
  not set (a replica count an autoscaler owns) never do. No value is compared, so defaulting and
  normalization by the API server (quantities, empty maps) never look like drift.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

FIELD_MANAGER = "minik8s-gitops"
LABEL_NAME = "gitops.minik8s.io/name"
LABEL_NAMESPACE = "gitops.minik8s.io/namespace"
ANNOTATION_HASH = "gitops.minik8s.io/manifest-hash"
# Flux's kustomize.toolkit.fluxcd.io/prune: disabled, under this project's group.
ANNOTATION_PRUNE = "gitops.minik8s.io/prune"

# Set by the API server, never by Git: a manifest that carries them (kubectl get -o yaml output)
# would otherwise fight the server on every apply.
_SERVER_METADATA = ("creationTimestamp", "resourceVersion", "uid", "generation", "managedFields", "selfLink",
                    "deletionTimestamp", "deletionGracePeriodSeconds")

# Kubernetes' apply order (Helm's and Flux's install order): what others depend on goes first.
_ORDER = ["Namespace", "CustomResourceDefinition", "PriorityClass", "StorageClass", "ServiceAccount",
          "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Secret", "ConfigMap",
          "PersistentVolume", "PersistentVolumeClaim", "LimitRange", "ResourceQuota", "Service", "Endpoints",
          "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler",
          "StatefulSet", "Job", "CronJob", "Ingress", "IngressClass"]


@dataclass(frozen=True, order=True)
class ObjKey:
    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind} {self.namespace}/{self.name}" if self.namespace else f"{kind} {self.name}"


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def key_of(obj: Mapping[str, Any]) -> ObjKey:
    meta = obj.get("metadata") or {}
    return ObjKey(group_of(str(obj.get("apiVersion") or "")), str(obj.get("kind") or ""),
                  str(meta.get("namespace") or ""), str(meta.get("name") or ""))


@dataclass(frozen=True)
class Desired:
    key: ObjKey
    obj: dict[str, Any]
    file: str
    document: int
    manifest_hash: str


@dataclass(frozen=True)
class Failure:
    """One object that cannot be applied, for the status's ``errors`` list."""

    file: str
    document: int | None
    kind: str
    name: str
    message: str

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "kind": self.kind, "name": self.name, "message": self.message}
        if self.document is not None:
            out["document"] = self.document
        return out

    def __str__(self) -> str:
        where = f"{self.file}" + (f" (document {self.document})" if self.document is not None else "")
        what = f"{self.kind} {self.name}".strip()
        return f"{where}: {what}: {self.message}" if what else f"{where}: {self.message}"


def failure_of(d: Desired, message: str) -> Failure:
    name = f"{d.key.namespace}/{d.key.name}" if d.key.namespace else d.key.name
    return Failure(d.file, d.document, d.key.kind, name, message)


@dataclass(frozen=True)
class Entry:
    """One inventory entry of a GitSync's status: an object it applied."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str
    fields: str = ""

    @property
    def key(self) -> ObjKey:
        return ObjKey(group_of(self.api_version), self.kind, self.namespace, self.name)

    def to_status(self) -> dict[str, Any]:
        out = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name, "uid": self.uid}
        if self.namespace:
            out["namespace"] = self.namespace
        if self.fields:
            out["fields"] = self.fields
        return out

    @staticmethod
    def from_status(raw: Mapping[str, Any]) -> "Entry":
        return Entry(str(raw.get("apiVersion") or ""), str(raw.get("kind") or ""), str(raw.get("namespace") or ""),
                     str(raw.get("name") or ""), str(raw.get("uid") or ""), str(raw.get("fields") or ""))


def inventory_of(status: Mapping[str, Any] | None) -> dict[ObjKey, Entry]:
    entries = (Entry.from_status(e) for e in (status or {}).get("inventory") or [] if isinstance(e, Mapping))
    return {e.key: e for e in entries}


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _hash(value: Any) -> str:
    return hashlib.sha256(_canonical(value)).hexdigest()[:20]


def prepare(obj: Mapping[str, Any], *, namespaced: bool, sync_namespace: str, sync_name: str,
            target_namespace: str | None) -> dict[str, Any]:
    """The body this GitSync applies for a built object (a fresh dict; ``obj`` is not changed)."""
    out = json.loads(_canonical(obj))
    out.pop("status", None)
    meta = out.setdefault("metadata", {})
    for name in _SERVER_METADATA:
        meta.pop(name, None)
    if namespaced:
        meta["namespace"] = target_namespace or meta.get("namespace") or "default"
    else:
        meta.pop("namespace", None)
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    meta["labels"] = {**labels, LABEL_NAME: sync_name, LABEL_NAMESPACE: sync_namespace}
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    # A manifest exported from the cluster (kubectl get -o yaml) carries an old hash: not part of it.
    meta["annotations"] = {k: v for k, v in annotations.items() if k != ANNOTATION_HASH}
    digest = _hash(out)
    meta["annotations"][ANNOTATION_HASH] = digest
    return out


def manifest_hash(body: Mapping[str, Any]) -> str:
    return str(((body.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_HASH) or "")


def owned_fields(live: Mapping[str, Any], manager: str = FIELD_MANAGER) -> dict[str, Any] | None:
    """The fieldsV1 of ``manager``'s Apply entry in the object's managedFields, or None."""
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply" and not entry.get("subresource"):
            fields = entry.get("fieldsV1")
            return fields if isinstance(fields, dict) else {}
    return None


def fields_hash(live: Mapping[str, Any]) -> str:
    fields = owned_fields(live)
    return "" if fields is None else _hash(fields)


def change_reason(desired: Desired, live: Mapping[str, Any] | None, entry: Entry | None) -> str | None:
    """Why ``desired`` must be applied (``create``, ``changed in Git``, ``drift``), or None: in sync."""
    if live is None:
        return "create"
    if manifest_hash(live) != desired.manifest_hash:
        return "changed in Git"
    uid = str((live.get("metadata") or {}).get("uid") or "")
    if entry is None or entry.uid != uid or not entry.fields or entry.fields != fields_hash(live):
        return "drift"
    return None


def lost_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    """Readable paths (``spec.replicas``, ``spec.template.spec.containers[name=web].image``) owned
    before and no longer after: the fields someone else took, for the DriftCorrected Event."""
    out: list[str] = []

    def walk(node: Mapping[str, Any], other: Mapping[str, Any] | None, prefix: str) -> None:
        for k, child in node.items():
            if k == ".":
                continue
            sub = other.get(k) if isinstance(other, Mapping) else None
            if k.startswith("f:"):
                path = f"{prefix}.{k[2:]}" if prefix else k[2:]
            elif k.startswith("k:"):
                try:
                    keys = json.loads(k[2:])
                    path = prefix + "[" + ",".join(f"{a}={b}" for a, b in sorted(keys.items())) + "]"
                except ValueError:
                    path = prefix + "[" + k[2:] + "]"
            elif k.startswith("v:"):
                path = prefix + "[" + k[2:] + "]"
            else:
                path = f"{prefix}.{k}" if prefix else k
            if not isinstance(child, Mapping) or not [c for c in child if c != "."]:
                if sub is None:
                    out.append(path)
            elif sub is None:
                out.append(path)
            else:
                walk(child, sub, path)

    walk(before or {}, after or {}, "")
    return sorted(set(out))


def order(key: ObjKey) -> tuple[int, ObjKey]:
    try:
        rank = _ORDER.index(key.kind)
    except ValueError:
        rank = len(_ORDER)
    return rank, key


@dataclass
class Plan:
    apply: list[tuple[Desired, str]] = field(default_factory=list)
    prune: list[Entry] = field(default_factory=list)
    prune_blocked: bool = False
    unchanged: int = 0

    @property
    def writes(self) -> int:
        return len(self.apply) + len(self.prune)


def prunable(entry: Entry, live: Mapping[str, Any] | None, *, sync_namespace: str, sync_name: str,
             prune_namespaces: bool = False) -> bool:
    """Only an object this GitSync applied (same uid, its labels) and nobody asked to keep."""
    if live is None:
        return False
    meta = live.get("metadata") or {}
    if str(meta.get("uid") or "") != entry.uid or meta.get("deletionTimestamp"):
        return False
    labels = meta.get("labels") or {}
    if labels.get(LABEL_NAME) != sync_name or labels.get(LABEL_NAMESPACE) != sync_namespace:
        return False
    if str((meta.get("annotations") or {}).get(ANNOTATION_PRUNE) or "").lower() == "disabled":
        return False
    return prune_namespaces or entry.kind != "Namespace"


def plan(desired: Sequence[Desired], live: Mapping[ObjKey, Mapping[str, Any] | None],
         inventory: Mapping[ObjKey, Entry], *, sync_namespace: str, sync_name: str, prune: bool,
         allow_empty: bool = False) -> Plan:
    out = Plan()
    for d in sorted(desired, key=lambda d: order(d.key)):
        reason = change_reason(d, live.get(d.key), inventory.get(d.key))
        if reason is None:
            out.unchanged += 1
        else:
            out.apply.append((d, reason))
    if not prune:
        return out
    wanted = {d.key for d in desired}
    gone = [e for k, e in inventory.items() if k not in wanted]
    if not desired and gone and not allow_empty:
        out.prune_blocked = True
        return out
    # Reverse order: workloads before the Namespaces and CRDs they live in.
    for e in sorted(gone, key=lambda e: order(e.key), reverse=True):
        if prunable(e, live.get(e.key), sync_namespace=sync_namespace, sync_name=sync_name):
            out.prune.append(e)
    return out


def inventory_after(applied: Iterable[tuple[Desired, Mapping[str, Any]]]) -> list[Entry]:
    """The new inventory from the objects as the server answered the applies (uid, owned fields)."""
    out = []
    for d, live in applied:
        meta = live.get("metadata") or {}
        out.append(Entry(str(d.obj.get("apiVersion")), d.key.kind, d.key.namespace, d.key.name,
                         str(meta.get("uid") or ""), fields_hash(live)))
    return sorted(out, key=lambda e: order(e.key))

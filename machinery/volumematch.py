"""Which PersistentVolume fits a PersistentVolumeClaim: the facts the binder and the scheduler share.

After pkg/controller/volume/persistentvolume/util (``FindMatchingVolume``, ``CheckAccessModes``,
``IsVolumeBoundToClaim``) and storage/util's annotations. Pure: objects are the JSON mappings
the informers hold; nothing is mutated. Data flow: the PV binder controller
(``controllers.pvbinderplan``) matches Immediate claims with ``find_matching_volume(...,
node_fits=None)``; the scheduler's VolumeBinding plugin (``scheduler.volumebinding``) matches
WaitForFirstConsumer claims per node, passing a ``node_fits`` check of the volume's node affinity. The protection controllers
(``controllers.pvcprotection``) ask ``uses_claim`` and ``protection_to_remove``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from machinery.quantity import QuantityError, parse_quantity
from machinery.selectors import SelectorError, label_selector_from_dict

Obj = Mapping[str, Any]

ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
ANN_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
ANN_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
ANN_BETA_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"


def meta(obj: Obj) -> Obj:
    value = obj.get("metadata")
    return value if isinstance(value, Mapping) else {}


def spec(obj: Obj) -> Obj:
    value = obj.get("spec")
    return value if isinstance(value, Mapping) else {}


def annotations_of(obj: Obj) -> Mapping[str, str]:
    value = meta(obj).get("annotations")
    return value if isinstance(value, Mapping) else {}


def name(obj: Obj) -> str:
    return str(meta(obj).get("name") or "")


def claim_key(claim: Obj) -> str:
    return f"{meta(claim).get('namespace') or ''}/{name(claim)}"


def storage_class_of(obj: Obj) -> str:
    """GetPersistentVolume(Claim)Class: the beta annotation wins over ``spec.storageClassName``."""
    found = annotations_of(obj).get(ANN_BETA_CLASS)
    return str(found) if found is not None else str(spec(obj).get("storageClassName") or "")


def storage_bytes(value: Any) -> Decimal | None:
    try:
        return parse_quantity(value) if value is not None else None
    except QuantityError:
        return None


def requested(claim: Obj) -> Decimal:
    requests = (spec(claim).get("resources") or {}).get("requests") or {}
    return storage_bytes(requests.get("storage")) or Decimal(0)


def capacity(volume: Obj) -> Decimal:
    return storage_bytes((spec(volume).get("capacity") or {}).get("storage")) or Decimal(0)


def volume_mode(obj: Obj) -> str:
    return str(spec(obj).get("volumeMode") or "Filesystem")


def access_modes_fit(claim: Obj, volume: Obj) -> bool:
    """CheckAccessModes: the volume offers every mode the claim asks for."""
    offered = set(spec(volume).get("accessModes") or [])
    return all(mode in offered for mode in spec(claim).get("accessModes") or [])


def selector_matches(claim: Obj, volume: Obj) -> bool:
    selector = spec(claim).get("selector")
    if selector is None:
        return True
    try:
        return label_selector_from_dict(selector).matches(meta(volume).get("labels") or {})
    except SelectorError:
        return False


def claim_ref(volume: Obj) -> Obj | None:
    ref = spec(volume).get("claimRef")
    return ref if isinstance(ref, Mapping) else None


def is_bound_to(volume: Obj, claim: Obj) -> bool:
    """IsVolumeBoundToClaim: the claimRef names the claim (and its uid, if the ref has one)."""
    ref = claim_ref(volume)
    if ref is None or ref.get("name") != name(claim) or ref.get("namespace") != meta(claim).get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == meta(claim).get("uid")


def find_matching_volume(claim: Obj, volumes: Iterable[Obj], *, delay_binding: bool = False,
                         node_fits: Callable[[Obj], bool] | None = None,
                         skip: Callable[[Obj], bool] = lambda volume: False) -> Obj | None:
    """FindMatchingVolume: a volume pre-bound to the claim, else the smallest Available volume of
    the claim's class that is big enough, offers its access modes and volume mode, matches its
    selector (and, with ``node_fits``, the node). ``delay_binding`` without a node: only pre-bound
    volumes (WaitForFirstConsumer claims are matched by the scheduler)."""
    want = requested(claim)
    want_class = storage_class_of(claim)
    best: Obj | None = None
    best_size = Decimal(0)
    for volume in volumes:
        if skip(volume):
            continue
        size = capacity(volume)
        if size < want or volume_mode(volume) != volume_mode(claim):
            continue
        node_ok = node_fits is None or node_fits(volume)
        if is_bound_to(volume, claim):
            if node_ok:
                return volume
            continue
        if node_fits is None and delay_binding:
            continue
        if ((volume.get("status") or {}).get("phase") != "Available" or claim_ref(volume) is not None
                or meta(volume).get("deletionTimestamp") or not selector_matches(claim, volume)
                or storage_class_of(volume) != want_class or not node_ok or not access_modes_fit(claim, volume)):
            continue
        if best is None or size < best_size:
            best, best_size = volume, size
    return best


def is_default_class(storage_class: Obj) -> bool:
    marks = annotations_of(storage_class)
    return marks.get(ANN_DEFAULT_CLASS) == "true" or marks.get(ANN_BETA_DEFAULT_CLASS) == "true"


def delays_binding(claim: Obj, classes: Mapping[str, Obj]) -> bool:
    """IsDelayBindingMode: the claim's class binds WaitForFirstConsumer."""
    found = classes.get(storage_class_of(claim))
    return found is not None and found.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER


PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"


def uses_claim(pod: Obj, claim: Obj) -> bool:
    """podUsesPVC: a scheduled, not finished pod of the claim's namespace names it in a volume
    (a generic ephemeral volume's claim is ``<pod>-<volume>``)."""
    pod_meta = meta(pod)
    if pod_meta.get("namespace") != meta(claim).get("namespace") or not spec(pod).get("nodeName"):
        return False
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    for volume in spec(pod).get("volumes") or []:
        if (volume.get("persistentVolumeClaim") or {}).get("claimName") == name(claim):
            return True
        if volume.get("ephemeral") is not None and f"{pod_meta.get('name')}-{volume.get('name')}" == name(claim):
            return True
    return False


def protection_to_remove(obj: Obj, finalizer: str, *, in_use: bool) -> dict[str, Any] | None:
    """The object without ``finalizer`` when it is being deleted and no longer in use, else None."""
    finalizers = list(meta(obj).get("finalizers") or [])
    if not meta(obj).get("deletionTimestamp") or finalizer not in finalizers or in_use:
        return None
    out = dict(obj)
    out["metadata"] = {**meta(obj), "finalizers": [f for f in finalizers if f != finalizer]}
    return out


__all__ = [
    "ANN_BETA_STORAGE_PROVISIONER", "ANN_BIND_COMPLETED", "ANN_BOUND_BY_CONTROLLER", "ANN_PROVISIONED_BY",
    "ANN_SELECTED_NODE", "ANN_STORAGE_PROVISIONER", "NO_PROVISIONER", "PVC_PROTECTION", "PV_PROTECTION",
    "WAIT_FOR_FIRST_CONSUMER", "protection_to_remove", "uses_claim",
    "access_modes_fit", "annotations_of", "capacity", "claim_key", "claim_ref", "delays_binding",
    "find_matching_volume", "is_bound_to", "is_default_class", "name", "requested", "storage_class_of",
]

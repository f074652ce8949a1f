"""Quota arithmetic and usage evaluators: what one object consumes of a ResourceQuota.

Role: shared by the apiserver's ResourceQuota admission (charges a new object against the quotas
of its namespace) and the controller-manager's resource quota controller (adds up the usage of
every stored object), as Kubernetes shares ``k8s.io/apiserver/pkg/quota/v1`` and
``pkg/quota/v1/evaluator/core`` between both. Pure: objects in, resource lists out.

Data flow: an object and its group resource (``pods``, ``services``, ``deployments.apps``) ->
``usage`` (a ``ResourceList``: resource name -> ``Quantity``) -> ``add`` / ``mask`` /
``exceeded`` against a quota's ``status.hard`` -> ``pretty`` / ``to_strings`` for messages and
``status.used``. ``matches`` decides whether a quota covers an object (its scopes and whether it
limits anything the object consumes); ``constraints`` is the old rule that a quota on cpu or
memory makes every container state them.

Quantities are exact decimals that remember whether they were written in binary SI (``Mi``,
``Gi``), so sums print as Kubernetes' ``Quantity.String()`` does (``1536Mi``, ``1500m``, ``2``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import ROUND_UP, Decimal
from typing import Any, NamedTuple

from machinery.quantity import QuantityError, parse_quantity
from machinery.timefmt import aware, parse_time

Obj = Mapping[str, Any]

_DECIMAL_SUFFIX = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BINARY_SUFFIX = {0: "", 10: "Ki", 20: "Mi", 30: "Gi", 40: "Ti", 50: "Pi", 60: "Ei"}


class Quantity(NamedTuple):
    amount: Decimal
    binary: bool = False

    @classmethod
    def parse(cls, value: Any) -> "Quantity":
        """Raises ``QuantityError`` for what is not a quantity."""
        text = str(value)
        amount = parse_quantity(value)
        return cls(amount, text.endswith("i") and not text.endswith("ei"))

    def __add__(self, other: object) -> "Quantity":
        assert isinstance(other, Quantity)
        # A zero takes the other's format (Quantity.Add), so sums starting at 0 print as 512Mi.
        return Quantity(self.amount + other.amount, other.binary if self.amount == 0 else self.binary)

    def __sub__(self, other: "Quantity") -> "Quantity":
        return Quantity(self.amount - other.amount, self.binary)

    def __str__(self) -> str:
        return format_quantity(self.amount, binary=self.binary)


def format_quantity(amount: Decimal, *, binary: bool = False) -> str:
    """Kubernetes' canonical form of a quantity (``Quantity.String()``)."""
    if amount == 0:
        return "0"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if binary and amount >= 1024 and amount == amount.to_integral_value():
        mantissa, exp = int(amount), 0
        while mantissa % 1024 == 0 and exp < 60:
            mantissa, exp = mantissa // 1024, exp + 10
        return f"{sign}{mantissa}{_BINARY_SUFFIX[exp]}"
    nanos = int((amount * Decimal(10) ** 9).to_integral_value(rounding=ROUND_UP))
    exp = -9
    while nanos % 1000 == 0 and exp < 18:
        nanos, exp = nanos // 1000, exp + 3
    return f"{sign}{nanos}{_DECIMAL_SUFFIX[exp]}"


ResourceList = dict[str, Quantity]
ONE = Quantity(Decimal(1))


def parse_list(values: Any) -> ResourceList:
    """A ResourceList from JSON (``{"cpu": "500m"}``); values that are no quantity are skipped
    (validation reports them)."""
    out: ResourceList = {}
    if isinstance(values, Mapping):
        for name, value in values.items():
            try:
                out[str(name)] = Quantity.parse(value)
            except QuantityError:
                continue
    return out


def to_strings(values: ResourceList) -> dict[str, str]:
    return {name: str(q) for name, q in sorted(values.items())}


def add(a: ResourceList, b: ResourceList) -> ResourceList:
    out = dict(a)
    for name, q in b.items():
        out[name] = out[name] + q if name in out else q
    return out


def subtract(a: ResourceList, b: ResourceList) -> ResourceList:
    out = dict(a)
    for name, q in b.items():
        out[name] = out[name] - q if name in out else Quantity(-q.amount, q.binary)
    return out


def mask(values: ResourceList, names: Iterable[str]) -> ResourceList:
    wanted = set(names)
    return {n: q for n, q in values.items() if n in wanted}


def exceeded(values: ResourceList, hard: ResourceList) -> list[str]:
    """The names whose value is above its hard limit (``quota.LessThanOrEqual``'s failures)."""
    return sorted(n for n, q in values.items() if n in hard and q.amount > hard[n].amount)


def is_zero(values: ResourceList) -> bool:
    return all(q.amount == 0 for q in values.values())


def pretty(values: ResourceList) -> str:
    """``cpu=1,pods=2``: sorted by name, as Kubernetes' messages print resource lists."""
    return ",".join(f"{n}={values[n]}" for n in sorted(values))


# ================================================================== resource names
# Object counts that predate count/<resource>: the quota name of each group resource.
LEGACY_COUNTS = {
    "pods": "pods", "services": "services", "replicationcontrollers": "replicationcontrollers",
    "resourcequotas": "resourcequotas", "secrets": "secrets", "configmaps": "configmaps",
    "persistentvolumeclaims": "persistentvolumeclaims",
}
COMPUTE = ("cpu", "memory", "ephemeral-storage")
POD_RESOURCES = frozenset({
    "count/pods", "pods", "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory",
    "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage"})
# If a quota limits one of these, every container must state it (a historical rule Kubernetes keeps).
CONSTRAINED = frozenset({"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"})
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
SERVICE_RESOURCES = frozenset({"services", "count/services", "services.nodeports", "services.loadbalancers"})
TERMINAL_PHASES = ("Succeeded", "Failed")


def object_count_name(group_resource: str) -> str:
    """``count/pods``, ``count/deployments.apps``."""
    return f"count/{group_resource}"


def _is_extended(name: str) -> bool:
    """An extended resource (``example.com/dongle``): domain-qualified outside kubernetes.io."""
    if "/" not in name or name.startswith("requests."):
        return False
    domain = name.split("/", 1)[0]
    return not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io"))


def matching_resources(group_resource: str, names: Iterable[str]) -> list[str]:
    """Of a quota's resource names, those an object of ``group_resource`` can consume."""
    names = list(names)
    if group_resource == "pods":
        return [n for n in names if n in POD_RESOURCES or n.startswith("hugepages-")
                or n.startswith("requests.hugepages-")
                or (n.startswith("requests.") and _is_extended(n[len("requests."):]))]
    if group_resource == "services":
        return [n for n in names if n in SERVICE_RESOURCES]
    own = {object_count_name(group_resource)}
    if group_resource in LEGACY_COUNTS:
        own.add(LEGACY_COUNTS[group_resource])
    if group_resource == "persistentvolumeclaims":
        return [n for n in names if n in own or n == "requests.storage" or (
            STORAGE_CLASS_SUFFIX in n and n.endswith(("/requests.storage", "/persistentvolumeclaims")))]
    return [n for n in names if n in own]


# ================================================================== pods
def _spec(obj: Obj) -> Obj:
    value = obj.get("spec")
    return value if isinstance(value, Mapping) else {}


def _resources(container: Any, which: str) -> ResourceList:
    if not isinstance(container, Mapping):
        return {}
    resources = container.get("resources")
    return parse_list(resources.get(which)) if isinstance(resources, Mapping) else {}


def _containers(pod_spec: Obj, field: str) -> list[Obj]:
    return [c for c in (pod_spec.get(field) or []) if isinstance(c, Mapping)]


def pod_totals(pod: Obj, which: str) -> ResourceList:
    """A pod's requests or limits: the containers' sum, at least each init container's, plus
    the overhead (``resourcehelper.PodRequests`` / ``PodLimits`` without sidecars)."""
    pod_spec = _spec(pod)
    total: ResourceList = {}
    for c in _containers(pod_spec, "containers"):
        total = add(total, _resources(c, which))
    for c in _containers(pod_spec, "initContainers"):
        for name, q in _resources(c, which).items():
            if name not in total or q.amount > total[name].amount:
                total[name] = q
    overhead = parse_list(pod_spec.get("overhead"))
    if overhead and (which == "requests" or total):
        total = add(total, mask(overhead, total) if which == "limits" else overhead)
    return total


def compute_usage(requests: ResourceList, limits: ResourceList) -> ResourceList:
    """``podComputeUsageHelper``: requests and limits as quota names (``requests.cpu``, ``cpu``, ...)."""
    out: ResourceList = {"pods": ONE}
    for name in COMPUTE:
        if name in requests:
            out[name] = out[f"requests.{name}"] = requests[name]
        if name in limits:
            out[f"limits.{name}"] = limits[name]
    for name, q in requests.items():
        if name.startswith("hugepages-"):
            out[name] = out[f"requests.{name}"] = q
        elif _is_extended(name):
            out[f"requests.{name}"] = q
    return out


def pod_is_charged(pod: Obj, now: datetime) -> bool:
    """Whether a pod still counts for compute quota: not terminal, and not past its grace period."""
    status = pod.get("status")
    if isinstance(status, Mapping) and status.get("phase") in TERMINAL_PHASES:
        return False
    meta = pod.get("metadata")
    if isinstance(meta, Mapping) and meta.get("deletionTimestamp") and meta.get("deletionGracePeriodSeconds") is not None:
        deadline = parse_time(meta["deletionTimestamp"])
        if deadline is not None and aware(now) > deadline:
            return False
    return True


def pod_usage(pod: Obj, now: datetime) -> ResourceList:
    usage: ResourceList = {"count/pods": ONE}
    if not pod_is_charged(pod, now):
        return usage
    return add(usage, compute_usage(pod_totals(pod, "requests"), pod_totals(pod, "limits")))


def is_best_effort(pod: Obj) -> bool:
    pod_spec = _spec(pod)
    for c in _containers(pod_spec, "containers") + _containers(pod_spec, "initContainers"):
        for which in ("requests", "limits"):
            if any(n in ("cpu", "memory") for n in _resources(c, which)):
                return False
    return True


def _is_terminating(pod: Obj) -> bool:
    deadline = _spec(pod).get("activeDeadlineSeconds")
    return isinstance(deadline, int) and not isinstance(deadline, bool) and deadline >= 0


def _cross_namespace_affinity(pod: Obj) -> bool:
    affinity = _spec(pod).get("affinity")
    if not isinstance(affinity, Mapping):
        return False
    for kind in ("podAffinity", "podAntiAffinity"):
        section = affinity.get(kind)
        if not isinstance(section, Mapping):
            continue
        terms = list(section.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
        terms += [w.get("podAffinityTerm") for w in section.get("preferredDuringSchedulingIgnoredDuringExecution") or []
                  if isinstance(w, Mapping)]
        if any(isinstance(t, Mapping) and (t.get("namespaces") or t.get("namespaceSelector") is not None)
               for t in terms):
            return True
    return False


def _pod_matches_scope(selector: Obj, pod: Obj) -> bool:
    scope = selector.get("scopeName")
    if scope == "Terminating":
        return _is_terminating(pod)
    if scope == "NotTerminating":
        return not _is_terminating(pod)
    if scope == "BestEffort":
        return is_best_effort(pod)
    if scope == "NotBestEffort":
        return not is_best_effort(pod)
    if scope == "CrossNamespacePodAffinity":
        return _cross_namespace_affinity(pod)
    if scope == "PriorityClass":
        name = str(_spec(pod).get("priorityClassName") or "")
        op, values = selector.get("operator"), list(selector.get("values") or [])
        if op == "Exists":
            return bool(name)
        if op == "DoesNotExist":
            return not name
        if op == "In":
            return bool(name) and name in values
        if op == "NotIn":
            return not name or name not in values
    return False


def scope_selectors(quota: Obj) -> list[Obj]:
    """``spec.scopes`` (as Exists requirements) and ``spec.scopeSelector.matchExpressions``."""
    quota_spec = _spec(quota)
    out: list[Obj] = [{"scopeName": s, "operator": "Exists"} for s in quota_spec.get("scopes") or []]
    selector = quota_spec.get("scopeSelector")
    if isinstance(selector, Mapping):
        out += [e for e in selector.get("matchExpressions") or [] if isinstance(e, Mapping)]
    return out


def hard_of(quota: Obj) -> ResourceList:
    """The limits admission enforces: ``status.hard`` (the controller copies ``spec.hard`` there)."""
    status = quota.get("status")
    return parse_list(status.get("hard")) if isinstance(status, Mapping) else {}


def used_of(quota: Obj) -> ResourceList:
    status = quota.get("status")
    return parse_list(status.get("used")) if isinstance(status, Mapping) else {}


def matches(quota: Obj, group_resource: str, obj: Obj, *, hard: Iterable[str] | None = None) -> bool:
    """Whether ``quota`` covers ``obj``: every scope matches (only pods have scopes) and it limits
    something the object consumes (``generic.Matches``)."""
    for selector in scope_selectors(quota):
        if group_resource != "pods" or not _pod_matches_scope(selector, obj):
            return False
    names = hard if hard is not None else hard_of(quota).keys()
    return bool(matching_resources(group_resource, names))


def constraints(group_resource: str, required: Iterable[str], obj: Obj) -> str | None:
    """The pod evaluator's ``Constraints``: ``must specify limits.cpu for: a,b; requests.memory for: a``."""
    if group_resource != "pods":
        return None
    wanted = set(required) & CONSTRAINED
    if not wanted:
        return None
    missing: dict[str, set[str]] = {}
    pod_spec = _spec(obj)
    for c in _containers(pod_spec, "containers") + _containers(pod_spec, "initContainers"):
        have = compute_usage(_resources(c, "requests"), _resources(c, "limits"))
        for name in wanted - set(have):
            missing.setdefault(name, set()).add(str(c.get("name") or ""))
    if not missing:
        return None
    return "must specify " + "; ".join(f"{n} for: {','.join(sorted(missing[n]))}" for n in sorted(missing))


# ================================================================== other kinds
def service_usage(service: Obj) -> ResourceList:
    usage: ResourceList = {"services": ONE, "count/services": ONE}
    svc_spec = _spec(service)
    ports = [p for p in svc_spec.get("ports") or [] if isinstance(p, Mapping)]
    kind = svc_spec.get("type")
    if kind == "NodePort":
        usage["services.nodeports"] = Quantity(Decimal(len(ports)))
    elif kind == "LoadBalancer":
        if svc_spec.get("allocateLoadBalancerNodePorts") is False:
            usage["services.nodeports"] = Quantity(Decimal(sum(1 for p in ports if p.get("nodePort"))))
        else:
            usage["services.nodeports"] = Quantity(Decimal(len(ports)))
        usage["services.loadbalancers"] = ONE
    return usage


def pvc_usage(pvc: Obj) -> ResourceList:
    usage: ResourceList = {"persistentvolumeclaims": ONE, "count/persistentvolumeclaims": ONE}
    pvc_spec = _spec(pvc)
    resources = pvc_spec.get("resources")
    requested = parse_list(resources.get("requests")) if isinstance(resources, Mapping) else {}
    status = pvc.get("status")
    allocated = parse_list(status.get("allocatedResources")) if isinstance(status, Mapping) else {}
    storage = requested.get("storage")
    if "storage" in allocated and (storage is None or allocated["storage"].amount > storage.amount):
        storage = allocated["storage"]
    meta = pvc.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    class_name = pvc_spec.get("storageClassName")
    if class_name is None and isinstance(annotations, Mapping):
        class_name = annotations.get("volume.beta.kubernetes.io/storage-class")
    if class_name:
        usage[f"{class_name}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"] = ONE
    if storage is not None:
        usage["requests.storage"] = storage
        if class_name:
            usage[f"{class_name}{STORAGE_CLASS_SUFFIX}requests.storage"] = storage
    return usage


def usage(group_resource: str, obj: Obj, *, now: datetime) -> ResourceList:
    """What one stored (or about to be stored) object consumes."""
    if group_resource == "pods":
        return pod_usage(obj, now)
    if group_resource == "services":
        return service_usage(obj)
    if group_resource == "persistentvolumeclaims":
        return pvc_usage(obj)
    out: ResourceList = {object_count_name(group_resource): ONE}
    if group_resource in LEGACY_COUNTS:
        out[LEGACY_COUNTS[group_resource]] = ONE
    return out


def group_resource_of(name: str) -> str | None:
    """Which group resource a quota resource name counts (``count/deployments.apps`` ->
    ``deployments.apps``, ``requests.cpu`` -> ``pods``); None for names nothing consumes."""
    if name.startswith("count/"):
        return name[len("count/"):] or None
    for gr in ("pods", "services", "persistentvolumeclaims"):
        if matching_resources(gr, [name]):
            return gr
    for gr, legacy in LEGACY_COUNTS.items():
        if name == legacy:
            return gr
    return None

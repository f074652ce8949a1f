"""The HorizontalPodAutoscaler controller: scales any ``/scale`` target on resource metrics.

Data flow (Kubernetes' pkg/controller/podautoscaler/horizontal.go), every sync period per HPA:

    HPA informer (autoscaling/v2) --add/update--> queue of "ns/name"; each reconcile requeues
    itself after ``--horizontal-pod-autoscaler-sync-period``
    reconcile(key):
        GET the target's /scale (its resource found through discovery from scaleTargetRef)
        -> pods matching scale.status.selector (pod informer) and their PodMetrics
           (GET /apis/metrics.k8s.io/v1beta1/namespaces/NS/pods?labelSelector=...)
        -> controllers.hpaplan: replicas per metric (the replica calculator), the largest wins,
           then the stabilisation windows and rate limits (``behavior`` or the defaults)
        -> PATCH /scale when the count changes (event SuccessfulRescale), PUT /status when the
           status changed (currentReplicas, desiredReplicas, currentMetrics, lastScaleTime, conditions).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from controllers.hpaplan import (Condition, HpaMemory, MetricError, PodMetric, Settings, longest_policy_period,
                                 normalize, normalize_with_behavior, raw_resource_replicas, record_scale_event,
                                 resource_replicas)
from machinery import errors
from machinery.client import ApiClient, ApiResource
from machinery.controller import Controller, Result
from machinery.discovery import parse_resource_list
from machinery.events import EventRecorder
from machinery.informer import Informer, split_key
from machinery.quantity import QuantityError, parse_quantity
from machinery.selectors import SelectorError, parse_label_selector
from machinery.timefmt import parse_duration, parse_time

if TYPE_CHECKING:
    from controllers.manager import ControllerContext

log = logging.getLogger(__name__)

HPA_RESOURCE = ApiResource("autoscaling/v2", "horizontalpodautoscalers", True, "HorizontalPodAutoscaler")
POD_RESOURCE = ("v1", "pods")
METRICS_PATH = "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"
Obj = dict[str, Any]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _milli_of(resource: str, quantity: str) -> int:
    value = parse_quantity(quantity)
    return int(value * 1000) if resource != "cpu" else int((value * 1000).to_integral_value(rounding="ROUND_CEILING"))


def _format_milli(resource: str, milli: int) -> str:
    if resource == "cpu":
        return f"{milli}m"
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def pod_metrics(items: list[Obj], resource: str, container: str = "") -> dict[str, PodMetric]:
    """PodMetrics items -> pod name -> the summed usage of its containers (milli-units)."""
    out: dict[str, PodMetric] = {}
    for item in items:
        total = 0
        try:
            for c in item.get("containers") or []:
                if container and c.get("name") != container:
                    continue
                total += _milli_of(resource, str((c.get("usage") or {}).get(resource, "0")))
        except QuantityError:
            continue
        stamp = parse_time(item.get("timestamp")) or _now()
        try:
            window = parse_duration(str(item.get("window") or "0s"))
        except ValueError:
            window = 0.0
        out[str((item.get("metadata") or {}).get("name"))] = PodMetric(total, stamp, window)
    return out


def _set_condition(conditions: list[Obj], cond: Condition, now: datetime) -> None:
    for existing in conditions:
        if existing.get("type") == cond.type:
            if existing.get("status") != cond.status:
                existing["lastTransitionTime"] = _rfc3339(now)
            existing.update(status=cond.status, reason=cond.reason, message=cond.message)
            return
    conditions.append({"type": cond.type, "status": cond.status, "lastTransitionTime": _rfc3339(now),
                       "reason": cond.reason, "message": cond.message})


@dataclass
class _MetricResult:
    replicas: int
    name: str  # "cpu resource utilization (percentage of request)"
    status: Obj  # a MetricStatus for status.currentMetrics


class HorizontalController:
    def __init__(self, client: ApiClient, *, hpas: Informer, pods: Informer, recorder: EventRecorder,
                 sync_period: float = 15.0, settings: Settings | None = None) -> None:
        self.client = client
        self.hpas = hpas
        self.pods = pods
        self.recorder = recorder
        self.sync_period = sync_period
        self.settings = settings or Settings()
        self.memory: dict[str, HpaMemory] = {}
        self._resources: dict[tuple[str, str], ApiResource] = {}
        self.controller: Controller[str] = Controller("horizontal-pod-autoscaler", self.reconcile, workers=2)

    # ------------------------------------------------------------------ lookups
    async def resource_of(self, api_version: str, kind: str) -> ApiResource:
        """The resource of ``kind`` in ``api_version`` (a small RESTMapper over discovery)."""
        key = (api_version, kind)
        if key not in self._resources:
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            doc = await self.client.request("GET", path)
            for info in parse_resource_list(doc if isinstance(doc, dict) else {}):
                if info.kind == kind and "/" not in info.plural:
                    self._resources[key] = info.api_resource
                    break
            else:
                raise errors.NotFoundError(message=f'no matches for kind "{kind}" in group version "{api_version}"')
        return self._resources[key]

    async def _metric(self, hpa: Obj, metric: Obj, *, current: int, pods: list[Obj], selector: str,
                      now: datetime) -> _MetricResult:
        kind = metric.get("type")
        if kind not in ("Resource", "ContainerResource"):
            raise MetricError(f"unable to get metric: the {kind} metric source type is not supported by minik8s "
                              "(Resource and ContainerResource are)")
        source = metric.get("resource" if kind == "Resource" else "containerResource") or {}
        resource, container = str(source.get("name")), str(source.get("container") or "")
        target = source.get("target") or {}
        ns = str(hpa["metadata"]["namespace"])
        try:
            listed = await self.client.request("GET", METRICS_PATH.format(namespace=ns), params={"labelSelector": selector})
        except errors.ApiError as e:
            raise MetricError(f"unable to get metrics for resource {resource}: unable to fetch metrics from resource "
                              f"metrics API: {e}")
        metrics = pod_metrics(list((listed or {}).get("items") or []), resource, container)
        if not metrics:
            raise MetricError(f"unable to get metrics for resource {resource}: no metrics returned from resource metrics API")
        what = f"{resource} resource" if kind == "Resource" else f"{resource} container resource"
        if target.get("averageUtilization") is not None:
            utilization_target = int(target["averageUtilization"])
            replicas, utilization, raw = resource_replicas(current, utilization_target, resource, pods, metrics,
                                                           now=now, settings=self.settings, container=container)
            current_status = {"averageUtilization": utilization, "averageValue": _format_milli(resource, raw)}
            name = f"{what} utilization (percentage of request)"
        elif target.get("averageValue") is not None:
            replicas, raw = raw_resource_replicas(current, _milli_of(resource, str(target["averageValue"])), resource,
                                                  pods, metrics, now=now, settings=self.settings)
            current_status = {"averageValue": _format_milli(resource, raw)}
            name = what
        else:
            raise MetricError(f"invalid resource metric source: neither a utilization target nor a value target was set")
        key = "resource" if kind == "Resource" else "containerResource"
        body: Obj = {"name": resource, "current": current_status}
        if container:
            body["container"] = container
        return _MetricResult(replicas, name, {"type": kind, key: body})

    # ------------------------------------------------------------------ one sync
    async def reconcile(self, key: str) -> Result:
        namespace, name = split_key(key)
        cached = self.hpas.get(key)
        if cached is None:
            self.memory.pop(key, None)
            return Result.done()
        hpa = copy.deepcopy(cached)
        original = copy.deepcopy(hpa.get("status") or {})
        try:
            await self._sync(key, hpa)
        finally:
            if hpa.get("status") != original:
                try:
                    await self.client.update_status(HPA_RESOURCE, hpa, namespace=namespace)
                except errors.NotFoundError:
                    return Result.done()
        return Result.after(self.sync_period)

    async def _sync(self, key: str, hpa: Obj) -> None:
        now = _now()
        spec = hpa.get("spec") or {}
        status = hpa.setdefault("status", {})
        conditions: list[Obj] = status.setdefault("conditions", [])
        ref = spec.get("scaleTargetRef") or {}
        reference = f"{ref.get('kind')}/{ref.get('name')}"
        namespace = str(hpa["metadata"]["namespace"])
        try:
            target = await self.resource_of(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""))
            scale = await self.client.get_scale(target, str(ref.get("name")), namespace=namespace)
        except errors.ApiError as e:
            _set_condition(conditions, Condition("AbleToScale", "False", "FailedGetScale",
                                                 f"the HPA controller was unable to get the target's current scale: {e}"), now)
            await self.recorder.event(hpa, "Warning", "FailedGetScale", str(e))
            return
        _set_condition(conditions, Condition("AbleToScale", "True", "SucceededGetScale",
                                             "the HPA controller was able to get the target's current scale"), now)
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        minimum = int(spec.get("minReplicas") or 1)
        maximum = int(spec.get("maxReplicas") or 1)
        status["currentReplicas"] = int((scale.get("status") or {}).get("replicas") or 0)
        status["observedGeneration"] = (hpa.get("metadata") or {}).get("generation")
        desired, reason, rescale = 0, "", True
        if current == 0 and minimum != 0:
            rescale = False
            _set_condition(conditions, Condition("ScalingActive", "False", "ScalingDisabled",
                                                 "scaling is disabled since the replica count of the target is zero"), now)
        elif current > maximum:
            desired, reason = maximum, "Current number of replicas above Spec.MaxReplicas"
        elif current < minimum:
            desired, reason = minimum, "Current number of replicas below Spec.MinReplicas"
        else:
            proposal = await self._compute(hpa, scale, current=current, now=now)
            if proposal is None:
                status["desiredReplicas"] = current
                return
            desired, metric_name = proposal
            if desired > current:
                reason = f"{metric_name} above target"
            elif desired < current:
                reason = "All metrics below target"
            memory = self.memory.setdefault(key, HpaMemory())
            behavior = spec.get("behavior")
            if behavior is None:
                desired, conds = normalize(current, desired, minimum=minimum, maximum=maximum, memory=memory,
                                           now=now, settings=self.settings)
            else:
                desired, conds = normalize_with_behavior(current, desired, minimum=minimum, maximum=maximum,
                                                         behavior=behavior, memory=memory, now=now,
                                                         settings=self.settings)
            for cond in conds:
                _set_condition(conditions, cond, now)
            rescale = desired != current
        if rescale:
            try:
                await self.client.patch_scale(target, str(ref.get("name")), desired, namespace=namespace)
            except errors.ApiError as e:
                _set_condition(conditions, Condition("AbleToScale", "False", "FailedUpdateScale",
                                                     f"the HPA controller was unable to update the target scale: {e}"), now)
                await self.recorder.event(hpa, "Warning", "FailedRescale",
                                          f"New size: {desired}; reason: {reason}; error: {e}")
                return
            _set_condition(conditions, Condition("AbleToScale", "True", "SucceededRescale",
                                                 f"the HPA controller was able to update the target scale to {desired}"), now)
            await self.recorder.event(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
            log.info("successful rescale of %s, old size: %d, new size: %d, reason: %s", reference, current, desired, reason)
            if spec.get("behavior") is not None:
                record_scale_event(self.memory.setdefault(key, HpaMemory()), previous=current, new=desired, now=now,
                                   longest_period=longest_policy_period(spec.get("behavior")))
            status["lastScaleTime"] = _rfc3339(now)
        else:
            desired = current
        status["desiredReplicas"] = desired

    async def _compute(self, hpa: Obj, scale: Obj, *, current: int, now: datetime) -> tuple[int, str] | None:
        """computeReplicasForMetrics: the largest proposal of the valid metrics; None when none is valid
        (ScalingActive False with the first error, as Kubernetes)."""
        status = hpa["status"]
        conditions = status["conditions"]
        selector_text = str((scale.get("status") or {}).get("selector") or "")
        if not selector_text:
            _set_condition(conditions, Condition("ScalingActive", "False", "InvalidSelector",
                                                 "the HPA target's scale is missing a selector"), now)
            return None
        try:
            selector = parse_label_selector(selector_text)
        except SelectorError as e:
            _set_condition(conditions, Condition("ScalingActive", "False", "InvalidSelector",
                                                 f"couldn't convert selector into a corresponding internal selector object: {e}"), now)
            return None
        namespace = str(hpa["metadata"]["namespace"])
        pods = [p for p in self.pods.list(namespace) if selector.matches((p.get("metadata") or {}).get("labels") or {})]
        best: _MetricResult | None = None
        statuses: list[Obj] = []
        errors_seen: list[tuple[str, str]] = []
        for metric in (hpa.get("spec") or {}).get("metrics") or []:
            try:
                result = await self._metric(hpa, metric, current=current, pods=pods, selector=selector_text, now=now)
            except MetricError as e:
                kind = str(metric.get("type") or "")
                errors_seen.append((f"FailedGet{kind}Metric", str(e)))
                statuses.append({"type": ""})
                continue
            statuses.append(result.status)
            if best is None or result.replicas > best.replicas:
                best = result
        status["currentMetrics"] = [s for s in statuses if s.get("type")] or None
        if status["currentMetrics"] is None:
            del status["currentMetrics"]
        if best is None:
            reason, message = errors_seen[0] if errors_seen else ("FailedGetResourceMetric", "no metrics")
            _set_condition(conditions, Condition("ScalingActive", "False", reason,
                                                 f"the HPA was unable to compute the replica count: {message}"), now)
            await self.recorder.event(hpa, "Warning", "FailedComputeMetricsReplicas",
                                      f"invalid metrics ({len(errors_seen)} invalid out of {len(statuses)}), "
                                      f"first error is: {message}")
            return None
        _set_condition(conditions, Condition("ScalingActive", "True", "ValidMetricFound",
                                             f"the HPA was able to successfully calculate a replica count from {best.name}"), now)
        return best.replicas, best.name

    # ------------------------------------------------------------------ wiring
    def _on_hpa(self, obj: Obj, *_: Any) -> None:
        meta = obj.get("metadata") or {}
        self.controller.enqueue(f"{meta.get('namespace')}/{meta.get('name')}")

    def _on_hpa_update(self, old: Obj, new: Obj) -> None:
        if old.get("spec") != new.get("spec"):
            self._on_hpa(new)

    async def run(self) -> None:
        # A status write of ours is an update too: only a changed spec asks for an early sync.
        self.hpas.add_handler(self._on_hpa, self._on_hpa_update, self._on_hpa)
        await self.hpas.wait_synced()
        await self.pods.wait_synced()
        await self.controller.run()


async def run(ctx: "ControllerContext") -> None:
    s = ctx.settings
    settings = Settings(tolerance=s.horizontal_pod_autoscaler_tolerance,
                        downscale_stabilization=s.horizontal_pod_autoscaler_downscale_stabilization)
    controller = HorizontalController(
        ctx.client, hpas=ctx.informers.informer(HPA_RESOURCE), pods=ctx.informers.informer(POD_RESOURCE),
        recorder=ctx.recorder("horizontal-pod-autoscaler"),
        sync_period=s.horizontal_pod_autoscaler_sync_period, settings=settings)
    ctx.informers.start()  # the informers asked for above (the manager started the earlier ones)
    await controller.run()


__all__ = ["HorizontalController", "pod_metrics", "run"]

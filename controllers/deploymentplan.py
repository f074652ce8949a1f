"""The Deployment controller's decisions: one ``syncDeployment`` step as a pure function.

Role: DESIGN pattern 6 for ``controllers.deployment``: ``plan(d, rss, pods, now=...)`` reads a
Deployment, the ReplicaSets and the pods of its namespace (informer-cache dicts, never mutated:
the planner works on copies) and returns a ``DeploymentPlan`` -- adoptions and releases, ReplicaSet
creates/updates/deletes (``CreateReplicaSet``/``UpdateReplicaSet``/``DeleteReplicaSet``), the
Deployment's new revision annotations and status, events and when to look again. The controller
only carries the plan out. The arithmetic (hashes, fenceposts, annotations, conditions) lives in
``controllers.deploymentutil``.

Data flow (Kubernetes' pkg/controller/deployment: sync.go, rolling.go, recreate.go, progress.go):

    claim ReplicaSets (adopt orphans matching the selector, release non-matching)
    new RS = the one whose template equals spec.template (pod-template-hash ignored); its
        revision is raised above every old one (a rollback reuses the old RS)
    paused or a scaling event -> proportional scaling of the active ReplicaSets
    Recreate      -> old RSs to 0; once none of their pods is left, new RS to replicas
    RollingUpdate -> create / scale up the new RS within replicas + maxSurge, else scale old RSs
        down as far as replicas - maxUnavailable allows (unhealthy ones first)
    complete -> delete the oldest empty RSs beyond revisionHistoryLimit
    status: counts from the RS statuses, Available and Progressing conditions

Times come in as ``now``; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controllers import deploymentutil as du
from controllers import ownerrefs
from controllers.ownerrefs import Obj, get_controller_of, is_deleting, meta, name_of, uid_of
from machinery.selectors import LabelSelector, SelectorError, label_selector_from_dict


# ============================================================================ actions
@dataclass
class CreateReplicaSet:
    body: Obj
    event: str | None = None  # the ScalingReplicaSet message to record once it is done


@dataclass
class UpdateReplicaSet:
    """PUT the whole ReplicaSet (a changed copy of the cached one, same resourceVersion)."""

    rs: Obj
    old_replicas: int
    new_replicas: int
    event: str | None = None


@dataclass
class DeleteReplicaSet:
    rs: Obj


Action = CreateReplicaSet | UpdateReplicaSet | DeleteReplicaSet


@dataclass
class DeploymentPlan:
    adopt: list[Obj] = field(default_factory=list)
    release: list[Obj] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    # metadata.annotations of the Deployment when they must change (its revision), else None.
    annotations: dict[str, str] | None = None
    # The new status when it differs from the current one, else None.
    status: Obj | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    requeue_after: float | None = None

    def replica_sets_after(self) -> list[Obj]:
        """The ReplicaSets (bodies) the plan creates or changes, for tests."""
        out: list[Obj] = []
        for a in self.actions:
            if isinstance(a, CreateReplicaSet):
                out.append(a.body)
            elif isinstance(a, UpdateReplicaSet):
                out.append(a.rs)
        return out


# ============================================================================ the planner (pure)
def deployment_selector(d: Obj) -> LabelSelector | None:
    """The Deployment's ``spec.selector`` as a ``LabelSelector``; None when it does not parse."""
    try:
        return label_selector_from_dict((d.get("spec") or {}).get("selector"))
    except SelectorError:
        return None


class _Planner:
    """One pass of ``syncDeployment`` over working copies; records actions instead of calling."""

    def __init__(self, d: Obj, rss: Sequence[Obj], pods: Sequence[Obj], now: datetime) -> None:
        self.orig = d
        self.d = copy.deepcopy(d)
        self.d.setdefault("status", {})
        self.now = now
        self.out = DeploymentPlan()
        sel = deployment_selector(d)
        claimed = ownerrefs.claim(d, rss, lambda rs: sel is not None and sel.matches(meta(rs).get("labels") or {}))
        self.out.adopt, self.out.release = claimed.adopt, claimed.release
        # Working copies keyed by identity of the copy; cached objects are never touched.
        self.rss: list[Obj] = [copy.deepcopy(rs) for rs in claimed.owned]
        self.pending_create: Obj | None = None
        uids = {uid_of(rs) for rs in self.rss}
        self.pods_by_rs: dict[str, list[Obj]] = {}
        for pod in pods:
            ref = get_controller_of(pod)
            if ref is not None and ref.get("uid") in uids:
                self.pods_by_rs.setdefault(str(ref.get("uid")), []).append(pod)

    # ------------------------------------------------------------------ small effects
    def event(self, type_: str, reason: str, message: str) -> None:
        self.out.events.append((type_, reason, message))

    def scale(self, rs: Obj, new_scale: int, operation: str | None = None) -> bool:
        """``scaleReplicaSet``: set size and replica annotations; True if the size changed."""
        d = self.d
        old = du.replicas_of(rs)
        size_changed = old != new_scale
        want, max_total = du.replicas_of(d), du.replicas_of(d) + du.max_surge(d)
        ann_changed = du.replicas_annotations_need_update(rs, want, max_total)
        if not size_changed and not ann_changed:
            return False
        rs.setdefault("spec", {})["replicas"] = new_scale
        du.set_replicas_annotations(rs, want, max_total)
        if rs is self.pending_create:
            return size_changed  # not created yet: the creation carries the new size
        message = None
        if size_changed:
            op = operation or ("up" if new_scale > old else "down")
            message = f"Scaled {op} replica set {name_of(rs)} to {new_scale} from {old}"
        self.record_update(rs, old, message)
        return size_changed

    def record_update(self, rs: Obj, old_replicas: int, message: str | None) -> None:
        """One PUT per ReplicaSet per pass (a second one would conflict on resourceVersion)."""
        for a in self.out.actions:
            if isinstance(a, UpdateReplicaSet) and uid_of(a.rs) == uid_of(rs):
                a.rs, a.new_replicas = copy.deepcopy(rs), du.replicas_of(rs)
                a.event = message or a.event
                return
        self.out.actions.append(UpdateReplicaSet(rs=copy.deepcopy(rs), old_replicas=old_replicas,
                                                 new_replicas=du.replicas_of(rs), event=message))

    def scale_and_record(self, rs: Obj, new_scale: int) -> bool:
        """``scaleReplicaSetAndRecordEvent``: nothing to do when the size is already right."""
        if du.replicas_of(rs) == new_scale:
            return False
        return self.scale(rs, new_scale)

    def set_deployment_revision(self, revision: str) -> None:
        ann = self.d.setdefault("metadata", {}).setdefault("annotations", {})
        if ann.get(du.REVISION) != revision:
            ann[du.REVISION] = revision

    # ------------------------------------------------------------------ new / old ReplicaSets
    def new_and_old(self) -> tuple[Obj | None, list[Obj]]:
        """``getAllReplicaSetsAndSyncRevision(createIfNotExisted=false)``."""
        d = self.d
        new = du.find_new_rs(d, self.rss)
        olds = [rs for rs in self.rss if rs is not new]
        if new is None:
            return None, olds
        new_revision = du.max_revision(olds) + 1
        before = copy.deepcopy(new)
        changed = du.set_new_rs_annotations(d, new, new_revision, exists=True)
        min_ready = int((d.get("spec") or {}).get("minReadySeconds") or 0)
        if int((new.get("spec") or {}).get("minReadySeconds") or 0) != min_ready:
            new.setdefault("spec", {})["minReadySeconds"] = min_ready
            changed = True
        if changed:
            self.record_update(new, du.replicas_of(before), None)
        self.set_deployment_revision(str(du.revision_of(new)))
        status = d["status"]
        if du.has_progress_deadline(d) and du.get_condition(status, "Progressing") is None:
            du.set_condition(status, du.new_condition("Progressing", "True", du.FOUND_NEW_RS_REASON,
                                                      f'Found new replica set "{name_of(new)}"', self.now))
        return new, olds

    def create_new(self, olds: list[Obj]) -> Obj:
        """The creating half of ``getNewReplicaSet``."""
        d = self.d
        spec = d.get("spec") or {}
        template = copy.deepcopy(spec.get("template") or {})
        collision = (d.get("status") or {}).get("collisionCount")
        h = du.compute_hash(spec.get("template") or {}, collision)
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), du.POD_TEMPLATE_HASH: h}
        selector = copy.deepcopy(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), du.POD_TEMPLATE_HASH: h}
        name = f"{name_of(d)}-{h}"
        rs: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": meta(d).get("namespace"),
                         "labels": dict(tmeta["labels"]),
                         "ownerReferences": [ownerrefs.controller_ref(d, api_version="apps/v1", kind="Deployment")]},
            "spec": {"replicas": 0, "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                     "selector": selector, "template": template},
        }
        rs["spec"]["replicas"] = self.new_rs_new_replicas([*olds, rs], rs)
        new_revision = du.max_revision(olds) + 1
        du.set_new_rs_annotations(d, rs, new_revision, exists=False)
        replicas = du.replicas_of(rs)
        message = f"Scaled up replica set {name} to {replicas}" if replicas > 0 else None
        self.out.actions.append(CreateReplicaSet(body=rs, event=message))
        self.pending_create = rs
        self.rss.append(rs)
        self.set_deployment_revision(str(new_revision))
        if du.has_progress_deadline(d):
            du.set_condition(d["status"], du.new_condition("Progressing", "True", du.NEW_RS_REASON,
                                                           f'Created new replica set "{name}"', self.now))
        return rs

    def new_rs_new_replicas(self, all_rss: list[Obj], new: Obj) -> int:
        """``NewRSNewReplicas``: how far the new RS may grow now."""
        d = self.d
        want = du.replicas_of(d)
        if not du.is_rolling(d):
            return want
        max_total = want + du.max_surge(d)
        current = du.pod_count_upper_bound(all_rss)
        if current >= max_total:
            return du.replicas_of(new)
        up = min(max_total - current, want - du.replicas_of(new))
        return du.replicas_of(new) + max(up, 0)

    # ------------------------------------------------------------------ sync.go
    def check_paused_conditions(self) -> None:
        d = self.d
        if not du.has_progress_deadline(d):
            return
        status = d["status"]
        cond = du.get_condition(status, "Progressing")
        if cond is not None and cond.get("reason") == du.TIMED_OUT_REASON:
            return
        paused_exists = cond is not None and cond.get("reason") == du.PAUSED_REASON
        paused = bool((d.get("spec") or {}).get("paused"))
        if paused and not paused_exists:
            du.set_condition(status, du.new_condition("Progressing", "Unknown", du.PAUSED_REASON,
                                                      "Deployment is paused", self.now))
        elif not paused and paused_exists:
            du.set_condition(status, du.new_condition("Progressing", "Unknown", du.RESUMED_REASON,
                                                      "Deployment is resumed", self.now))

    def is_scaling_event(self, new: Obj | None, olds: list[Obj]) -> bool:
        want = du.replicas_of(self.d)
        for rs in du.filter_active([*olds, new]):
            desired = du.desired_replicas_annotation(rs)
            if desired is not None and desired != want:
                return True
        return False

    def proportional_scale(self, new: Obj | None, olds: list[Obj]) -> None:
        """``scale``: one active RS takes all replicas; a saturated new RS empties the old ones;
        otherwise (rolling) the change is shared out in proportion to the sizes."""
        d = self.d
        want = du.replicas_of(d)
        only = du.find_active_or_latest(new, olds)
        if only is not None:
            if du.replicas_of(only) != want:
                self.scale_and_record(only, want)
            return
        if du.is_saturated(d, new):
            for old in du.filter_active(olds):
                self.scale_and_record(old, 0)
            return
        if not du.is_rolling(d):
            return
        active = du.filter_active([*olds, new])
        total = du.replica_count(active)
        allowed = want + du.max_surge(d) if want > 0 else 0
        to_add = allowed - total
        operation: str | None = None
        if to_add > 0:
            active = du.by_size_newer(active)
            operation = "up"
        elif to_add < 0:
            active = du.by_size_older(active)
            operation = "down"
        added = 0
        sizes: dict[int, int] = {}
        for rs in active:
            if to_add != 0:
                proportion = du.rs_proportion(rs, d, to_add, added)
                sizes[id(rs)] = du.replicas_of(rs) + proportion
                added += proportion
            else:
                sizes[id(rs)] = du.replicas_of(rs)
        for i, rs in enumerate(active):
            if i == 0 and to_add != 0:
                sizes[id(rs)] = max(sizes[id(rs)] + to_add - added, 0)
            self.scale(rs, sizes[id(rs)], operation)

    def cleanup(self, olds: list[Obj]) -> None:
        """``cleanupDeployment``: delete the oldest empty ReplicaSets beyond revisionHistoryLimit."""
        d = self.d
        if not du.has_revision_history_limit(d):
            return
        alive = [rs for rs in olds if not is_deleting(rs) and rs is not self.pending_create]
        diff = len(alive) - int((d.get("spec") or {}).get("revisionHistoryLimit") or 0)
        if diff <= 0:
            return
        for rs in du.by_revision(alive)[:diff]:
            if (du.status_int(rs, "replicas") != 0 or du.replicas_of(rs) != 0
                    or int(meta(rs).get("generation") or 0) > du.status_int(rs, "observedGeneration")):
                continue
            self.out.actions.append(DeleteReplicaSet(rs=rs))

    # ------------------------------------------------------------------ rolling.go
    def reconcile_new(self, all_rss: list[Obj], new: Obj) -> bool:
        want = du.replicas_of(self.d)
        if du.replicas_of(new) == want:
            return False
        if du.replicas_of(new) > want:
            return self.scale_and_record(new, want)
        return self.scale_and_record(new, self.new_rs_new_replicas(all_rss, new))

    def reconcile_old(self, all_rss: list[Obj], olds: list[Obj], new: Obj) -> bool:
        d = self.d
        old_count = du.replica_count(olds)
        if old_count == 0:
            return False
        all_count = du.replica_count(all_rss)
        min_available = du.replicas_of(d) - du.max_unavailable(d)
        new_unavailable = du.replicas_of(new) - min(du.status_int(new, "availableReplicas"), du.replicas_of(new))
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = self.cleanup_unhealthy(olds, max_scaled_down)
        scaled = self.scale_down_old_for_rolling([*olds, new], olds)
        return cleaned + scaled > 0

    def cleanup_unhealthy(self, olds: list[Obj], max_cleanup: int) -> int:
        total = 0
        for rs in du.by_creation(olds):
            if total >= max_cleanup:
                break
            replicas, available = du.replicas_of(rs), du.status_int(rs, "availableReplicas")
            if replicas == 0 or replicas <= available:
                continue
            down = min(max_cleanup - total, replicas - available)
            self.scale_and_record(rs, replicas - down)
            total += down
        return total

    def scale_down_old_for_rolling(self, all_rss: list[Obj], olds: list[Obj]) -> int:
        d = self.d
        min_available = du.replicas_of(d) - du.max_unavailable(d)
        available = du.available_lower_bound(all_rss)
        if available <= min_available:
            return 0
        total, target = 0, available - min_available
        for rs in du.by_creation(olds):
            if total >= target:
                break
            if du.replicas_of(rs) == 0:
                continue
            down = min(du.replicas_of(rs), target - total)
            self.scale_and_record(rs, du.replicas_of(rs) - down)
            total += down
        return total

    # ------------------------------------------------------------------ recreate.go
    def old_pods_running(self, new: Obj | None, olds: list[Obj]) -> bool:
        if du.actual_replica_count(olds) > 0:
            return True
        for rs_uid, pods in self.pods_by_rs.items():
            if new is not None and uid_of(new) == rs_uid:
                continue
            for pod in pods:
                if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    # ------------------------------------------------------------------ progress.go + status
    def calculate_status(self, all_rss: list[Obj], new: Obj | None) -> Obj:
        d = self.d
        available = du.available_replica_count(all_rss)
        total = du.replica_count(all_rss)
        counts = {
            "observedGeneration": int(meta(d).get("generation") or 0),
            "replicas": du.actual_replica_count(all_rss),
            "updatedReplicas": du.actual_replica_count([new]),
            "readyReplicas": du.ready_replica_count(all_rss),
            "availableReplicas": available,
            "unavailableReplicas": max(total - available, 0),
        }
        status: Obj = {k: v for k, v in counts.items() if v}
        current = d.get("status") or {}
        if current.get("conditions"):
            status["conditions"] = copy.deepcopy(current["conditions"])
        if current.get("collisionCount") is not None:
            status["collisionCount"] = current["collisionCount"]
        if available >= du.replicas_of(d) - du.max_unavailable(d):
            du.set_condition(status, du.new_condition("Available", "True", du.MIN_AVAILABLE_REASON,
                                                      "Deployment has minimum availability.", self.now))
        else:
            du.set_condition(status, du.new_condition("Available", "False", du.MIN_UNAVAILABLE_REASON,
                                                      "Deployment does not have minimum availability.", self.now))
        return status

    def sync_rollout_status(self, all_rss: list[Obj], new: Obj | None) -> None:
        d = self.d
        status = self.calculate_status(all_rss, new)
        if not du.has_progress_deadline(d):
            du.remove_condition(status, "Progressing")
        current = du.get_condition(d["status"], "Progressing")
        complete_before = (int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0)
                           and current is not None and current.get("reason") == du.NEW_RS_AVAILABLE_REASON)
        if du.has_progress_deadline(d) and not complete_before:
            what = f'ReplicaSet "{name_of(new)}"' if new is not None else f'Deployment "{name_of(d)}"'
            if du.deployment_complete(d, status):
                du.set_condition(status, du.new_condition("Progressing", "True", du.NEW_RS_AVAILABLE_REASON,
                                                          f"{what} has successfully progressed.", self.now))
            elif du.deployment_progressing(d, status):
                cond = du.new_condition("Progressing", "True", du.RS_UPDATED_REASON, f"{what} is progressing.",
                                        self.now)
                if current is not None:
                    if current.get("status") == "True":
                        cond["lastTransitionTime"] = current.get("lastTransitionTime")
                    du.remove_condition(status, "Progressing")
                du.set_condition(status, cond)
            elif du.deployment_timed_out(d, status, self.now):
                du.set_condition(status, du.new_condition("Progressing", "False", du.TIMED_OUT_REASON,
                                                          f"{what} has timed out progressing.", self.now))
        failure = self.replica_failure(all_rss, new)
        if failure is not None:
            du.set_condition(status, failure)
        else:
            du.remove_condition(status, "ReplicaFailure")
        d["status"] = status
        self.requeue_stuck(status)

    def replica_failure(self, all_rss: list[Obj], new: Obj | None) -> dict[str, Any] | None:
        """``getReplicaFailures``: the new RS's ReplicaFailure condition, else any old one's."""
        ordered = ([new] if new is not None else []) + [rs for rs in all_rss if rs is not new]
        for rs in ordered:
            for c in (rs.get("status") or {}).get("conditions") or []:
                if c.get("type") == "ReplicaFailure":
                    ts = c.get("lastTransitionTime") or du.rfc3339(self.now)
                    return {"type": "ReplicaFailure", "status": c.get("status"), "reason": c.get("reason"),
                            "message": c.get("message"), "lastUpdateTime": ts, "lastTransitionTime": ts}
        return None

    def requeue_stuck(self, status: Obj) -> None:
        """``requeueStuckDeployment``: look again when the progress deadline would pass."""
        d = self.d
        current = du.get_condition(self.orig.get("status") or {}, "Progressing")
        if not du.has_progress_deadline(d) or current is None:
            return
        if du.deployment_complete(d, status) or current.get("reason") == du.TIMED_OUT_REASON:
            return
        cond = du.get_condition(status, "Progressing") or current
        since = du.parse_ts(cond.get("lastUpdateTime"))
        if since is None:
            return
        pds = int((d.get("spec") or {}).get("progressDeadlineSeconds") or 0)
        after = (since - self.now).total_seconds() + pds
        self.out.requeue_after = 0.5 if after < 1 else after + 1

    # ------------------------------------------------------------------ the pass
    def run(self) -> DeploymentPlan:
        d = self.d
        spec = d.get("spec") or {}
        sel = spec.get("selector")
        if isinstance(sel, dict) and not sel.get("matchLabels") and not sel.get("matchExpressions"):
            self.event("Warning", "SelectingAll",
                       "This deployment is selecting all pods. A non-empty selector is required.")
            if du.status_int(d, "observedGeneration") < int(meta(d).get("generation") or 0):
                d["status"]["observedGeneration"] = int(meta(d).get("generation") or 0)
            return self.finish()
        new, olds = self.new_and_old()
        if is_deleting(d):
            self.sync_rollout_status([*olds, *([new] if new else [])], new)
            return self.finish()
        self.check_paused_conditions()
        if spec.get("paused") or self.is_scaling_event(new, olds):
            self.sync(new, olds)
        elif not du.is_rolling(d):
            self.recreate(new, olds)
        else:
            self.rolling(new, olds)
        return self.finish()

    def sync(self, new: Obj | None, olds: list[Obj]) -> None:
        self.proportional_scale(new, olds)
        if (self.d.get("spec") or {}).get("paused"):
            self.cleanup(olds)
        self.sync_rollout_status([*olds, *([new] if new else [])], new)

    def rolling(self, new: Obj | None, olds: list[Obj]) -> None:
        if new is None:
            new = self.create_new(olds)
        all_rss = [*olds, new]
        if self.reconcile_new(all_rss, new):
            self.sync_rollout_status(all_rss, new)
            return
        if self.reconcile_old(all_rss, du.filter_active(olds), new):
            self.sync_rollout_status(all_rss, new)
            return
        if du.deployment_complete(self.d, self.d["status"]):
            self.cleanup(olds)
        self.sync_rollout_status(all_rss, new)

    def recreate(self, new: Obj | None, olds: list[Obj]) -> None:
        all_rss = [*olds, *([new] if new else [])]
        scaled_down = False
        for rs in du.filter_active(olds):
            if self.scale_and_record(rs, 0):
                scaled_down = True
        if scaled_down or self.old_pods_running(new, olds):
            self.sync_rollout_status(all_rss, new)
            return
        if new is None:
            new = self.create_new(olds)
            all_rss = [*olds, new]
        if du.replicas_of(new) != du.replicas_of(self.d):
            self.scale_and_record(new, du.replicas_of(self.d))
        if du.deployment_complete(self.d, self.d["status"]):
            self.cleanup(olds)
        self.sync_rollout_status(all_rss, new)

    def finish(self) -> DeploymentPlan:
        orig_ann = meta(self.orig).get("annotations") or {}
        new_ann = meta(self.d).get("annotations") or {}
        if new_ann != orig_ann:
            self.out.annotations = dict(new_ann)
        if (self.d.get("status") or {}) != (self.orig.get("status") or {}):
            self.out.status = self.d["status"]
        return self.out


def plan(d: Obj, rss: Sequence[Obj], pods: Sequence[Obj], *, now: datetime) -> DeploymentPlan:
    """One ``syncDeployment`` step for ``d`` given the ReplicaSets and pods of its namespace (pure)."""
    return _Planner(d, rss, pods, now).run()

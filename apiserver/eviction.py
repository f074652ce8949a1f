"""``POST pods/{name}/eviction``: delete a pod only if its PodDisruptionBudget allows it.

After pkg/registry/core/pod/storage/eviction.go. Data flow: the Eviction body (policy/v1, or
policy/v1beta1; JSON or protobuf) -> its ``deleteOptions`` (``dryRun`` from the query or the body)
-> the pod, then:

- a pod that is Succeeded, Failed, Pending or already being deleted is deleted at once (with a
  resourceVersion precondition unless it is terminal or terminating, so it cannot turn Ready
  in between);
- otherwise the PodDisruptionBudgets of its namespace whose selector matches it: more than one
  -> 500 "This pod has more than one PodDisruptionBudget, ..."; none -> delete;
- one: a pod that is not Ready is deleted without spending the budget when the PDB says
  ``unhealthyPodEvictionPolicy: AlwaysAllow``, or when the budget is currently met
  (``currentHealthy >= desiredHealthy > 0``); else ``check_and_decrement``: a status the
  controller has not caught up with (``observedGeneration < generation``) -> 429 (retry after
  10 s); ``disruptionsAllowed == 0`` -> 429 TooManyRequests naming the budget; otherwise one
  compare-and-swap write of the PDB's status (``disruptionsAllowed - 1``, the pod in
  ``disruptedPods``; retried on conflict with the PDB read again) and the pod is deleted;
- the delete first sets the pod's ``DisruptionTarget`` condition (reason ``EvictionByEvictionAPI``),
  then deletes it with the Eviction's deleteOptions -> ``201 Status Success``.

The decisions are small pure functions; the reads and writes go through the ``Registry``.
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Mapping
from typing import Any

import orjson

from machinery import errors
from machinery.errors import StatusCause
from machinery.selectors import SelectorError, label_selector_from_dict

from .decode import DecodeError, decode
from .registry import STRATEGIC_PATCH, Registry, now_rfc3339
from .resources import Resource

Obj = dict[str, Any]

EVICTION_VERSIONS = ("policy/v1", "policy/v1beta1")
MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE_PDBS = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
MAX_DISRUPTED_POD_SIZE = 2000
RETRIES = 20  # EvictionsRetry: 20 steps (Kubernetes waits 0.5 s between them; a local write is faster)
SUCCESS: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


class DisruptionBudgetError(errors.TooManyRequestsError):
    """The 429 of a budget that allows no disruption now, shaped as Kubernetes sends it (causes
    without a field, ``details`` always present)."""

    def to_status(self) -> dict[str, Any]:
        out = super().to_status()
        details = out.setdefault("details", {})
        for cause in details.get("causes") or []:
            if not cause.get("field"):
                cause.pop("field", None)
        out["code"] = out.pop("code")  # details before code, as metav1.Status serializes
        return out


def too_many_requests(cause: str, *, retry_after: int | None = None) -> DisruptionBudgetError:
    return DisruptionBudgetError(message=MESSAGE, causes=[StatusCause("DisruptionBudget", cause, "")],
                                 retry_after_seconds=retry_after)


def still_processing(pdb_name: str) -> DisruptionBudgetError:
    return too_many_requests(f"The disruption budget {pdb_name} is still being processed by the server.",
                             retry_after=10)


# ---------------------------------------------------------------------------- pure decisions
def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, Mapping) else {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("status")
    return value if isinstance(value, Mapping) else {}


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in _status(pod).get("conditions") or [])


def can_ignore_pdb(pod: Mapping[str, Any]) -> bool:
    return _status(pod).get("phase") in ("Succeeded", "Failed", "Pending") or bool(_meta(pod).get("deletionTimestamp"))


def should_enforce_resource_version(pod: Mapping[str, Any]) -> bool:
    return _status(pod).get("phase") not in ("Succeeded", "Failed") and not _meta(pod).get("deletionTimestamp")


def matching_pdbs(pod: Mapping[str, Any], pdbs: list[Obj]) -> list[Obj]:
    """The PDBs of the pod's namespace that select it (policy/v1: an empty selector selects all)."""
    labels = _meta(pod).get("labels") or {}
    out = []
    for pdb in pdbs:
        if _meta(pdb).get("namespace") != _meta(pod).get("namespace"):
            continue
        try:
            selector = label_selector_from_dict((pdb.get("spec") or {}).get("selector"))
        except SelectorError:
            continue  # an invalid selector matches nothing
        if selector.matches(labels):
            out.append(pdb)
    return out


def spends_no_budget(pod: Mapping[str, Any], pdb: Mapping[str, Any]) -> bool:
    """A not-Ready pod whose deletion does not disrupt the application further."""
    if is_pod_ready(pod):
        return False
    if (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        return True
    state = _status(pdb)
    desired = int(state.get("desiredHealthy") or 0)
    return int(state.get("currentHealthy") or 0) >= desired > 0


def decremented(pdb: Obj, pod_name: str, *, now: str, dry_run: bool) -> Obj:
    """checkAndDecrement: the PDB with one disruption spent, or the error that refuses it."""
    meta, state = _meta(pdb), _status(pdb)
    name = str(meta.get("name") or "")
    if int(state.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        raise still_processing(name)
    allowed = int(state.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise errors.ForbiddenError(message=f'poddisruptionbudgets.policy "{name}" is forbidden: '
                                            "pdb disruptions allowed is negative",
                                    name=name, group="policy", kind="poddisruptionbudget")
    if len(state.get("disruptedPods") or {}) > MAX_DISRUPTED_POD_SIZE:
        raise errors.ForbiddenError(message=f'poddisruptionbudgets.policy "{name}" is forbidden: DisruptedPods '
                                            "map too big - too many evictions not confirmed by PDB controller",
                                    name=name, group="policy", kind="poddisruptionbudget")
    if allowed == 0:
        raise too_many_requests(f"The disruption budget {name} needs {int(state.get('desiredHealthy') or 0)} "
                                f"healthy pods and has {int(state.get('currentHealthy') or 0)} currently")
    new = copy.deepcopy(pdb)
    new_state = new.setdefault("status", {})
    new_state["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        set_insufficient(new_state, now=now)
    if not dry_run:
        new_state["disruptedPods"] = {**(new_state.get("disruptedPods") or {}), pod_name: now}
    return new


def set_insufficient(state: Obj, *, now: str) -> None:
    """UpdateDisruptionAllowedCondition for a budget that just reached zero."""
    conditions = [dict(c) for c in state.get("conditions") or []]
    found = next((c for c in conditions if c.get("type") == "DisruptionAllowed"), None)
    wanted = {"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods", "message": "",
              "observedGeneration": int(state.get("observedGeneration") or 0)}
    if found is None:
        conditions.append({**wanted, "lastTransitionTime": now})
    else:
        if found.get("status") != "False":
            found["lastTransitionTime"] = now
        found.update(wanted)
    state["conditions"] = conditions


def delete_options(eviction: Obj, *, query_dry_run: bool) -> Obj:
    """propagateDryRun: the Eviction's deleteOptions with ``?dryRun`` folded in."""
    options = copy.deepcopy(eviction.get("deleteOptions") or {})
    if not isinstance(options, dict):
        raise errors.BadRequestError(message="invalid deleteOptions: expected an object")
    in_body = options.get("dryRun") or []
    if not isinstance(in_body, list) or any(v != "All" for v in in_body):
        raise errors.BadRequestError(message=f'dryRun: Unsupported value: {in_body!r}: supported values: "All"')
    query = ["All"] if query_dry_run else []
    if in_body and query and in_body != query:
        raise errors.BadRequestError(
            message=f"Non-matching dry-run options in request and content: {query} and {in_body}")
    options["dryRun"] = in_body or query
    return options


def _rv_unset(options: Mapping[str, Any]) -> bool:
    return not (options.get("preconditions") or {}).get("resourceVersion")


def _with_rv(options: Obj, rv: str) -> Obj:
    out = copy.deepcopy(options)
    out["preconditions"] = {**(out.get("preconditions") or {}), "resourceVersion": rv}
    return out


# ---------------------------------------------------------------------------- the handler
def decode_eviction(body: Any, *, namespace: str | None, name: str) -> Obj:
    if not isinstance(body, dict):
        raise errors.BadRequestError(message="the body of the request was in an unknown format: expected an Eviction")
    if body.get("kind") not in (None, "", "Eviction"):
        raise errors.BadRequestError(message=f'the kind in the data ({body.get("kind")}) does not match the expected '
                                             "kind (Eviction)")
    if body.get("apiVersion") not in (None, "", *EVICTION_VERSIONS):
        raise errors.BadRequestError(message=f'the API version in the data ({body.get("apiVersion")}) does not match '
                                             "the expected API version (policy/v1)")
    try:
        eviction, _ = decode("V1Eviction", body)
    except DecodeError as e:
        raise errors.BadRequestError(message=f'Eviction in version "v1" cannot be handled as a Eviction: {e}')
    meta = eviction.get("metadata") or {}
    if meta.get("namespace") and namespace and meta["namespace"] != namespace:
        raise errors.BadRequestError(message="the namespace of the provided object does not match the namespace "
                                             "sent on the request")
    if meta.get("name") != name:
        raise errors.BadRequestError(message="name in URL does not match name in Eviction object")
    return eviction


async def evict(registry: Registry, pods: Resource, namespace: str | None, name: str, body: Any, *,
                dry_run: bool) -> tuple[int, Obj]:
    """Serve one eviction: (HTTP code, Status body); refusals raise ``ApiError``s."""
    options = delete_options(decode_eviction(body, namespace=namespace, name=name), query_dry_run=dry_run)
    is_dry_run = bool(options["dryRun"])
    pod: Obj = {}
    for attempt in range(RETRIES):
        pod = (await registry.get(pods, namespace, name)).obj
        if not can_ignore_pdb(pod):
            break
        opts = options
        if should_enforce_resource_version(pod) and _rv_unset(options):
            opts = _with_rv(options, str(_meta(pod).get("resourceVersion")))
        try:
            await _mark_and_delete(registry, pods, namespace, name, opts, dry_run=is_dry_run)
            return 201, SUCCESS
        except errors.ConflictError:
            if not _rv_unset(options) or attempt == RETRIES - 1:
                raise
            await _pause()
    pdb_res = registry.resources.lookup("policy", "v1", "poddisruptionbudgets")
    found = [e.obj for e in (await registry.list(pdb_res, namespace)).items] if pdb_res is not None else []
    pdbs = matching_pdbs(pod, found)
    if len(pdbs) > 1:
        return 500, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                     "message": MULTIPLE_PDBS, "code": 500}
    precondition = False
    if pdbs:
        assert pdb_res is not None
        if spends_no_budget(pod, pdbs[0]):
            precondition = True
        else:
            await _check_and_decrement(registry, pdb_res, pdbs[0], name, dry_run=is_dry_run)
    opts = _with_rv(options, str(_meta(pod).get("resourceVersion"))) if precondition else options
    try:
        await _mark_and_delete(registry, pods, namespace, name, opts, dry_run=is_dry_run)
    except errors.ConflictError:
        if precondition and _rv_unset(options):
            raise still_processing(str(_meta(pdbs[0]).get("name")))
        raise
    return 201, SUCCESS


async def _pause() -> None:
    await asyncio.sleep(random.uniform(0.005, 0.05))


async def _check_and_decrement(registry: Registry, pdb_res: Resource, pdb: Obj, pod_name: str, *,
                               dry_run: bool) -> None:
    """Spend one disruption of ``pdb`` in one compare-and-swap status write, re-reading it after a conflict."""
    namespace, pdb_name = _meta(pdb).get("namespace"), str(_meta(pdb).get("name"))
    for attempt in range(RETRIES):
        new = decremented(pdb, pod_name, now=now_rfc3339(registry.clock()), dry_run=dry_run)
        if dry_run:
            return
        try:
            # The body carries the read resourceVersion: the write is a compare-and-swap.
            await registry.update(pdb_res, namespace, pdb_name, new, subresource="status")
            return
        except errors.ConflictError:
            if attempt == RETRIES - 1:
                break
            await _pause()
            pdb = (await registry.get(pdb_res, namespace, pdb_name)).obj
    raise errors.TimeoutError_(message=f'couldn\'t update PodDisruptionBudget "{pdb_name}" due to conflicts',
                               retry_after_seconds=10)


async def _mark_and_delete(registry: Registry, pods: Resource, namespace: str | None, name: str, options: Obj, *,
                           dry_run: bool) -> None:
    """addConditionAndDeletePod: DisruptionTarget=True on the pod's status, then the delete."""
    if not dry_run:
        patch: Obj = {"status": {"conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting", "lastProbeTime": None,
            "lastTransitionTime": now_rfc3339(registry.clock())}]}}
        rv = (options.get("preconditions") or {}).get("resourceVersion")
        if rv:
            patch["metadata"] = {"resourceVersion": str(rv)}
        uid = (options.get("preconditions") or {}).get("uid")
        current = (await registry.get(pods, namespace, name)).obj
        if uid and uid != _meta(current).get("uid"):
            raise errors.ConflictError(
                message=f'Operation cannot be fulfilled on Pod "{name}": the UID in the precondition ({uid}) does '
                        f"not match the UID in record ({_meta(current).get('uid')}). The object might have been "
                        "deleted and then recreated", name=name, kind="Pod")
        if not _has_disruption_target(current):
            result = await registry.patch(pods, namespace, name, orjson.dumps(patch), content_type=STRATEGIC_PATCH,
                                          subresource="status")
            if rv:
                options = _with_rv(options, str(_meta(result.obj).get("resourceVersion")))
    await registry.delete(pods, namespace, name, options=options, dry_run=dry_run)


def _has_disruption_target(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "DisruptionTarget" and c.get("status") == "True"
               and c.get("reason") == "EvictionByEvictionAPI" for c in _status(pod).get("conditions") or [])

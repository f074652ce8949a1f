"""``mkctl rollout status|history|undo|restart`` for Deployments, DaemonSets and StatefulSets
(``pause|resume`` for Deployments), as kubectl does them.

Data flow: ``deploy/NAME`` -> the Deployment and the ReplicaSets it controls (by ownerReference
uid) -> pure functions decide: ``status_message`` (kubectl's DeploymentStatusViewer wording),
``history_rows`` (revision -> change-cause), ``undo_patch`` (the JSON patch that puts an earlier
ReplicaSet's pod template back, the way kubectl's rollback does it on the client) -> the API.
``ds/NAME`` and ``sts/NAME``: the object and the ControllerRevisions it controls ->
``daemonset_status_message`` / ``statefulset_status_message`` (kubectl's status viewers),
``revision_rows``, ``revision_undo_patch`` (the revision's data, ``{"spec": {"template": {...,
"$patch": "replace"}}}``, sent as a strategic merge patch, as kubectl's DaemonSet and StatefulSet
rollbackers do) -> the API. ``status`` watches the object until the message says it rolled out.
"""

from __future__ import annotations

import copy
import time
from datetime import datetime, timezone
from typing import Annotated, Any

import typer

from machinery import errors

from .app import app, options_of
from .session import CliError, Session, parse_duration, run_command
from .targets import parse_targets

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
# Annotations that belong to the rollout machinery, not to the user (kubectl's annotationsToSkip).
_SKIP = {"kubectl.kubernetes.io/last-applied-configuration", REVISION, "deployment.kubernetes.io/revision-history",
         "deployment.kubernetes.io/desired-replicas", "deployment.kubernetes.io/max-replicas",
         "deprecated.deployment.rollback.to"}

rollout_app = typer.Typer(help="Manage the rollout of a deployment.", no_args_is_help=True)
app.add_typer(rollout_app, name="rollout")


# ------------------------------------------------------------------------------- pure decisions
def status_message(deploy: dict[str, Any]) -> tuple[str, bool]:
    """(message, done) exactly as ``kubectl rollout status`` words it."""
    meta, spec, status = deploy.get("metadata") or {}, deploy.get("spec") or {}, deploy.get("status") or {}
    name = meta.get("name", "")
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return "Waiting for deployment spec update to be observed...", False
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            raise CliError(f'error: deployment "{name}" exceeded its progress deadline')
    replicas = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < replicas:
        return (f'Waiting for deployment "{name}" rollout to finish: {updated} out of {replicas} new replicas '
                f"have been updated..."), False
    if total > updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {total - updated} old replicas are '
                f"pending termination..."), False
    if available < updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} updated '
                f"replicas are available..."), False
    return f'deployment "{name}" successfully rolled out', True


def daemonset_status_message(ds: dict[str, Any]) -> tuple[str, bool]:
    """kubectl's DaemonSetStatusViewer."""
    meta, spec, status = ds.get("metadata") or {}, ds.get("spec") or {}, ds.get("status") or {}
    if ((spec.get("updateStrategy") or {}).get("type") or "RollingUpdate") != "RollingUpdate":
        raise CliError("error: rollout status is only available for RollingUpdate strategy type")
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return "Waiting for daemon set spec update to be observed...", False
    name = meta.get("name", "")
    desired, updated = int(status.get("desiredNumberScheduled") or 0), int(status.get("updatedNumberScheduled") or 0)
    available = int(status.get("numberAvailable") or 0)
    if updated < desired:
        return (f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} new pods have '
                "been updated..."), False
    if available < desired:
        return (f'Waiting for daemon set "{name}" rollout to finish: {available} of {desired} updated pods are '
                "available..."), False
    return f'daemon set "{name}" successfully rolled out', True


def statefulset_status_message(sts: dict[str, Any]) -> tuple[str, bool]:
    """kubectl's StatefulSetStatusViewer."""
    meta, spec, status = sts.get("metadata") or {}, sts.get("spec") or {}, sts.get("status") or {}
    strategy = spec.get("updateStrategy") or {}
    if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
        raise CliError("error: rollout status is only available for RollingUpdate strategy type")
    observed = int(status.get("observedGeneration") or 0)
    if observed == 0 or int(meta.get("generation") or 0) > observed:
        return "Waiting for statefulset spec update to be observed...", False
    replicas = spec.get("replicas")
    ready, updated = int(status.get("readyReplicas") or 0), int(status.get("updatedReplicas") or 0)
    if replicas is not None and ready < int(replicas):
        return f"Waiting for {int(replicas) - ready} pods to be ready...", False
    rolling = strategy.get("rollingUpdate")
    if rolling is not None:
        partition = rolling.get("partition")
        if replicas is not None and partition is not None and updated < int(replicas) - int(partition):
            return (f"Waiting for partitioned roll out to finish: {updated} out of {int(replicas) - int(partition)} "
                    "new pods have been updated..."), False
        return f"partitioned roll out complete: {updated} new pods have been updated...", True
    if status.get("updateRevision") != status.get("currentRevision"):
        return (f"waiting for statefulset rolling update to complete {updated} pods at revision "
                f"{status.get('updateRevision')}..."), False
    return (f"statefulset rolling update complete {int(status.get('currentReplicas') or 0)} pods at revision "
            f"{status.get('currentRevision')}..."), True


STATUS_VIEWERS = {"Deployment": status_message, "DaemonSet": daemonset_status_message,
                  "StatefulSet": statefulset_status_message}
# kind -> (apiVersion, plural): what the client takes for kinds its model table may not know
PLURALS = {"Deployment": ("apps/v1", "deployments"), "DaemonSet": ("apps/v1", "daemonsets"),
           "StatefulSet": ("apps/v1", "statefulsets")}


def owned_replicasets(deploy: dict[str, Any], replicasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    uid = (deploy.get("metadata") or {}).get("uid")
    return [rs for rs in replicasets
            if any(o.get("controller") and o.get("uid") == uid for o in (rs.get("metadata") or {}).get("ownerReferences") or [])]


def revision_of(obj: dict[str, Any]) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def history_rows(replicasets: list[dict[str, Any]]) -> list[tuple[int, str]]:
    rows = {}
    for rs in replicasets:
        rev = revision_of(rs)
        if rev > 0:
            cause = ((rs.get("metadata") or {}).get("annotations") or {}).get(CHANGE_CAUSE) or "<none>"
            rows[rev] = cause
    return sorted(rows.items())


def _template_without_hash(rs: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    labels = (template.get("metadata") or {}).get("labels") or {}
    labels.pop("pod-template-hash", None)
    return template


def undo_patch(deploy: dict[str, Any], replicasets: list[dict[str, Any]], to_revision: int) -> tuple[list[dict[str, Any]] | None, int]:
    """The JSON patch rolling back to ``to_revision`` (0: the one before the current), and that revision.

    None as the patch means the current template already is that revision's (nothing to do).
    """
    by_rev = {revision_of(rs): rs for rs in replicasets if revision_of(rs) > 0}
    if not by_rev:
        raise CliError("error: no rollout history found for deployment "
                       f'"{(deploy.get("metadata") or {}).get("name", "")}"')
    if to_revision == 0:
        revisions = sorted(by_rev)
        if len(revisions) < 2:
            raise CliError("error: no rollout history found")
        to_revision = revisions[-2]
    target = by_rev.get(to_revision)
    if target is None:
        raise CliError(f"error: unable to find specified revision {to_revision} in history")
    template = _template_without_hash(target)
    if template == (deploy.get("spec") or {}).get("template"):
        return None, to_revision
    annotations = {k: v for k, v in ((deploy.get("metadata") or {}).get("annotations") or {}).items() if k in _SKIP}
    annotations.update({k: v for k, v in ((target.get("metadata") or {}).get("annotations") or {}).items()
                        if k not in _SKIP})
    return [{"op": "replace", "path": "/spec/template", "value": template},
            # "add" also replaces; unlike "replace" it works when the Deployment has no annotations yet.
            {"op": "add", "path": "/metadata/annotations", "value": annotations}], to_revision


# --------------------------------------------------- DaemonSets and StatefulSets: ControllerRevisions
def owned_revisions(owner: dict[str, Any], revisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ControllerRevisions ``owner`` controls (kubectl's controlledHistories)."""
    return owned_replicasets(owner, revisions)


def _revision_number(revision: dict[str, Any]) -> int:
    value = revision.get("revision")
    return int(value) if isinstance(value, int) else 0


def revision_rows(revisions: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """REVISION -> CHANGE-CAUSE, from each revision's ``kubernetes.io/change-cause`` annotation."""
    rows = {}
    for rev in revisions:
        rows[_revision_number(rev)] = ((rev.get("metadata") or {}).get("annotations") or {}).get(CHANGE_CAUSE) \
            or "<none>"
    return sorted(rows.items())


def revision_template(revision: dict[str, Any]) -> dict[str, Any]:
    """The pod template a revision holds (its patch's ``spec.template`` without the directive)."""
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return dict(template)


def revision_undo_patch(owner: dict[str, Any], revisions: list[dict[str, Any]], to_revision: int
                        ) -> tuple[dict[str, Any] | None, int]:
    """kubectl's DaemonSet/StatefulSet rollback: (the strategic merge patch, the revision); None as
    the patch when the current template already is that revision's."""
    ordered = sorted(revisions, key=_revision_number)
    if to_revision == 0:
        if len(ordered) <= 1:
            raise CliError("error: no last revision to roll back to")
        target = ordered[-2]
    else:
        found = [r for r in ordered if _revision_number(r) == to_revision]
        if not found:
            raise CliError(f"error: unable to find specified revision {to_revision} in history")
        target = found[0]
    if revision_template(target) == (owner.get("spec") or {}).get("template"):
        return None, to_revision
    return copy.deepcopy(dict(target.get("data") or {})), _revision_number(target)


def _echo_template(header: str, template: dict[str, Any]) -> None:
    typer.echo(header)
    typer.echo("Pod Template:")
    labels = ",".join(f"{k}={v}" for k, v in sorted(((template.get("metadata") or {}).get("labels") or {}).items()))
    typer.echo(f"  Labels:\t{labels or '<none>'}")
    for c in (template.get("spec") or {}).get("containers") or []:
        typer.echo(f"  Containers:\n   {c.get('name')}:\n    Image:\t{c.get('image')}")


# ------------------------------------------------------------------------------- I/O
async def _workload(session: Session, args: list[str], verb: str) -> tuple[str, str, dict[str, Any]]:
    """(kind, name, object) of ``deploy/NAME``, ``ds/NAME`` or ``sts/NAME``."""
    targets = await parse_targets(session, args, verb=verb)
    if len(targets) != 1 or len(targets[0].names) != 1:
        raise CliError("error: rollout takes exactly one resource: deployment/NAME, daemonset/NAME or "
                       "statefulset/NAME")
    t = targets[0]
    if t.res.kind not in PLURALS:
        raise CliError(f'error: no rollout support for kind "{t.res.kind}"')
    obj = await session.client.get(PLURALS[t.res.kind], t.names[0], namespace=session.namespace)
    return t.res.kind, t.names[0], obj


async def _revisions(session: Session, owner: dict[str, Any]) -> list[dict[str, Any]]:
    listed = await session.client.list(("apps/v1", "controllerrevisions"), namespace=session.namespace)
    return owned_revisions(owner, listed.get("items") or [])


async def _deployment(session: Session, args: list[str], verb: str) -> tuple[str, dict[str, Any]]:
    targets = await parse_targets(session, args, verb=verb)
    if len(targets) != 1 or len(targets[0].names) != 1:
        raise CliError("error: rollout takes exactly one resource: deployment/NAME")
    t = targets[0]
    if t.res.kind != "Deployment":
        raise CliError(f'error: no rollout support for kind "{t.res.kind}" yet: minik8s rolls out Deployments')
    return t.names[0], await session.client.get("deployments", t.names[0], namespace=session.namespace)


async def _replicasets(session: Session, deploy: dict[str, Any]) -> list[dict[str, Any]]:
    listed = await session.client.list("replicasets", namespace=session.namespace)
    return owned_replicasets(deploy, listed.get("items") or [])


@rollout_app.command("status")
def status_command(ctx: typer.Context,
                   args: Annotated[list[str], typer.Argument(help="deployment/NAME, daemonset/NAME or statefulset/NAME")],
                   watch: Annotated[bool, typer.Option("--watch", "-w")] = True,
                   timeout: Annotated[str, typer.Option(
                       "--timeout", help="how long to wait, like kubectl: 0 (forever), 90, 90s, 5m")] = "0") -> None:
    """Show the status of the rollout, waiting until it is done."""
    async def run(s: Session) -> int:
        wait_s = parse_duration(timeout)
        kind, name, deploy = await _workload(s, args, "rollout status")
        plural, viewer = PLURALS[kind], STATUS_VIEWERS[kind]
        deadline = time.monotonic() + wait_s if wait_s else None
        last = ""
        rv = deploy["metadata"].get("resourceVersion")
        while True:
            message, done = viewer(deploy)
            if message != last:
                typer.echo(message)
                last = message
            if done or not watch:
                return 0
            remaining = (deadline - time.monotonic()) if deadline else 30.0
            if remaining <= 0:
                raise CliError("error: timed out waiting for the condition")
            try:
                async with s.client.watch(plural, namespace=s.namespace, name=name, resource_version=rv,
                                          timeout_seconds=max(1, int(min(remaining, 30)))) as events:
                    async for etype, obj in events:
                        if etype == "DELETED":
                            raise CliError(f'error: {kind.lower()} "{name}" was deleted')
                        if etype in ("ADDED", "MODIFIED"):
                            deploy, rv = obj, obj["metadata"].get("resourceVersion")
                            break
            except errors.GoneError:
                deploy = await s.client.get(plural, name, namespace=s.namespace)
                rv = deploy["metadata"].get("resourceVersion")

    run_command(options_of(ctx), run)


@rollout_app.command("history")
def history_command(ctx: typer.Context,
                    args: Annotated[list[str], typer.Argument(help="deployment/NAME, daemonset/NAME or statefulset/NAME")],
                    revision: Annotated[int, typer.Option("--revision")] = 0) -> None:
    """View previous rollout revisions."""
    async def run(s: Session) -> int:
        kind, name, obj = await _workload(s, args, "rollout history")
        if kind != "Deployment":
            return await _revision_history(s, kind, name, obj, revision)
        deploy = obj
        rss = await _replicasets(s, deploy)
        if revision:
            match = [rs for rs in rss if revision_of(rs) == revision]
            if not match:
                raise CliError(f"error: unable to find the specified revision")
            _echo_template(f"deployment.apps/{name} with revision #{revision}", _template_without_hash(match[0]))
            return 0
        typer.echo(f"deployment.apps/{name} ")
        typer.echo("REVISION  CHANGE-CAUSE")
        for rev, cause in history_rows(rss):
            typer.echo(f"{rev:<10}{cause}")
        typer.echo("")
        return 0

    run_command(options_of(ctx), run)


async def _revision_history(s: Session, kind: str, name: str, obj: dict[str, Any], revision: int) -> int:
    """``rollout history`` of a DaemonSet or StatefulSet (kubectl's printHistory)."""
    revisions = await _revisions(s, obj)
    full = f"{kind.lower()}.apps/{name}"
    if not revisions:
        typer.echo(f"{full} \nNo rollout history found.")
        return 0
    if revision:
        match = [r for r in revisions if _revision_number(r) == revision]
        if not match:
            raise CliError("error: unable to find the specified revision")
        _echo_template(f"{full} with revision #{revision}", revision_template(match[0]))
        return 0
    typer.echo(f"{full} ")
    typer.echo("REVISION  CHANGE-CAUSE")
    for rev, cause in revision_rows(revisions):
        typer.echo(f"{rev:<10}{cause}")
    typer.echo("")
    return 0


@rollout_app.command("undo")
def undo_command(ctx: typer.Context,
                 args: Annotated[list[str], typer.Argument(help="deployment/NAME, daemonset/NAME or statefulset/NAME")],
                 to_revision: Annotated[int, typer.Option("--to-revision", help="0: the previous revision")] = 0) -> None:
    """Roll back to a previous rollout."""
    async def run(s: Session) -> int:
        kind, name, deploy = await _workload(s, args, "rollout undo")
        if kind != "Deployment":
            full = f"{kind.lower()}.apps/{name}"
            smp, rev = revision_undo_patch(deploy, await _revisions(s, deploy), to_revision)
            if smp is None:
                typer.echo(f"{full} skipped rollback (current template already matches revision {rev})")
                return 0
            await s.client.patch(PLURALS[kind], name, smp, namespace=s.namespace, patch_type="strategic")
            typer.echo(f"{full} rolled back")
            return 0
        if (deploy.get("spec") or {}).get("paused"):
            raise CliError(f'error: you cannot rollback a paused deployment; resume it first with '
                           f"'mkctl rollout resume deployment/{name}' and try again")
        patch, rev = undo_patch(deploy, await _replicasets(s, deploy), to_revision)
        if patch is None:
            typer.echo(f"deployment.apps/{name} skipped rollback (current template already matches revision {rev})")
            return 0
        await s.client.patch("deployments", name, patch, namespace=s.namespace, patch_type="json")
        typer.echo(f"deployment.apps/{name} rolled back")
        return 0

    run_command(options_of(ctx), run)


def _simple_patch(verb: str, make: Any, done: str, *, every_kind: bool = False) -> None:
    """A verb that merge-patches the object (``every_kind``: Deployments, DaemonSets, StatefulSets)."""
    @rollout_app.command(verb)
    def command(ctx: typer.Context, args: Annotated[list[str], typer.Argument(help="deployment/NAME")]) -> None:
        async def run(s: Session) -> int:
            if every_kind:
                kind, name, obj = await _workload(s, args, f"rollout {verb}")
            else:
                (name, obj), kind = await _deployment(s, args, f"rollout {verb}"), "Deployment"
            await s.client.patch(PLURALS[kind], name, make(obj), namespace=s.namespace, patch_type="merge")
            typer.echo(f"{kind.lower()}.apps/{name} {done}")
            return 0

        run_command(options_of(ctx), run)

    command.__doc__ = f"{verb.title()} a {'workload' if every_kind else 'deployment'}'s rollout."


def _restart(deploy: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}}


_simple_patch("pause", lambda d: {"spec": {"paused": True}}, "paused")
_simple_patch("resume", lambda d: {"spec": {"paused": None}}, "resumed")
_simple_patch("restart", _restart, "restarted", every_kind=True)

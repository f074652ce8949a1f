"""``mkctl rollout status|history|undo|pause|resume|restart`` for Deployments, as kubectl does them.

Data flow: ``deploy/NAME`` -> the Deployment and the ReplicaSets it controls (by ownerReference
uid) -> pure functions decide: ``status_message`` (kubectl's DeploymentStatusViewer wording),
``history_rows`` (revision -> change-cause), ``undo_patch`` (the JSON patch that puts an earlier
ReplicaSet's pod template back, the way kubectl's rollback does it on the client) -> the API.
``status`` watches the Deployment until the message says it rolled out (or a timeout).
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


# ------------------------------------------------------------------------------- I/O
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
                   args: Annotated[list[str], typer.Argument(help="deployment/NAME")],
                   watch: Annotated[bool, typer.Option("--watch", "-w")] = True,
                   timeout: Annotated[str, typer.Option(
                       "--timeout", help="how long to wait, like kubectl: 0 (forever), 90, 90s, 5m")] = "0") -> None:
    """Show the status of the rollout, waiting until it is done."""
    async def run(s: Session) -> int:
        wait_s = parse_duration(timeout)
        name, deploy = await _deployment(s, args, "rollout status")
        deadline = time.monotonic() + wait_s if wait_s else None
        last = ""
        rv = deploy["metadata"].get("resourceVersion")
        while True:
            message, done = status_message(deploy)
            if message != last:
                typer.echo(message)
                last = message
            if done or not watch:
                return 0
            remaining = (deadline - time.monotonic()) if deadline else 30.0
            if remaining <= 0:
                raise CliError("error: timed out waiting for the condition")
            try:
                async with s.client.watch("deployments", namespace=s.namespace, name=name, resource_version=rv,
                                          timeout_seconds=max(1, int(min(remaining, 30)))) as events:
                    async for etype, obj in events:
                        if etype == "DELETED":
                            raise CliError(f'error: deployment "{name}" was deleted')
                        if etype in ("ADDED", "MODIFIED"):
                            deploy, rv = obj, obj["metadata"].get("resourceVersion")
                            break
            except errors.GoneError:
                deploy = await s.client.get("deployments", name, namespace=s.namespace)
                rv = deploy["metadata"].get("resourceVersion")

    run_command(options_of(ctx), run)


@rollout_app.command("history")
def history_command(ctx: typer.Context,
                    args: Annotated[list[str], typer.Argument(help="deployment/NAME")],
                    revision: Annotated[int, typer.Option("--revision")] = 0) -> None:
    """View previous rollout revisions."""
    async def run(s: Session) -> int:
        name, deploy = await _deployment(s, args, "rollout history")
        rss = await _replicasets(s, deploy)
        if revision:
            match = [rs for rs in rss if revision_of(rs) == revision]
            if not match:
                raise CliError(f"error: unable to find the specified revision")
            template = _template_without_hash(match[0])
            typer.echo(f"deployment.apps/{name} with revision #{revision}")
            typer.echo("Pod Template:")
            labels = ",".join(f"{k}={v}" for k, v in sorted(((template.get("metadata") or {}).get("labels") or {}).items()))
            typer.echo(f"  Labels:\t{labels or '<none>'}")
            for c in (template.get("spec") or {}).get("containers") or []:
                typer.echo(f"  Containers:\n   {c.get('name')}:\n    Image:\t{c.get('image')}")
            return 0
        typer.echo(f"deployment.apps/{name} ")
        typer.echo("REVISION  CHANGE-CAUSE")
        for rev, cause in history_rows(rss):
            typer.echo(f"{rev:<10}{cause}")
        typer.echo("")
        return 0

    run_command(options_of(ctx), run)


@rollout_app.command("undo")
def undo_command(ctx: typer.Context,
                 args: Annotated[list[str], typer.Argument(help="deployment/NAME")],
                 to_revision: Annotated[int, typer.Option("--to-revision", help="0: the previous revision")] = 0) -> None:
    """Roll back to a previous rollout."""
    async def run(s: Session) -> int:
        name, deploy = await _deployment(s, args, "rollout undo")
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


def _simple_patch(verb: str, make: Any, done: str) -> None:
    @rollout_app.command(verb)
    def command(ctx: typer.Context, args: Annotated[list[str], typer.Argument(help="deployment/NAME")]) -> None:
        async def run(s: Session) -> int:
            name, deploy = await _deployment(s, args, f"rollout {verb}")
            await s.client.patch("deployments", name, make(deploy), namespace=s.namespace, patch_type="merge")
            typer.echo(f"deployment.apps/{name} {done}")
            return 0

        run_command(options_of(ctx), run)

    command.__doc__ = f"{verb.title()} a deployment's rollout."


def _restart(deploy: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}}


_simple_patch("pause", lambda d: {"spec": {"paused": True}}, "paused")
_simple_patch("resume", lambda d: {"spec": {"paused": None}}, "resumed")
_simple_patch("restart", _restart, "restarted")

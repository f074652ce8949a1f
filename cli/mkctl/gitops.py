"""``mkctl gitops status|sync|suspend|resume|diff NAME``: look at and steer one GitSync.

Data flow per subcommand (the GitSync is read from ``-n`` or the kubeconfig's namespace):
- ``status``: GET the GitSync (and, when it is not Healthy, its inventory's objects, whose health
  ``gitops.health`` judges) -> ``status_text`` (pure) -> stdout; exit 0 exactly when Ready.
- ``sync``: merge patch of the ``gitops.minik8s.io/requestedAt`` annotation (Flux's
  ``reconcile.fluxcd.io/requestedAt``) -> the reconciler fetches at once -> watch the GitSync until
  ``status.lastHandledRequestedAt`` carries our value (the reconciler writes it with the status of
  the run that acted on the request) -> ``sync_outcome`` (pure) -> one line; non-zero on failure.
- ``suspend`` / ``resume``: merge patch of ``spec.suspend`` (resume also requests a sync).
- ``diff``: in ``cli/mkctl/gitopsdiff.py``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Mapping, Sequence

import typer

from gitops import health as gitops_health
from gitops.crd import GROUP, KIND, RESOURCE
from gitops.plan import Entry, ObjKey, inventory_of
from gitops.spec import SpecError, SyncSpec, parse
from machinery import errors
from machinery.client import ApiResource
from machinery.discovery import UnknownResourceType, discover, for_kind
from machinery.timefmt import age_since

from .app import app, options_of
from .printing import tabwrite
from .session import CliError, Session, parse_duration, run_command

# gitops.reconciler.ANNOTATION_REQUESTED (tests check they agree): that module is not imported, it
# brings the whole controller runtime for one string.
ANNOTATION_REQUESTED = "gitops.minik8s.io/requestedAt"
# Written by the reconciler with the status of the run that acted on a request (gitops.status).
STATUS_HANDLED = "lastHandledRequestedAt"
TYPE_NAME = f"{KIND.lower()}.{GROUP}"  # gitsync.gitops.minik8s.io, as kubectl names the type
_GET_CONCURRENCY = 16

gitops_app = typer.Typer(help="Inspect and steer GitSync objects (gitops.minik8s.io/v1), like flux.",
                         no_args_is_help=True)
app.add_typer(gitops_app, name="gitops")


# ------------------------------------------------------------------------------- pure: status
def requested_at(now_ns: int | None = None) -> str:
    """RFC 3339 with nanoseconds (Go's RFC3339Nano, what Flux writes): two requests in the same
    second still differ, and only a new value makes the reconciler fetch."""
    ns = time.time_ns() if now_ns is None else now_ns
    seconds, frac = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    return f"{stamp}.{digits}Z" if digits else f"{stamp}Z"


def short_revision(revision: str) -> str:
    """``main@sha1:<40 hex>`` -> ``main@sha1:abc1234``."""
    head, sep, sha = revision.rpartition(":")
    return f"{head}{sep}{sha[:7]}" if sep else revision[:7]


def condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == type_:
            return c
    return {}


def is_ready(obj: Mapping[str, Any]) -> bool:
    return condition(obj, "Ready").get("status") == "True"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\t", " ").replace("\n", " ") or "-"


def _seconds(value: Any) -> str:
    try:
        return f"{float(value):.2f}s"
    except (TypeError, ValueError):
        return "-"


@dataclass(frozen=True)
class Unhealthy:
    """One inventory object that is not Healthy (``state`` Progressing, Failed or Missing)."""

    what: str
    state: str
    message: str


def status_text(obj: Mapping[str, Any], *, now: datetime, unhealthy: Sequence[Unhealthy] = ()) -> str:
    """The readable summary of one GitSync, tables aligned like kubectl describe's."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    try:
        parsed: SyncSpec | None = parse(obj)
        spec_error = ""
    except SpecError as e:
        parsed, spec_error = None, str(e)
    ref = parsed.ref.describe() if parsed else str(spec.get("ref") or "")
    lines = [f"Name:\t{meta.get('name', '')}",
             f"Namespace:\t{meta.get('namespace', '')}",
             f"URL:\t{spec.get('url', '')}",
             f"Ref:\t{ref}",
             f"Path:\t{spec.get('path') or '.'}",
             f"Interval:\t{spec.get('interval') or '15s'}",
             f"Prune:\t{'true' if spec.get('prune', True) else 'false'}",
             f"Self-heal:\t{'true' if spec.get('selfHeal', True) else 'false'}",
             f"Suspended:\t{'true' if spec.get('suspend') else 'false'}"]
    if spec.get("targetNamespace"):
        lines.append(f"Target namespace:\t{spec['targetNamespace']}")
    if spec_error:
        lines.append(f"Spec error:\t{spec_error}")
    lines += [f"Fetched revision:\t{status.get('fetchedRevision') or '<none>'}",
              f"Applied revision:\t{status.get('lastAppliedRevision') or '<none>'}",
              f"Attempted revision:\t{status.get('lastAttemptedRevision') or '<none>'}"]
    text = tabwrite("\n".join(lines) + "\n")

    conditions = [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]
    text += "Conditions:\n"
    if conditions:
        rows = ["  TYPE\tSTATUS\tREASON\tAGE\tMESSAGE"]
        rows += [f"  {_cell(c.get('type'))}\t{_cell(c.get('status'))}\t{_cell(c.get('reason'))}\t"
                 f"{age_since(c.get('lastTransitionTime'), now)}\t{_cell(c.get('message'))}" for c in conditions]
        text += tabwrite("\n".join(rows) + "\n")
    else:
        text += "  <none>: not reconciled yet (is minik8s gitops running?)\n"

    failures = [e for e in status.get("errors") or [] if isinstance(e, Mapping)]
    if failures:
        text += f"Errors ({len(failures)}):\n"
        rows = ["  FILE\tDOCUMENT\tKIND\tNAME\tMESSAGE"]
        rows += [f"  {_cell(e.get('file'))}\t{_cell(e.get('document'))}\t{_cell(e.get('kind'))}\t"
                 f"{_cell(e.get('name'))}\t{_cell(e.get('message'))}" for e in failures]
        text += tabwrite("\n".join(rows) + "\n")

    drift = [str(d) for d in status.get("drift") or []]
    if drift:
        text += f"Drift (not corrected, self-heal is off): {len(drift)}\n"
        text += "".join(f"  {d}\n" for d in drift)

    inventory = inventory_of(status)
    text += f"Inventory: {len(inventory)} object{'' if len(inventory) == 1 else 's'}\n"
    if unhealthy:
        text += f"Not healthy ({len(unhealthy)}):\n"
        rows = ["  OBJECT\tSTATE\tMESSAGE"]
        rows += [f"  {u.what}\t{u.state}\t{_cell(u.message)}" for u in unhealthy]
        text += tabwrite("\n".join(rows) + "\n")

    runs = [r for r in status.get("history") or [] if isinstance(r, Mapping)]
    text += "Last runs:\n"
    if runs:
        rows = ["  REVISION\tRESULT\tDURATION\tWRITES\tAGE\tMESSAGE"]
        rows += [f"  {short_revision(str(r.get('revision') or '')) or '-'}\t{_cell(r.get('result'))}\t"
                 f"{_seconds(r.get('durationSeconds'))}\t{_cell(r.get('writes'))}\t"
                 f"{age_since(r.get('startedAt'), now)}\t{_cell(r.get('message'))}" for r in runs]
        text += tabwrite("\n".join(rows) + "\n")
    else:
        text += "  <none>\n"
    return text


# ------------------------------------------------------------------------------- pure: sync
def request_handled(obj: Mapping[str, Any], requested: str) -> bool:
    return str((obj.get("status") or {}).get(STATUS_HANDLED) or "") == requested


def sync_outcome(obj: Mapping[str, Any]) -> tuple[bool, str]:
    """(succeeded, what happened) of the reconcile that handled a sync request."""
    status = obj.get("status") or {}
    source = condition(obj, "SourceReady")
    if source.get("status") != "True":
        return False, f"fetch failed: {source.get('message') or source.get('reason') or 'unknown'}"
    fetched = str(status.get("fetchedRevision") or "")
    applied = str(status.get("lastAppliedRevision") or "")
    if fetched and applied == fetched:
        return True, f"applied revision {short_revision(applied)}"
    result = condition(obj, "Applied")
    if result.get("status") == "False":
        return False, f"{result.get('reason')}: {result.get('message')}"
    return False, f"revision {short_revision(fetched) or '<none>'} is not applied yet"


def health_note(obj: Mapping[str, Any]) -> str | None:
    """A line on the applied objects' health when they are not Healthy (yet)."""
    c = condition(obj, "Healthy")
    if not c or c.get("status") == "True":
        return None
    return f"health: {c.get('status')} ({c.get('reason')}): {c.get('message')}"


# ------------------------------------------------------------------------------- I/O helpers
async def _get_sync(s: Session, name: str) -> dict[str, Any]:
    return await s.client.get(RESOURCE, name, namespace=s.namespace)


async def _get_or_none(s: Session, res: ApiResource, key: ObjKey) -> dict[str, Any] | None:
    try:
        return await s.client.get(res, key.name, namespace=key.namespace or None)
    except errors.NotFoundError:
        return None


async def _bounded(jobs: Sequence[Any]) -> list[Any]:
    gate = asyncio.Semaphore(_GET_CONCURRENCY)

    async def run(job: Any) -> Any:
        async with gate:
            return await job

    return list(await asyncio.gather(*(run(j) for j in jobs)))


async def _unhealthy(s: Session, obj: Mapping[str, Any]) -> list[Unhealthy]:
    """The inventory's objects that are not Healthy, read only when the Healthy condition is not
    True (a Ready GitSync costs one GET)."""
    if condition(obj, "Healthy").get("status") == "True":
        return []
    entries = list(inventory_of(obj.get("status")).values())
    if not entries:
        return []
    infos = await discover(s.client, all_versions=True)
    keyed: list[tuple[Entry, ApiResource]] = []
    for e in entries:
        try:
            keyed.append((e, for_kind(infos, e.api_version, e.kind).api_resource))
        except UnknownResourceType:
            continue
    lives = await _bounded([_get_or_none(s, res, e.key) for e, res in keyed])
    out = []
    for (e, _), live in zip(keyed, lives):
        if live is None:
            out.append(Unhealthy(str(e.key), "Missing", "the object does not exist"))
            continue
        state, message = gitops_health.health(live)
        if state != gitops_health.HEALTHY:
            out.append(Unhealthy(str(e.key), state, message))
    return out


async def _wait_handled(s: Session, name: str, requested: str, rv: str, timeout: float) -> dict[str, Any]:
    """Watch the GitSync until the reconciler recorded our request as handled."""
    deadline = time.monotonic() + timeout

    async def watch() -> dict[str, Any]:
        nonlocal rv
        while True:
            try:
                async with s.client.watch(RESOURCE, namespace=s.namespace, name=name, resource_version=rv,
                                          timeout_seconds=30) as events:
                    async for etype, obj in events:
                        if etype == "DELETED":
                            raise CliError(f"error: {TYPE_NAME}/{name} was deleted")
                        if etype in ("ADDED", "MODIFIED"):
                            rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                            if request_handled(obj, requested):
                                return dict(obj)
            except errors.GoneError:
                obj = await _get_sync(s, name)
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                if request_handled(obj, requested):
                    return obj

    try:
        return await asyncio.wait_for(watch(), max(0.1, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        raise CliError(f"error: timed out after {timeout:g}s waiting for {TYPE_NAME}/{name} to handle the sync "
                       f"request (is minik8s gitops running?)") from None


async def _request_sync(s: Session, name: str, *, extra: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """Set the requestedAt annotation (one merge patch); returns (value, resourceVersion after)."""
    value = requested_at()
    body: dict[str, Any] = {"metadata": {"annotations": {ANNOTATION_REQUESTED: value}}, **(extra or {})}
    after = await s.client.patch(RESOURCE, name, body, namespace=s.namespace, patch_type="merge")
    return value, str((after.get("metadata") or {}).get("resourceVersion") or "")


async def _report_sync(s: Session, name: str, requested: str, rv: str, timeout: float) -> int:
    obj = await _wait_handled(s, name, requested, rv, timeout)
    ok, message = sync_outcome(obj)
    if not ok:
        raise CliError(f"error: {TYPE_NAME}/{name} sync failed: {message}")
    typer.echo(f"{TYPE_NAME}/{name} synced: {message}")
    note = health_note(obj)
    if note:
        typer.echo(note)
    return 0


# ------------------------------------------------------------------------------- commands
_NAME = Annotated[str, typer.Argument(help="The GitSync's name.", show_default=False)]


_STATUS_HELP = (
    "Show a GitSync: source, revisions, conditions, errors, drift, inventory and the last runs.\n\n"
    "Exits 0 when the GitSync is Ready, 1 otherwise (not reconciled yet, failing, unhealthy or suspended), so "
    "scripts can test it; unlike `kubectl rollout status` it does not wait: `mkctl gitops sync` does.")


@gitops_app.command("status", help=_STATUS_HELP)
def status_command(ctx: typer.Context, name: _NAME) -> None:
    async def run(s: Session) -> int:
        obj = await _get_sync(s, name)
        unhealthy = await _unhealthy(s, obj)
        typer.echo(status_text(obj, now=datetime.now(timezone.utc), unhealthy=unhealthy), nl=False)
        return 0 if is_ready(obj) else 1

    run_command(options_of(ctx), run)


_SYNC_HELP = (
    "Fetch the GitSync's ref and reconcile now, like `flux reconcile`.\n\n"
    "Sets the annotation gitops.minik8s.io/requestedAt; the reconciler fetches at once and records the value "
    "in status.lastHandledRequestedAt together with the outcome. With --wait (the default) prints the applied "
    "revision and exits 0, or prints why the fetch or the apply failed and exits 1.")


@gitops_app.command("sync", help=_SYNC_HELP)
def sync_command(ctx: typer.Context, name: _NAME,
                 wait: Annotated[bool, typer.Option(
                     "--wait/--no-wait", help="Wait until the reconciler has fetched and applied.")] = True,
                 timeout: Annotated[str, typer.Option(
                     "--timeout", help="How long --wait waits: 90s, 5m, ...")] = "5m") -> None:
    async def run(s: Session) -> int:
        wait_s = parse_duration(timeout) or 300.0
        obj = await _get_sync(s, name)
        try:
            spec = parse(obj)
        except SpecError as e:
            raise CliError(f"error: {TYPE_NAME}/{name} has an invalid spec: {e}") from None
        if spec.suspend:
            raise CliError(f"error: {TYPE_NAME}/{name} is suspended: resume it with 'mkctl gitops resume {name}'")
        requested, rv = await _request_sync(s, name)
        if not wait:
            typer.echo(f"{TYPE_NAME}/{name} sync requested")
            return 0
        return await _report_sync(s, name, requested, rv, wait_s)

    run_command(options_of(ctx), run)


@gitops_app.command("suspend")
def suspend_command(ctx: typer.Context, name: _NAME) -> None:
    """Stop reconciling a GitSync (spec.suspend: true): no fetch, no apply, no drift correction."""
    async def run(s: Session) -> int:
        await s.client.patch(RESOURCE, name, {"spec": {"suspend": True}}, namespace=s.namespace, patch_type="merge")
        typer.echo(f"{TYPE_NAME}/{name} suspended")
        return 0

    run_command(options_of(ctx), run)


@gitops_app.command("resume")
def resume_command(ctx: typer.Context, name: _NAME,
                   wait: Annotated[bool, typer.Option(
                       "--wait/--no-wait", help="Wait for the reconcile, as `mkctl gitops sync` does.")] = False,
                   timeout: Annotated[str, typer.Option("--timeout", help="How long --wait waits.")] = "5m") -> None:
    """Reconcile a suspended GitSync again (spec.suspend: false) and request a sync at once."""
    async def run(s: Session) -> int:
        requested, rv = await _request_sync(s, name, extra={"spec": {"suspend": False}})
        typer.echo(f"{TYPE_NAME}/{name} resumed")
        if wait:
            return await _report_sync(s, name, requested, rv, parse_duration(timeout) or 300.0)
        return 0

    run_command(options_of(ctx), run)


# The diff subcommand registers itself on gitops_app (cli/mkctl/gitopsdiff.py).
from . import gitopsdiff  # noqa: E402,F401

__all__ = ["ANNOTATION_REQUESTED", "STATUS_HANDLED", "Unhealthy", "gitops_app", "health_note", "is_ready",
           "request_handled", "requested_at", "short_revision", "status_text", "sync_outcome"]

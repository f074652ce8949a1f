"""``mkctl gitops status|sync|suspend|resume|diff NAME``: look at and steer one GitSync.

Data flow per subcommand (the GitSync is read from ``-n`` or the kubeconfig's namespace):
- ``status``: GET the GitSync (and, when it is not Healthy, its inventory's objects, whose health
  ``gitops.health`` judges) -> ``status_text`` (pure) -> stdout; exit 0 exactly when Ready.
- ``sync``: merge patch of the ``gitops.minik8s.io/requestedAt`` annotation (Flux's
  ``reconcile.fluxcd.io/requestedAt``) -> the reconciler fetches at once -> watch the GitSync until
  ``status.lastHandledRequestedAt`` carries our value (the reconciler writes it with the status of
  the run that acted on the request) -> ``sync_outcome`` (pure) -> one line; non-zero on failure.
- ``suspend`` / ``resume``: merge patch of ``spec.suspend`` (resume also requests a sync).
- ``diff``: the same engine as the reconciler, and no write: ``spec.parse`` -> ``revision.Source``
  fetches and builds the ref into a local mirror (``--cache-dir``) -> ``resolve.resolve_objects``
  over discovery -> GET of each desired and inventory object -> ``plan.plan`` -> for each object to
  write, a unified diff of the live object against what server-side apply would make of it
  (``machinery.managedfields.apply``, the apiserver's own engine, run locally), server-set fields
  left out -> ``create N / update N / prune N``; exit 0 (nothing to write), 1 (changes), 2 (error).
"""

from __future__ import annotations

import asyncio
import copy
import difflib
import fcntl
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Iterator, Mapping, Sequence

import typer

from gitops import health as gitops_health
from gitops.crd import GROUP, KIND, RESOURCE
from gitops.git import Mirrors
from gitops.plan import FIELD_MANAGER, Desired, Entry, ObjKey, Plan, inventory_of, plan
from gitops.resolve import Resolved, resolve_objects
from gitops.revision import Revision, Source, SourceError
from gitops.spec import SpecError, SyncSpec, parse
from machinery import errors, managedfields
from machinery.client import ApiResource
from machinery.discovery import ResourceInfo, UnknownResourceType, discover, for_kind
from machinery.timefmt import age_since

from .app import app, options_of
from .printing import tabwrite, to_yaml
from .session import CliError, GlobalOptions, Session, parse_duration, print_error, run_command

# gitops.reconciler.ANNOTATION_REQUESTED (tests check they agree): that module is not imported, it
# brings the whole controller runtime for one string.
ANNOTATION_REQUESTED = "gitops.minik8s.io/requestedAt"
# Written by the reconciler with the status of the run that acted on a request (gitops.status).
STATUS_HANDLED = "lastHandledRequestedAt"
TYPE_NAME = f"{KIND.lower()}.{GROUP}"  # gitsync.gitops.minik8s.io, as kubectl names the type
# Fields the API server sets, never Git: left out of diffs (kubectl diff hides the same).
_SERVER_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink")
_GET_CONCURRENCY = 16
# Failed reasons whose revision the reconciler does not retry until the revision or the spec changes.
_PERMANENT = ("ValidationFailed", "UnsafeContent", "PruneBlocked")

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


# ------------------------------------------------------------------------------- pure: diff
def strip_server_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy without what the API server sets (and ``status``): what a diff should show."""
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for name in _SERVER_METADATA:
            meta.pop(name, None)
    return out


def object_path(key: ObjKey) -> str:
    kind = f"{key.kind}.{key.group}" if key.group else key.kind
    return f"{kind}/{key.namespace}/{key.name}" if key.namespace else f"{kind}/{key.name}"


def unified(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, *, key: ObjKey,
            revision: str) -> str:
    """``diff -u`` of two objects as YAML; a missing side is /dev/null."""
    a = to_yaml(strip_server_fields(before)).splitlines(keepends=True) if before is not None else []
    b = to_yaml(strip_server_fields(after)).splitlines(keepends=True) if after is not None else []
    path = object_path(key)
    lines = difflib.unified_diff(a, b, fromfile=f"live/{path}" if before is not None else "/dev/null",
                                 tofile=f"{revision}/{path}" if after is not None else "/dev/null", n=3)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


@dataclass
class DiffReport:
    """What ``diff`` prints after the per-object diffs; ``writes`` decides the exit code."""

    create: list[ObjKey] = field(default_factory=list)
    update: list[tuple[ObjKey, str]] = field(default_factory=list)
    prune: list[ObjKey] = field(default_factory=list)
    reported: list[tuple[ObjKey, str]] = field(default_factory=list)  # drift the reconciler leaves alone

    @property
    def writes(self) -> int:
        return len(self.create) + len(self.update) + len(self.prune)

    def summary(self) -> str:
        out = f"create {len(self.create)} / update {len(self.update)} / prune {len(self.prune)}\n"
        out += "".join(f"create: {k}\n" for k in self.create)
        out += "".join(f"update: {k} ({why})\n" for k, why in self.update)
        out += "".join(f"prune: {k}\n" for k in self.prune)
        out += "".join(f"not corrected: {k} ({why}; spec.selfHeal is false)\n" for k, why in self.reported)
        return out


def report_of(the_plan: Plan, *, enforce_only: bool, self_heal: bool) -> DiffReport:
    """Which of the plan's actions the next reconcile performs. On the applied revision it only
    enforces (``Reconciler._enforce``): with self-heal off it reports and writes nothing."""
    out = DiffReport()
    for d, reason in the_plan.apply:
        if enforce_only and not self_heal:
            out.reported.append((d.key, reason))
        elif reason == "create":
            out.create.append(d.key)
        else:
            out.update.append((d.key, reason))
    out.prune = [e.key for e in the_plan.prune]
    return out


def merged_object(live: Mapping[str, Any], desired: Desired, schema: Any) -> dict[str, Any]:
    """What the server makes of ``live`` when the reconciler applies ``desired`` (force, its field
    manager): the apiserver's own server-side apply engine, run here without a request."""
    try:
        merged, _ = managedfields.apply(live, desired.obj, manager=FIELD_MANAGER,
                                        api_version=str(desired.obj.get("apiVersion") or ""), schema=schema,
                                        force=True)
        return dict(merged)
    except (errors.ApiError, ValueError, TypeError, KeyError):
        # An object the engine cannot type: show Git's body over the live metadata instead.
        return {**dict(live), **{k: v for k, v in desired.obj.items() if k != "metadata"},
                "metadata": {**dict(live.get("metadata") or {}), **dict(desired.obj.get("metadata") or {})}}


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "minik8s" / "gitops"


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


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One mkctl at a time per cache: git mirrors serialize only within one process."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(root / ".mkctl.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class DiffError(Exception):
    """The revision cannot be applied as it is: the lines say why (exit 2)."""

    def __init__(self, headline: str, details: Sequence[str] = ()) -> None:
        super().__init__(headline)
        self.details = list(details)


async def _desired(s: Session, obj: Mapping[str, Any], spec: SyncSpec, cache: Path) -> tuple[
        Revision, Resolved, list[ResourceInfo], str | None]:
    """The revision the reconciler would fetch, built and resolved the same way."""
    meta = obj.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or s.namespace), str(meta.get("name") or "")
    source = Source(Mirrors(cache, default_timeout=spec.timeout))
    try:
        with _locked(cache):
            rev = await source.fetch(s.client, namespace, spec)
            built = await source.build(rev, spec)
    except SourceError as e:
        raise DiffError(f"cannot read the source: {e}") from None
    infos = await discover(s.client, all_versions=True)
    resolved = resolve_objects(infos, built.objects, spec=spec, namespace=namespace, name=name)
    failures = sorted([*built.failures, *resolved.failures], key=lambda f: (f.file, f.document or 0))
    if failures:
        raise DiffError(f"revision {rev.name} is invalid: {len(failures)} error(s), the reconciler applies "
                        f"none of it", [str(f) for f in failures])
    return rev, resolved, infos, built.missing_path


async def _diff(s: Session, name: str, cache: Path) -> int:
    obj = await _get_sync(s, name)
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    try:
        spec = parse(obj)
    except SpecError as e:
        raise DiffError(f"invalid spec: {e}") from None
    rev, resolved, infos, missing_path = await _desired(s, obj, spec, cache)
    inventory = inventory_of(status)
    desired = resolved.desired
    # The reconciler's own refusals (Reconciler._new_revision), in its order.
    if not desired and inventory and spec.prune and not spec.allow_empty:
        raise DiffError(f"PruneBlocked: revision {rev.name} has no objects under '{spec.path or '.'}': pruning all "
                        f"{len(inventory)} objects is blocked (set spec.allowEmpty to allow it)")
    if missing_path and not inventory and not spec.allow_empty:
        raise DiffError(f"ValidationFailed: {missing_path}")
    applied = condition(obj, "Applied")
    if (status.get("lastAttemptedRevision") == rev.name and status.get("lastAppliedRevision") != rev.name
            and applied.get("status") == "False" and applied.get("reason") in _PERMANENT
            and applied.get("observedGeneration") == meta.get("generation")):
        # Rejected by the server's dry run, which diff does not repeat (it makes no request
        # but GETs): the reconciler does not try this revision again.
        raise DiffError(f"{applied.get('reason')}: {applied.get('message')}",
                        [f"{f.get('file')}: {f.get('kind')} {f.get('name')}: {f.get('message')}"
                         for f in status.get("errors") or [] if isinstance(f, Mapping)])

    enforce_only = status.get("lastAppliedRevision") == rev.name
    keys: list[tuple[ObjKey, ApiResource]] = [(d.key, resolved.resources[d.key]) for d in desired
                                              if d.key not in resolved.deferred]
    wanted = {d.key for d in desired}
    for k, entry in inventory.items():
        if k in wanted:
            continue
        try:
            keys.append((k, for_kind(infos, entry.api_version, entry.kind).api_resource))
        except UnknownResourceType:
            continue  # the reconciler cannot find it either: it is not pruned
    lives = await _bounded([_get_or_none(s, res, k) for k, res in keys])
    live: dict[ObjKey, Mapping[str, Any] | None] = dict(zip([k for k, _ in keys], lives))
    the_plan = plan(desired, live, inventory, sync_namespace=str(meta.get("namespace") or s.namespace),
                    sync_name=name, prune=spec.prune and not enforce_only, allow_empty=spec.allow_empty)
    report = report_of(the_plan, enforce_only=enforce_only, self_heal=spec.self_heal)

    label = short_revision(rev.name)
    for d, reason in the_plan.apply:
        before = live.get(d.key)
        typer.echo(f"# {d.key}: {reason} ({d.file})")
        if before is None:
            typer.echo(unified(None, d.obj, key=d.key, revision=label), nl=False)
            continue
        res_info = _info(infos, d)
        schema = (await s.patch_schema(res_info))[0] if res_info is not None else None
        text = unified(before, merged_object(before, d, schema), key=d.key, revision=label)
        if not text:
            text = ("  (no value differs: the fields this GitSync owns were taken over by another field "
                    "manager, or the object was re-created; the apply takes them back)\n")
        typer.echo(text, nl=False)
    for gone in the_plan.prune:
        typer.echo(f"# {gone.key}: prune (no longer in Git)")
        typer.echo(unified(live.get(gone.key), None, key=gone.key, revision=label), nl=False)
    typer.echo(f"revision {rev.name}: ", nl=False)
    typer.echo(report.summary(), nl=False)
    return 1 if report.writes else 0


def _info(infos: Sequence[ResourceInfo], d: Desired) -> ResourceInfo | None:
    try:
        return for_kind(infos, str(d.obj.get("apiVersion") or ""), d.key.kind)
    except UnknownResourceType:
        return None


_DIFF_HELP = (
    "Show what the next reconcile of a GitSync would write, and write nothing.\n\n"
    "Fetches the GitSync's ref, builds and resolves it with the reconciler's engine and compares it with the "
    "live objects (GET requests only): per object a unified diff of the live object against the result of the "
    "apply, without server-set fields, then `create N / update N / prune N` and the names. A suspended GitSync "
    "is compared as if it were resumed.\n\n"
    "Exits 0 when the next reconcile would write nothing, 1 when it would create, update or prune something, "
    "2 on an error (an invalid revision, a failed fetch, no such GitSync).")


@gitops_app.command("diff", help=_DIFF_HELP)
def diff_command(ctx: typer.Context, name: _NAME,
                 cache_dir: Annotated[str, typer.Option(
                     "--cache-dir", help="Where the Git mirrors are kept (default: $XDG_CACHE_HOME/minik8s/gitops or "
                                         "~/.cache/minik8s/gitops).")] = "",
                 ) -> None:
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    opts: GlobalOptions = options_of(ctx)
    finished = False

    async def run(s: Session) -> int:
        nonlocal finished
        try:
            code = await _diff(s, name, cache)
        except DiffError as e:
            print_error(CliError(f"error: {e}"), server=s.config.server)
            for line in e.details:
                typer.echo(f"  {line}", err=True)
            code = 2
        except (errors.ApiError, CliError, OSError) as e:
            print_error(e, server=s.config.server)
            code = 2
        finished = True
        return code

    try:
        run_command(opts, run)
    except typer.Exit as e:
        # Errors before the command ran (kubeconfig, connection) exit 1 in run_command: 2 here.
        if not finished and e.exit_code == 1:
            raise typer.Exit(2) from None
        raise


__all__ = ["ANNOTATION_REQUESTED", "DiffReport", "STATUS_HANDLED", "Unhealthy", "default_cache_dir", "gitops_app",
           "health_note", "is_ready", "merged_object", "report_of", "request_handled", "requested_at",
           "short_revision", "status_text", "strip_server_fields", "sync_outcome", "unified"]

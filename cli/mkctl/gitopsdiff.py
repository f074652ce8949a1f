"""``mkctl gitops diff NAME``: what the next reconcile of a GitSync would write, with no write.

Data flow: the same engine as the reconciler: ``spec.parse`` -> ``revision.Source`` fetches and
builds the ref into a local mirror (``--cache-dir``) -> ``resolve.resolve_objects`` over discovery
-> GET of each desired and inventory object -> ``plan.plan`` -> for each object to write, a unified
diff of the live object against what server-side apply would make of it
(``machinery.managedfields.apply``, the apiserver's own engine, run locally), server-set fields
left out -> ``create N / update N / prune N``; exit 0 (nothing to write), 1 (changes), 2 (error).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Iterator, Mapping, Sequence

import typer

from gitops.diff import strip_server_fields
from gitops.diff import unified as unified_text
from gitops.git import Mirrors
from gitops.plan import FIELD_MANAGER, Desired, ObjKey, Plan, inventory_of, plan
from gitops.resolve import Resolved, resolve_objects
from gitops.revision import Revision, Source, SourceError
from gitops.spec import SpecError, SyncSpec, parse
from machinery import errors, managedfields
from machinery.client import ApiResource
from machinery.discovery import ResourceInfo, UnknownResourceType, discover, for_kind

from .app import options_of
from .gitops import _NAME, _bounded, _get_or_none, _get_sync, condition, gitops_app, short_revision
from .printing import to_yaml
from .session import CliError, GlobalOptions, Session, print_error, run_command

# Failed reasons whose revision the reconciler does not retry until the revision or the spec changes.
_PERMANENT = ("ValidationFailed", "UnsafeContent", "PruneBlocked")


def unified(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, *, key: ObjKey,
            revision: str) -> str:
    """``diff -u`` of two objects as YAML in kubectl's style (gitops.diff, with mkctl's YAML)."""
    return unified_text(before, after, key=key, revision=revision, dump=to_yaml)


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


__all__ = ["DiffReport", "default_cache_dir", "merged_object", "report_of", "strip_server_fields", "unified"]

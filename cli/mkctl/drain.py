"""``mkctl cordon | uncordon | drain``: kubectl's node maintenance verbs, with kubectl's output.

After staging/src/k8s.io/kubectl/pkg/cmd/drain and pkg/drain. Data flow:

- cordon / uncordon: GET the node -> a strategic merge patch of ``spec.unschedulable`` (only
  when it changes) -> ``node/NAME cordoned`` / ``already cordoned`` / ``uncordoned``;
- drain: cordon -> the node's pods (``fieldSelector=spec.nodeName=NAME``) -> kubectl's filters
  (``pod_filter``: pods deleted long ago skipped, DaemonSet pods refused or ignored with
  ``--ignore-daemonsets``, mirror pods skipped, emptyDir pods refused without
  ``--delete-emptydir-data``, pods without a controller refused without ``--force``; finished pods
  always go) -> each pod evicted concurrently through ``pods/{name}/eviction`` (a 429 is retried
  every 5 s until the PodDisruptionBudget allows it, printing kubectl's retry line), then
  waited for until it is gone -> ``pod/NAME evicted`` -> ``node/NAME drained``. ``--timeout``
  bounds the whole drain; ``--disable-eviction`` deletes instead of evicting.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from machinery import errors
from machinery.timefmt import parse_duration, parse_time

from .app import app, options_of
from .session import CliError, Session, run_command

Obj = dict[str, Any]
NODES = ("v1", "nodes")
PODS = ("v1", "pods")
DAEMON_SETS = ("apps/v1", "daemonsets")
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
RETRY_SECONDS = 5.0
POLL_SECONDS = 1.0

DAEMON_SET_FATAL = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
DAEMON_SET_WARNING = "ignoring DaemonSet-managed Pods"
LOCAL_STORAGE_FATAL = "Pods with local storage (use --delete-emptydir-data to override)"
LOCAL_STORAGE_WARNING = "deleting Pods with local storage"
UNMANAGED_FATAL = "cannot delete Pods that declare no controller (use --force to override)"
UNMANAGED_WARNING = "deleting Pods that declare no controller"


@dataclass(frozen=True)
class DrainOptions:
    force: bool = False
    ignore_daemonsets: bool = False
    delete_emptydir_data: bool = False
    grace_period: int = -1
    timeout: float = 0.0  # 0: no limit
    pod_selector: str = ""
    disable_eviction: bool = False
    skip_wait_for_delete_timeout: int = 0
    dry_run: str = "none"  # none, client (print only) or server (the API's dryRun)


DRY_RUN_SUFFIX = {"none": "", "client": " (dry run)", "server": " (server dry run)"}


@dataclass(frozen=True)
class Verdict:
    """PodDeleteStatus: whether to delete the pod, and a warning or error message."""

    delete: bool
    kind: str = "Okay"  # Okay, Skip, Warning, Error
    message: str = ""


def go_duration(seconds: float) -> str:
    """time.Duration.String() for the whole seconds and milliseconds kubectl prints."""
    if seconds < 1:
        return f"{int(round(seconds * 1000))}ms" if seconds else "0s"
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _controller(pod: Obj) -> Obj | None:
    return next((r for r in (pod.get("metadata") or {}).get("ownerReferences") or [] if r.get("controller")), None)


def _finished(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def pod_filter(pod: Obj, opts: DrainOptions, *, daemon_set_error: str | None, now: float) -> Verdict:
    """kubectl's filters in their order; the first that does not delete decides (``daemon_set_error``:
    the error of reading the pod's DaemonSet, "" when it exists, None when not DaemonSet-managed)."""
    meta = pod.get("metadata") or {}
    deleted = meta.get("deletionTimestamp")
    if opts.skip_wait_for_delete_timeout > 0 and deleted:
        when = parse_time(deleted)
        if when is not None and now - when.timestamp() > opts.skip_wait_for_delete_timeout:
            return Verdict(False, "Skip")
    warning: Verdict | None = None
    if daemon_set_error is not None and not _finished(pod):
        if daemon_set_error:
            if opts.force and "not found" in daemon_set_error:
                warning = Verdict(True, "Warning", daemon_set_error)
            else:
                return Verdict(False, "Error", daemon_set_error)
        elif not opts.ignore_daemonsets:
            return Verdict(False, "Error", DAEMON_SET_FATAL)
        else:
            return Verdict(False, "Warning", DAEMON_SET_WARNING)
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return Verdict(False, "Skip")
    if any("emptyDir" in v for v in (pod.get("spec") or {}).get("volumes") or []) and not _finished(pod):
        if not opts.delete_emptydir_data:
            return Verdict(False, "Error", LOCAL_STORAGE_FATAL)
        warning = Verdict(True, "Warning", LOCAL_STORAGE_WARNING)
    if not _finished(pod) and _controller(pod) is None:
        if not opts.force:
            return Verdict(False, "Error", UNMANAGED_FATAL)
        warning = Verdict(True, "Warning", UNMANAGED_WARNING)
    return warning or Verdict(True)


def _grouped(items: list[tuple[Obj, Verdict]], kind: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pod, verdict in items:
        if verdict.kind == kind:
            meta = pod.get("metadata") or {}
            out.setdefault(verdict.message or "unexpected error", []).append(f"{meta.get('namespace')}/{meta.get('name')}")
    return out


# ---------------------------------------------------------------------------- cordon
async def set_unschedulable(s: Session, name: str, desired: bool, *, dry_run: str = "none") -> str:
    node = await s.client.get(NODES, name)
    verb = "cordoned" if desired else "uncordoned"
    suffix = DRY_RUN_SUFFIX[dry_run]
    if bool((node.get("spec") or {}).get("unschedulable")) == desired:
        return f"node/{name} already {verb}{suffix}"
    if dry_run != "client":
        await s.client.patch(NODES, name, {"spec": {"unschedulable": True if desired else None}},
                             patch_type="strategic", dry_run=dry_run == "server")
    return f"node/{name} {verb}{suffix}"


async def _nodes(s: Session, names: list[str], selector: str) -> list[str]:
    if selector:
        listed = await s.client.list(NODES, label_selector=selector)
        return [n["metadata"]["name"] for n in listed.get("items") or []]
    if not names:
        raise CliError("error: resource(s) were provided, but no name was specified")
    return names


async def cordon(s: Session, names: list[str], *, desired: bool, selector: str = "", dry_run: str = "none") -> int:
    for name in await _nodes(s, names, selector):
        typer.echo(await set_unschedulable(s, name, desired, dry_run=dry_run))
    return 0


# ---------------------------------------------------------------------------- drain
async def _daemon_set_error(s: Session, pod: Obj) -> str | None:
    ref = _controller(pod)
    if ref is None or ref.get("kind") != "DaemonSet":
        return None
    try:
        await s.client.get(DAEMON_SETS, str(ref.get("name")), namespace=(pod.get("metadata") or {}).get("namespace"))
    except errors.NotFoundError as e:
        return e.message
    except errors.ApiError as e:
        return e.message
    return ""


async def pods_for_deletion(s: Session, node: str, opts: DrainOptions) -> tuple[list[Obj], list[str], list[str]]:
    """GetPodsForDeletion: (pods to delete, warnings, errors)."""
    listed = await s.client.list(PODS, namespace="", field_selector=f"spec.nodeName={node}",
                                 label_selector=opts.pod_selector or None)
    verdicts = []
    for pod in listed.get("items") or []:
        verdicts.append((pod, pod_filter(pod, opts, daemon_set_error=await _daemon_set_error(s, pod),
                                         now=time.time())))
    pods = [p for p, v in verdicts if v.delete]
    warnings = [f"{msg}: {', '.join(names)}" for msg, names in _grouped(verdicts, "Warning").items()]
    errs = [f"cannot delete {msg}: {', '.join(names)}" for msg, names in _grouped(verdicts, "Error").items()]
    return pods, warnings, errs


def _delete_options(opts: DrainOptions) -> Obj:
    options: Obj = {"gracePeriodSeconds": opts.grace_period} if opts.grace_period >= 0 else {}
    if opts.dry_run == "server":
        options["dryRun"] = ["All"]
    return options


async def _evict_one(s: Session, pod: Obj, opts: DrainOptions, deadline: float | None) -> None:
    meta = pod["metadata"]
    ns, name = meta["namespace"], meta["name"]
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns},
            "deleteOptions": _delete_options(opts)}
    while True:
        typer.echo(f"evicting pod {ns}/{name}{DRY_RUN_SUFFIX[opts.dry_run]}")
        if deadline is not None and time.monotonic() > deadline:
            raise CliError(f'error when evicting pods/"{name}" -n "{ns}": global timeout reached: '
                           f"{go_duration(opts.timeout)}")
        try:
            if opts.disable_eviction:
                grace = opts.grace_period if opts.grace_period >= 0 else None
                await s.client.delete(PODS, name, namespace=ns, grace_period_seconds=grace,
                                      dry_run=opts.dry_run == "server")
            else:
                await s.client.request("POST", f"/api/v1/namespaces/{ns}/pods/{name}/eviction", json=body)
            break
        except errors.NotFoundError:
            return
        except errors.TooManyRequestsError as e:
            typer.echo(f'error when evicting pods/"{name}" -n "{ns}" (will retry after 5s): {e.message}', err=True)
            await asyncio.sleep(RETRY_SECONDS)
        except errors.ApiError as e:
            raise CliError(f'error when evicting pods/"{name}" -n "{ns}": {e.message}') from None
    if opts.dry_run != "server":
        await _wait_gone(s, pod, opts, deadline)


async def _wait_gone(s: Session, pod: Obj, opts: DrainOptions, deadline: float | None) -> None:
    meta = pod["metadata"]
    ns, name = meta["namespace"], meta["name"]
    while True:
        try:
            live = await s.client.get(PODS, name, namespace=ns)
        except errors.NotFoundError:
            live = None
        if live is None or live["metadata"].get("uid") != meta.get("uid"):
            typer.echo(f"pod/{name} {'deleted' if opts.disable_eviction else 'evicted'}")
            return
        if deadline is not None and time.monotonic() > deadline:
            raise CliError(f'error when waiting for pod "{name}" in namespace "{ns}" to terminate: '
                           f"global timeout reached: {go_duration(opts.timeout)}")
        await asyncio.sleep(POLL_SECONDS)


async def drain_node(s: Session, node: str, opts: DrainOptions) -> None:
    pods, warnings, errs = await pods_for_deletion(s, node, opts)
    if errs:
        raise CliError(errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
    if warnings:
        typer.echo(f"Warning: {'; '.join(warnings)}", err=True)
    if opts.dry_run == "client":
        for p in pods:
            typer.echo(f"evicting pod {p['metadata']['namespace']}/{p['metadata']['name']} (dry run)")
        return
    deadline = time.monotonic() + opts.timeout if opts.timeout > 0 else None
    results = await asyncio.gather(*(_evict_one(s, p, opts, deadline) for p in pods), return_exceptions=True)
    failures = [str(r) for r in results if isinstance(r, BaseException)]
    if failures:
        pending, _, _ = await pods_for_deletion(s, node, opts)
        error = failures[0] if len(failures) == 1 else "[" + ", ".join(failures) + "]"
        if pending:
            typer.echo(f'There are pending pods in node "{node}" when an error occurred: {error}', err=True)
            for p in pending:
                typer.echo(f"pod/{p['metadata']['name']}", err=True)
        raise CliError(error)


async def drain(s: Session, names: list[str], opts: DrainOptions, *, selector: str = "") -> int:
    nodes = await _nodes(s, names, selector)
    for name in nodes:
        typer.echo(await set_unschedulable(s, name, True, dry_run=opts.dry_run))
    for i, name in enumerate(nodes):
        try:
            await drain_node(s, name, opts)
        except CliError as e:
            text = str(e).removeprefix("error: ")
            typer.echo(f'error: unable to drain node "{name}" due to error: {text}, continuing command...', err=True)
            typer.echo("There are pending nodes to be drained:", err=True)
            for rest in nodes[i:]:
                typer.echo(f" {rest}", err=True)
            raise CliError(text) from None
        typer.echo(f"node/{name} drained{DRY_RUN_SUFFIX[opts.dry_run]}")
    return 0


# ---------------------------------------------------------------------------- the verbs
DRY_RUN_HELP = "none, client (only print what would be done) or server (the server checks without persisting)."


def _dry_run(value: str) -> str:
    if value not in DRY_RUN_SUFFIX:
        typer.echo(f'error: Invalid dry-run value ({value}). Must be "none", "server", or "client".', err=True)
        raise typer.Exit(1)
    return value


@app.command("cordon")
def cordon_command(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Node names.")] = None,
    selector: Annotated[str, typer.Option("--selector", "-l", help="Nodes with these labels.")] = "",
    dry_run: Annotated[str, typer.Option("--dry-run", help=DRY_RUN_HELP)] = "none",
) -> None:
    """Mark node as unschedulable."""
    mode = _dry_run(dry_run)
    run_command(options_of(ctx), lambda s: cordon(s, list(names or []), desired=True, selector=selector,
                                                  dry_run=mode))


@app.command("uncordon")
def uncordon_command(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Node names.")] = None,
    selector: Annotated[str, typer.Option("--selector", "-l", help="Nodes with these labels.")] = "",
    dry_run: Annotated[str, typer.Option("--dry-run", help=DRY_RUN_HELP)] = "none",
) -> None:
    """Mark node as schedulable."""
    mode = _dry_run(dry_run)
    run_command(options_of(ctx), lambda s: cordon(s, list(names or []), desired=False, selector=selector,
                                                  dry_run=mode))


@app.command("drain")
def drain_command(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Node names.")] = None,
    force: Annotated[bool, typer.Option("--force/--no-force", help="Also delete pods that declare no controller.")] = False,
    ignore_daemonsets: Annotated[bool, typer.Option("--ignore-daemonsets/--no-ignore-daemonsets",
                                                    help="Ignore DaemonSet-managed pods.")] = False,
    delete_emptydir_data: Annotated[bool, typer.Option("--delete-emptydir-data/--no-delete-emptydir-data",
                                                       help="Continue even if pods use emptyDir.")] = False,
    grace_period: Annotated[int, typer.Option("--grace-period", help="Seconds each pod gets (-1: its own).")] = -1,
    timeout: Annotated[str, typer.Option("--timeout", help="Give up after this long (0: never).")] = "0s",
    pod_selector: Annotated[str, typer.Option("--pod-selector", help="Only pods with these labels.")] = "",
    selector: Annotated[str, typer.Option("--selector", "-l", help="Nodes with these labels.")] = "",
    disable_eviction: Annotated[bool, typer.Option("--disable-eviction/--no-disable-eviction",
                                                   help="Delete pods instead of evicting them.")] = False,
    skip_wait_for_delete_timeout: Annotated[int, typer.Option(
        "--skip-wait-for-delete-timeout", help="Skip pods deleted more than this many seconds ago.")] = 0,
    dry_run: Annotated[str, typer.Option("--dry-run", help=DRY_RUN_HELP)] = "none",
) -> None:
    """Drain node in preparation for maintenance: cordon it, then evict its pods."""
    try:
        seconds = parse_duration(timeout)
    except ValueError as e:
        typer.echo(f"error: invalid argument {timeout!r} for \"--timeout\" flag: {e}", err=True)
        raise typer.Exit(1)
    opts = DrainOptions(force=force, ignore_daemonsets=ignore_daemonsets, delete_emptydir_data=delete_emptydir_data,
                        grace_period=grace_period, timeout=seconds, pod_selector=pod_selector,
                        disable_eviction=disable_eviction, skip_wait_for_delete_timeout=skip_wait_for_delete_timeout,
                        dry_run=_dry_run(dry_run))
    run_command(options_of(ctx), lambda s: drain(s, list(names or []), opts, selector=selector))

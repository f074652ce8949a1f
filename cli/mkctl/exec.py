"""``mkctl exec`` and ``mkctl attach``: a command (or the main process) of a pod's container.

Data flow: ``POD`` or ``TYPE/NAME`` -> ``attachable_pod`` (a pod as is; for a Deployment, Service,
ReplicaSet, ... the first pod of its selector in kubectl's order, ``first_active``) ->
``choose_container`` (``-c``, else the ``kubectl.kubernetes.io/default-container`` annotation, else
the first container, with kubectl's "Defaulted container" note) -> ``setup_tty`` (kubectl's TTY
rules) -> ``machinery.streamclient`` (WebSocket ``pods/exec|attach`` through the API server, stdin,
stdout/stderr, raw terminal and resizes) -> the command's exit code becomes mkctl's, with kubectl's
"command terminated with exit code N" on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
from dataclasses import dataclass
from typing import Annotated, Any, AsyncIterator, Mapping, Sequence

import typer
from typer.core import TyperCommand

from machinery import errors, remotecommand as rc
from machinery.client import ApiClient, ConnectionFailedError, resource_for
from machinery.selectors import SelectorError, label_selector_from_dict, label_selector_from_set
from machinery.streamclient import (EXEC_PROTOCOLS, Outcome, RemoteIO, StreamDialer, bytes_source, fd_chunks,
                                    is_terminal, raw_terminal, remote_command_params, run_remote_command,
                                    terminal_size, terminal_sizes, write_sink)
from machinery.timefmt import parse_time

from .app import app, options_of
from .session import CliError, Session, parse_duration, run_command

Obj = Mapping[str, Any]
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
DASH = "\x00--"  # marks where "--" stood in the arguments (click drops it)
EXEC_USAGE = ("expected 'exec (POD | TYPE/NAME) [-c CONTAINER] [flags] -- COMMAND [args...]'.  POD or TYPE/NAME "
              "is a required argument for the exec command")


class DashCommand(TyperCommand):
    """Keeps the position of ``--`` (cobra's ArgsLenAtDash), which click would swallow."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if "--" in args:
            i = args.index("--")
            args = [*args[:i + 1], DASH, *args[i + 1:]]
        return super().parse_args(ctx, args)


def split_at_dash(args: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """(arguments before ``--``, the command after it or None without ``--``)."""
    if DASH in args:
        i = list(args).index(DASH)
        return list(args[:i]), list(args[i + 1:])
    return list(args), None


def exec_target_and_command(args: Sequence[str]) -> tuple[str, list[str]]:
    """kubectl exec's ``Complete`` and ``Validate`` over the positional arguments."""
    before, command = split_at_dash(args)
    if command is None:
        if len(before) > 1:
            raise CliError("error: exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead\n"
                           "See 'mkctl exec -h' for help and examples")
        command = []
    elif len(before) > 1:
        raise CliError("error: exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead\n"
                       "See 'mkctl exec -h' for help and examples")
    if not before:
        raise CliError(f"error: {EXEC_USAGE}\nSee 'mkctl exec -h' for help and examples")
    if not command:
        raise CliError("error: you must specify at least one command for the container")
    return before[0], command


# ---------------------------------------------------------------------------- choosing (pure)
def _is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _ready_since(pod: Obj) -> float:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            t = parse_time(c.get("lastTransitionTime"))
            return t.timestamp() if t else 0.0
    return 0.0


def _activity(pod: Obj) -> tuple[Any, ...]:
    """kubectl's ``sort.Reverse(podutils.ActivePods)`` as a sort key (smallest = most active):
    assigned, Running > Unknown > Pending, ready, not deleting, ready longest, fewest restarts, oldest."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    phase = {"Running": 0, "Unknown": 1, "Pending": 2}.get(str(status.get("phase") or ""), 3)
    ready = _is_ready(pod)
    restarts = max((int(s.get("restartCount") or 0) for s in status.get("containerStatuses") or []), default=0)
    created = parse_time(meta.get("creationTimestamp"))
    return (not spec.get("nodeName"), phase, not ready, bool(meta.get("deletionTimestamp")),
            _ready_since(pod) if ready else 0.0, restarts, created.timestamp() if created else float("inf"))


def first_active(pods: Sequence[Obj]) -> Obj | None:
    return min(pods, key=_activity) if pods else None


def selector_of(obj: Obj) -> str:
    """The pod selector of a workload or Service (kubectl's ``SelectorsForObject``), as a string."""
    kind, version = str(obj.get("kind") or ""), str(obj.get("apiVersion") or "").rpartition("/")[2]
    spec = obj.get("spec") or {}
    name = (obj.get("metadata") or {}).get("name", "")
    if kind == "Service":
        if not spec.get("selector"):
            raise CliError(f"error: invalid service '{name}': Service is defined without a selector")
        return str(label_selector_from_set(spec.get("selector")))
    if kind == "ReplicationController":
        return str(label_selector_from_set(spec.get("selector")))
    if kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job"):
        try:
            return str(label_selector_from_dict(spec.get("selector")))
        except SelectorError as e:
            raise CliError(f"error: invalid label selector: {e}") from None
    raise CliError(f"error: cannot attach to *{version}.{kind}: selector for *{version}.{kind} not implemented")


def all_container_names(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    names = [str(c.get("name")) for c in spec.get("containers") or []]
    names += [f"{c.get('name')} (ephem)" for c in spec.get("ephemeralContainers") or []]
    names += [f"{c.get('name')} (init)" for c in spec.get("initContainers") or []]
    return ", ".join(names)


def find_container(pod: Obj, name: str) -> Obj | None:
    spec = pod.get("spec") or {}
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if c.get("name") == name:
                return dict(c)
    return None


def choose_container(pod: Obj, name: str | None) -> tuple[Obj, str | None]:
    """kubectl's ``FindOrDefaultContainerByName``: the container and the note to print, if any."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    containers = spec.get("containers") or []
    if not containers:
        raise CliError(f"error: pod {meta.get('namespace')}/{meta.get('name')} does not have any containers")
    wanted = name or (meta.get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION) or ""
    if wanted:
        found = find_container(pod, wanted)
        if found is None:
            raise CliError(f"error: container {wanted} is not valid for pod {meta.get('name')} out of: "
                           f"{all_container_names(pod)}")
        return found, None
    first = dict(containers[0])
    note = None
    if len(containers) > 1 or spec.get("initContainers") or spec.get("ephemeralContainers"):
        note = f'Defaulted container "{first.get("name")}" out of: {all_container_names(pod)}'
    return first, note


@dataclass(frozen=True)
class TtyPlan:
    stdin: bool
    tty: bool  # raw mode and ``tty=true`` on the request
    warning: str | None = None


def setup_tty(*, stdin: bool, tty: bool, stdin_is_terminal: bool, quiet: bool) -> TtyPlan:
    """kubectl's ``StreamOptions.SetupTTY``: no TTY without stdin, nor when stdin is no terminal."""
    if not stdin:
        return TtyPlan(False, False)
    if tty and not stdin_is_terminal:
        return TtyPlan(True, False, None if quiet else "Unable to use a TTY - input is not a terminal or the right kind of file")
    return TtyPlan(True, tty)


# ---------------------------------------------------------------------------- finding the pod (I/O)
async def attachable_pod(session: Session, target: str, *, timeout: float, kind_hint: str = "pods") -> dict[str, Any]:
    """The pod behind ``POD`` or ``TYPE/NAME`` (kubectl's ``AttachablePodForObject``)."""
    obj = await resolve_object(session, target, kind_hint=kind_hint)
    if obj.get("kind") == "Pod":
        return obj
    return await first_pod(session, str((obj.get("metadata") or {}).get("namespace") or session.namespace),
                           selector_of(obj), timeout=timeout)


async def resolve_object(session: Session, target: str, *, kind_hint: str = "pods") -> dict[str, Any]:
    typed, _, name = target.rpartition("/")
    if not name:
        raise CliError("error: pod, type/name or --filename must be specified")
    if (typed or kind_hint) in ("pods", "pod", "po"):  # the common case needs no discovery round trips
        found = dict(await session.client.get("pods", name, namespace=session.namespace))
        return {"apiVersion": "v1", "kind": "Pod", **found}
    res = await session.resolve(typed or kind_hint)
    obj = dict(await session.client.get(res.api_resource, name, namespace=session.namespace if res.namespaced else None))
    obj.setdefault("kind", res.kind)
    obj.setdefault("apiVersion", res.api_version)
    return obj


async def first_pod(session: Session, namespace: str, selector: str, *, timeout: float) -> dict[str, Any]:
    """The most active pod of ``selector``; with none yet, the first one a watch shows (kubectl
    waits up to ``--pod-running-timeout`` too)."""
    listed = await session.client.list("pods", namespace=namespace, label_selector=selector)
    found = first_active(listed.get("items") or [])
    if found is not None:
        return dict(found)
    rv = str((listed.get("metadata") or {}).get("resourceVersion") or "")

    async def watch() -> dict[str, Any]:
        async with session.client.watch("pods", namespace=namespace, label_selector=selector, resource_version=rv,
                                        timeout_seconds=max(1, int(timeout))) as events:
            async for kind, pod in events:
                if kind in ("ADDED", "MODIFIED"):
                    return dict(pod)
        raise CliError("error: timed out waiting for the condition")
    try:
        return await asyncio.wait_for(watch(), timeout)
    except asyncio.TimeoutError:
        raise CliError("error: timed out waiting for the condition") from None


# ---------------------------------------------------------------------------- streaming (I/O)
def stdin_chunks() -> AsyncIterator[bytes]:
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return bytes_source(sys.stdin.buffer.read())  # typer's test runner: an in-memory stdin
    return fd_chunks(fd)


def stdin_is_terminal() -> bool:
    try:
        return is_terminal(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


async def remote_command(session: Session, pod: Obj, subresource: str, params: list[tuple[str, str]],
                         remote: RemoteIO) -> Outcome:
    """One ``pods/exec`` or ``pods/attach`` WebSocket of ``pod``, pumped with ``remote``."""
    meta = pod.get("metadata") or {}
    path = ApiClient.path(resource_for("pods"), str(meta.get("namespace")), str(meta.get("name")), subresource)
    async with StreamDialer(session.config) as dialer:
        try:
            ws, protocol = await dialer.dial(path, params, EXEC_PROTOCOLS)
        except errors.ApiError as e:
            if isinstance(e, ConnectionFailedError):
                raise
            # kubectl's words once its WebSocket and then SPDY upgrades were refused
            raise CliError(f"error: unable to upgrade connection: {e.message}") from None
        return await run_remote_command(ws, protocol, remote)


async def stream(session: Session, pod: Obj, subresource: str, params: list[tuple[str, str]], *, stdin: bool,
                 tty: bool, resize_first: Sequence[rc.TerminalSize] = ()) -> Outcome:
    """A session on this process's stdin/stdout/stderr (the terminal raw and its resizes with ``tty``)."""
    out = sys.stdout.buffer
    try:
        return await _stream(session, pod, subresource, params, stdin=stdin, tty=tty, resize_first=resize_first)
    except BrokenPipeError:  # the reader of our output went away (``| head``): end quietly, as kubectl
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return Outcome(1)


async def _stream(session: Session, pod: Obj, subresource: str, params: list[tuple[str, str]], *, stdin: bool,
                  tty: bool, resize_first: Sequence[rc.TerminalSize]) -> Outcome:
    out, err = sys.stdout.buffer, sys.stderr.buffer
    remote = RemoteIO(stdin=stdin_chunks() if stdin else None, stdout=write_sink(out.write, out.flush),
                      stderr=None if tty else write_sink(err.write, err.flush))
    if not tty:
        return await remote_command(session, pod, subresource, params, remote)
    fd = sys.stdin.fileno()
    remote.resize = terminal_sizes(fd, first=resize_first)
    with raw_terminal(fd):
        return await remote_command(session, pod, subresource, params, remote)


def finish(outcome: Outcome) -> int:
    if outcome.code:
        message = outcome.message
        if not message.startswith("command terminated with exit code"):
            message = message if message.startswith("error: ") else f"error: {message}"
        typer.echo(message, err=True)
    return outcome.code


async def run_exec(session: Session, target: str, command: list[str], *, container: str | None, stdin: bool,
                   tty: bool, quiet: bool, timeout: float) -> int:
    pod = await attachable_pod(session, target, timeout=timeout)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise CliError(f"error: cannot exec into a container in a completed pod; current phase is {phase}")
    chosen, note = choose_container(pod, container)
    if note and not quiet:
        typer.echo(note, err=True)
    plan = setup_tty(stdin=stdin, tty=tty, stdin_is_terminal=stdin_is_terminal(), quiet=quiet)
    if plan.warning:
        typer.echo(plan.warning, err=True)
    params = remote_command_params(command=command, container=str(chosen.get("name")), stdin=plan.stdin, stdout=True,
                                   stderr=not plan.tty, tty=plan.tty)
    return finish(await stream(session, pod, "exec", params, stdin=plan.stdin, tty=plan.tty))


async def run_attach(session: Session, args: list[str], *, container: str | None, stdin: bool, tty: bool,
                     quiet: bool, timeout: float) -> int:
    if not args:
        raise CliError("error: at least 1 argument is required for attach")
    if len(args) > 2:
        raise CliError(f"error: expected POD, TYPE/NAME, or TYPE NAME, (at most 2 arguments) saw {len(args)}: "
                       f"[{' '.join(args)}]")
    pod = await attachable_pod(session, args[0] if len(args) == 1 else f"{args[0]}/{args[1]}", timeout=timeout)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise CliError(f"error: cannot attach a container in a completed pod; current phase is {phase}")
    try:
        chosen, note = choose_container(pod, container)
    except CliError as e:
        raise CliError(f"error: cannot attach to the container: {str(e).removeprefix('error: ')}") from None
    if note and not quiet:
        typer.echo(note, err=True)
    name = str(chosen.get("name"))
    if tty and not chosen.get("tty"):
        tty = False
        if not quiet:
            typer.echo(f"error: Unable to use a TTY - container {name} did not allocate one", err=True)
    elif not tty and chosen.get("tty"):
        tty = True  # the container has a terminal: its output is one stream
    plan = setup_tty(stdin=stdin, tty=tty, stdin_is_terminal=stdin_is_terminal(), quiet=quiet)
    if plan.warning:
        typer.echo(plan.warning, err=True)
    first: list[rc.TerminalSize] = []
    size = terminal_size(sys.stdin.fileno()) if plan.tty else None
    if size is not None:  # one size up, then the real one: the program redraws its screen
        first = [rc.TerminalSize(size.width + 1, size.height + 1), size]
    if not quiet:
        typer.echo("If you don't see a command prompt, try pressing enter.", err=True)
    params = remote_command_params(container=name, stdin=plan.stdin, stdout=True, stderr=not plan.tty, tty=plan.tty)
    code = finish(await stream(session, pod, "attach", params, stdin=plan.stdin, tty=plan.tty, resize_first=first))
    if not quiet and plan.stdin and plan.tty:
        meta = pod.get("metadata") or {}
        typer.echo(f"Session ended, resume using 'mkctl attach {meta.get('name')} -c {name} -n {meta.get('namespace')} "
                   f"-i -t' command")
    return code


# ---------------------------------------------------------------------------- the verbs
Container = Annotated[str | None, typer.Option("--container", "-c", help="Container name. If omitted, use the "
                                               "kubectl.kubernetes.io/default-container annotation or the first one.")]
Stdin = Annotated[bool, typer.Option("--stdin/--no-stdin", "-i", help="Pass stdin to the container")]
Tty = Annotated[bool, typer.Option("--tty/--no-tty", "-t", help="Stdin is a TTY")]
Quiet = Annotated[bool, typer.Option("--quiet/--no-quiet", "-q", help="Only print output from the remote session")]
PodTimeout = Annotated[str, typer.Option("--pod-running-timeout",
                                         help="How long to wait for a pod of a TYPE/NAME (5s, 2m, ...)")]


def pod_timeout(value: str) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise CliError("error: --pod-running-timeout must be higher than zero")
    return seconds


@app.command("exec", cls=DashCommand)
def exec_command(
    ctx: typer.Context,
    args: Annotated[list[str], typer.Argument(help="POD | TYPE/NAME -- COMMAND [args...]", show_default=False)],
    container: Container = None, stdin: Stdin = False, tty: Tty = False, quiet: Quiet = False,
    pod_running_timeout: PodTimeout = "1m",
) -> None:
    """Execute a command in a container."""
    async def run(s: Session) -> int:
        target, command = exec_target_and_command(args)
        return await run_exec(s, target, command, container=container, stdin=stdin, tty=tty, quiet=quiet,
                              timeout=pod_timeout(pod_running_timeout))
    run_command(options_of(ctx), run)


@app.command("attach")
def attach_command(
    ctx: typer.Context,
    args: Annotated[list[str], typer.Argument(help="POD | TYPE/NAME | TYPE NAME", show_default=False)],
    container: Container = None, stdin: Stdin = False, tty: Tty = False, quiet: Quiet = False,
    pod_running_timeout: PodTimeout = "1m",
) -> None:
    """Attach to a process that is already running inside an existing container."""
    async def run(s: Session) -> int:
        return await run_attach(s, list(args), container=container, stdin=stdin, tty=tty, quiet=quiet,
                                timeout=pod_timeout(pod_running_timeout))
    run_command(options_of(ctx), run)


__all__ = ["DashCommand", "TtyPlan", "all_container_names", "attachable_pod", "choose_container",
           "exec_target_and_command", "finish", "first_active", "first_pod", "remote_command", "resolve_object", "selector_of", "setup_tty",
           "split_at_dash", "stream"]

"""``mkctl port-forward TYPE/NAME [LOCAL:]REMOTE ...``: local ports to a pod's ports.

Data flow: ``TYPE/NAME`` -> ``exec.resolve_object`` / ``exec.attachable_pod`` (a pod; the first
active pod of a Service or workload) -> the port arguments, for a Service through its ports'
``targetPort`` (``service_ports``), for a pod through its named container ports (``pod_ports``),
-> ``parse_forwards`` (kubectl's ``[LOCAL:]REMOTE``, ``:REMOTE`` = a free local port) -> one
listener per address (``--address``, default localhost: 127.0.0.1 and ::1) and port, printing
kubectl's "Forwarding from 127.0.0.1:18080 -> 8080" -> every accepted connection gets its own
WebSocket to ``pods/NAME/portforward?ports=REMOTE`` (``machinery.streamclient.forward_connection``);
an error on one connection is printed and the others go on. Ctrl-C (or SIGTERM) ends it, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
from dataclasses import dataclass
from typing import Annotated, Any, Mapping, Sequence

import typer

from machinery.client import ApiClient, resource_for
from machinery.streamclient import StreamDialer, forward_connection

from .app import app, options_of
from .exec import PodTimeout, first_pod, pod_timeout, resolve_object, selector_of
from .session import CliError, Session, run_command

Obj = Mapping[str, Any]


# ---------------------------------------------------------------------------- ports (pure)
def split_port(spec: str) -> tuple[str, str]:
    parts = spec.split(":")
    if len(parts) == 2:
        return parts[0], parts[1]
    return parts[0], parts[0]


def _join(local: str, remote: str) -> str:
    return remote if local == remote else f"{local}:{remote}"


def container_port_by_name(pod: Obj, name: str) -> int:
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == name:
                return int(p.get("containerPort") or 0)
    raise CliError(f"error: Pod '{(pod.get('metadata') or {}).get('name')}' does not have a named port '{name}'")


def pod_ports(specs: Sequence[str], pod: Obj) -> list[str]:
    """kubectl's ``convertPodNamedPortToNumber``."""
    out: list[str] = []
    for spec in specs:
        local, remote = split_port(spec)
        if remote == "":
            raise CliError("error: remote port cannot be empty")
        number = remote if remote.isdigit() else str(container_port_by_name(pod, remote))
        out.append(_join(local, number) if local != remote else number)
    return out


def service_ports(specs: Sequence[str], svc: Obj, pod: Obj) -> list[str]:
    """kubectl's ``translateServicePortToTargetPort``: a Service port (number or name) -> the
    ``targetPort`` in the pod (a named one through the pod's container ports)."""
    name = (svc.get("metadata") or {}).get("name")
    spec_ports = (svc.get("spec") or {}).get("ports") or []
    out: list[str] = []
    for spec in specs:
        local, remote = split_port(spec)
        if remote.isdigit():
            number = int(remote)
        else:
            found = next((p for p in spec_ports if p.get("name") == remote), None)
            if found is None:
                raise CliError(f"error: Service '{name}' does not have a named port '{remote}'")
            number = int(found.get("port") or 0)
            if local == remote:
                local = str(number)
        port = next((p for p in spec_ports if int(p.get("port") or 0) == number), None)
        if port is None:
            raise CliError(f"error: Service {name} does not have a service port {number}")
        target: Any = port.get("targetPort")
        if (svc.get("spec") or {}).get("clusterIP") == "None" or target in (None, 0, ""):
            container = number
        elif isinstance(target, int) or str(target).isdigit():
            container = int(target)
        else:
            container = container_port_by_name(pod, str(target))
        out.append(_join(local, str(container)))
    return out


@dataclass
class Forward:
    local: int
    remote: int


def _parse_uint16(text: str, what: str) -> int:
    if not text.isdigit():
        raise CliError(f"error: error parsing {what} port '{text}': strconv.ParseUint: parsing \"{text}\": invalid syntax")
    value = int(text)
    if value > 65535:
        raise CliError(f"error: error parsing {what} port '{text}': strconv.ParseUint: parsing \"{text}\": "
                       "value out of range")
    return value


def parse_forwards(specs: Sequence[str]) -> list[Forward]:
    """client-go's ``parsePorts``: ``8080``, ``18080:8080``, ``:8080`` (a free local port)."""
    out: list[Forward] = []
    for spec in specs:
        parts = spec.split(":")
        if len(parts) > 2:
            raise CliError(f"error: invalid port format '{spec}'")
        local_text, remote_text = (parts[0], parts[0]) if len(parts) == 1 else (parts[0] or "0", parts[1])
        local, remote = _parse_uint16(local_text, "local"), _parse_uint16(remote_text, "remote")
        if remote == 0:
            raise CliError("error: remote port must be > 0")
        out.append(Forward(local, remote))
    return out


def parse_addresses(values: Sequence[str]) -> list[tuple[str, bool]]:
    """(address, may fail alone) in kubectl's order: ``localhost`` is 127.0.0.1 and ::1, and one of
    the two is enough; an explicit address must work."""
    parsed: dict[str, bool] = {}
    for value in (v.strip() for item in values for v in item.split(",")):
        if value == "localhost":
            parsed.setdefault("127.0.0.1", True)
            parsed.setdefault("::1", True)
            continue
        try:
            parsed[str(ipaddress.ip_address(value))] = False
        except ValueError:
            raise CliError(f"error: {value} is not a valid IP") from None
    return sorted(parsed.items())


def shown(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---------------------------------------------------------------------------- forwarding (I/O)
async def run_port_forward(session: Session, args: list[str], *, addresses: Sequence[str], timeout: float,
                           stop: asyncio.Event | None = None) -> int:
    if len(args) < 2:
        raise CliError("error: TYPE/NAME and list of ports are required for port-forward\n"
                       "See 'mkctl port-forward -h' for help and examples")
    obj = await resolve_object(session, args[0])
    if obj.get("kind") == "Pod":
        pod = obj
        ports = pod_ports(args[1:], pod)
    else:
        namespace = str((obj.get("metadata") or {}).get("namespace") or session.namespace)
        pod = await first_pod(session, namespace, selector_of(obj), timeout=timeout)
        ports = service_ports(args[1:], obj, pod) if obj.get("kind") == "Service" else pod_ports(args[1:], pod)
    forwards = parse_forwards(ports)
    listen = parse_addresses(addresses)
    meta = pod.get("metadata") or {}
    pod = await session.client.get("pods", str(meta.get("name")), namespace=str(meta.get("namespace")))
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        raise CliError(f"error: unable to forward port because pod is not running. Current status={phase}")
    path = ApiClient.path(resource_for("pods"), str(meta.get("namespace")), str(meta.get("name")), "portforward")
    stop = stop or asyncio.Event()
    servers: list[asyncio.base_events.Server] = []
    async with StreamDialer(session.config) as dialer:
        connections: set[asyncio.Task[None]] = set()

        def handler(fw: Forward) -> Any:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                typer.echo(f"Handling connection for {fw.local}")
                task = asyncio.current_task()
                if task is not None:
                    connections.add(task)
                try:
                    error = await forward_connection(dialer, path, fw.remote, reader, writer)
                    if error:
                        typer.echo(f"error: an error occurred forwarding {fw.local} -> {fw.remote}: {error}", err=True)
                except Exception as e:  # noqa: BLE001 - one connection's failure must not end the forward
                    typer.echo(f"error: an error occurred forwarding {fw.local} -> {fw.remote}: {e}", err=True)
                finally:
                    if task is not None:
                        connections.discard(task)
            return handle

        listening = 0
        for fw in forwards:
            failures: list[str] = []
            ok_localhost = failed_localhost = failed_explicit = 0
            for host, localhost in listen:
                try:
                    server = await asyncio.start_server(handler(fw), host, fw.local)
                except OSError as e:
                    failures.append(f"unable to create listener: Error listen tcp{6 if ':' in host else 4} "
                                    f"{shown(host, fw.local)}: {e.strerror or e}")
                    failed_localhost += localhost
                    failed_explicit += not localhost
                    continue
                servers.append(server)
                ok_localhost += localhost
                fw.local = int(server.sockets[0].getsockname()[1])  # ":REMOTE": the same port on every address
                typer.echo(f"Forwarding from {shown(host, fw.local)} -> {fw.remote}")
            if (failed_localhost and not ok_localhost) or failed_explicit:
                typer.echo(f"Unable to listen on port {fw.local}: Listeners failed to create with the following "
                           f"errors: [{' '.join(failures)}]", err=True)
            else:
                listening += 1
        if not listening:
            raise CliError("error: unable to listen on any of the requested ports: "
                           f"[{' '.join(f'{{{f.local} {f.remote}}}' for f in forwards)}]")
        loop = asyncio.get_running_loop()
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
        try:
            await stop.wait()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            for server in servers:
                server.close()
            for task in list(connections):
                task.cancel()
    return 0


@app.command("port-forward")
def port_forward_command(
    ctx: typer.Context,
    args: Annotated[list[str], typer.Argument(help="TYPE/NAME [LOCAL_PORT:]REMOTE_PORT [...]", show_default=False)],
    address: Annotated[list[str], typer.Option("--address", help="Addresses to listen on (comma separated). Only "
                                               "IP addresses or localhost.")] = ["localhost"],  # noqa: B006
    pod_running_timeout: PodTimeout = "1m",
) -> None:
    """Forward one or more local ports to a pod."""
    async def run(s: Session) -> int:
        return await run_port_forward(s, list(args), addresses=address, timeout=pod_timeout(pod_running_timeout))
    run_command(options_of(ctx), run)


__all__ = ["Forward", "parse_addresses", "parse_forwards", "pod_ports", "run_port_forward",
           "service_ports", "split_port"]

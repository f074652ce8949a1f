"""``mkctl top pod|node``: resource usage from ``metrics.k8s.io/v1beta1``, as ``kubectl top`` prints it.

Data flow: ``top pod [NAME] [-l sel] [-A] [--containers] [--sort-by cpu|memory]`` -> GET
``/apis/metrics.k8s.io/v1beta1/[namespaces/NS/]pods[/NAME]`` -> rows of CPU in millicores and
memory in MiB (kubectl's units); ``top node [NAME] [-l sel]`` -> NodeMetrics plus the Nodes'
allocatable for CPU(%) and MEMORY(%). Formatting is pure (``pod_rows``, ``node_rows``).
"""

from __future__ import annotations

from typing import Annotated, Any, Mapping

import typer

from machinery import errors
from machinery.quantity import QuantityError, cpu_millis, to_bytes

from .app import app, options_of
from .printing import TABLE_MINWIDTH, TABLE_PADDING, tabwrite
from .session import CliError, Session, run_command

METRICS = "/apis/metrics.k8s.io/v1beta1"
top_app = typer.Typer(help="Display resource (CPU/memory) usage of pods or nodes.")
app.add_typer(top_app, name="top")


def _millis(value: Any) -> int:
    try:
        return cpu_millis(str(value))
    except QuantityError:
        return 0


def _bytes(value: Any) -> int:
    try:
        return to_bytes(str(value))
    except QuantityError:
        return 0


def _usage(containers: Any) -> tuple[int, int]:
    cpu = sum(_millis((c.get("usage") or {}).get("cpu", "0")) for c in containers or [])
    memory = sum(_bytes((c.get("usage") or {}).get("memory", "0")) for c in containers or [])
    return cpu, memory


def pod_rows(items: list[Mapping[str, Any]], *, all_namespaces: bool, containers: bool, sort_by: str,
             headers: bool) -> str:
    """kubectl's TopCmdPrinter.PrintPodMetrics."""
    rows: list[tuple[list[str], int, int]] = []
    for item in items:
        meta = item.get("metadata") or {}
        prefix = [str(meta.get("namespace"))] if all_namespaces else []
        if containers:
            for c in item.get("containers") or []:
                cpu, memory = _usage([c])
                rows.append((prefix + [str(meta.get("name")), str(c.get("name")), f"{cpu}m", f"{memory // (1 << 20)}Mi"],
                             cpu, memory))
        else:
            cpu, memory = _usage(item.get("containers"))
            rows.append((prefix + [str(meta.get("name")), f"{cpu}m", f"{memory // (1 << 20)}Mi"], cpu, memory))
    if sort_by == "cpu":
        rows.sort(key=lambda r: -r[1])
    elif sort_by == "memory":
        rows.sort(key=lambda r: -r[2])
    head = (["NAMESPACE"] if all_namespaces else []) + (["POD", "NAME"] if containers else ["NAME"]) + [
        "CPU(cores)", "MEMORY(bytes)"]
    lines = ([head] if headers else []) + [r[0] for r in rows]
    return tabwrite("".join("\t".join(line) + "\t\n" for line in lines), minwidth=TABLE_MINWIDTH,
                    padding=TABLE_PADDING)


def node_rows(metrics: list[Mapping[str, Any]], nodes: Mapping[str, Mapping[str, Any]], *, sort_by: str,
              headers: bool, missing: list[str]) -> str:
    """kubectl's TopCmdPrinter.PrintNodeMetrics: usage and its share of each node's allocatable."""
    rows: list[tuple[list[str], int, int]] = []
    for item in metrics:
        name = str((item.get("metadata") or {}).get("name"))
        usage = item.get("usage") or {}
        cpu, memory = _millis(usage.get("cpu", "0")), _bytes(usage.get("memory", "0"))
        allocatable = ((nodes.get(name) or {}).get("status") or {}).get("allocatable") or {}
        cpu_total, memory_total = _millis(allocatable.get("cpu", "0")), _bytes(allocatable.get("memory", "0"))
        # As kubectl: a percentage only where the Node reports that allocatable resource.
        cells = [name, f"{cpu}m"] + ([f"{cpu * 100 // cpu_total}%"] if cpu_total else [])
        cells += [f"{memory // (1 << 20)}Mi"] + ([f"{memory * 100 // memory_total}%"] if memory_total else [])
        rows.append((cells, cpu, memory))
    if sort_by == "cpu":
        rows.sort(key=lambda r: -r[1])
    elif sort_by == "memory":
        rows.sort(key=lambda r: -r[2])
    lines = ([["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]] if headers else []) + [r[0] for r in rows]
    lines += [[name, "<unknown>", "<unknown>", "<unknown>", "<unknown>"] for name in missing]
    return tabwrite("".join("\t".join(line) + "\t\n" for line in lines), minwidth=TABLE_MINWIDTH,
                    padding=TABLE_PADDING)


def _check_sort(sort_by: str) -> None:
    if sort_by not in ("", "cpu", "memory"):
        raise CliError(f"error: --sort-by accepts only cpu or memory")


async def top_pods(session: Session, name: str | None, *, selector: str, all_namespaces: bool, containers: bool,
                   sort_by: str, headers: bool) -> int:
    _check_sort(sort_by)
    path = f"{METRICS}/pods" if all_namespaces else f"{METRICS}/namespaces/{session.namespace}/pods"
    try:
        if name:
            items = [await session.client.request("GET", f"{path}/{name}")]
        else:
            listed = await session.client.request("GET", path, params={"labelSelector": selector or None})
            items = list((listed or {}).get("items") or [])
    except errors.NotFoundError:
        if name:
            raise CliError(f"error: metrics not available yet")
        raise CliError("error: Metrics API not available")
    if not items:
        where = "" if all_namespaces else f" in {session.namespace} namespace"
        typer.echo(f"No resources found{where}.", err=True)
        return 0
    typer.echo(pod_rows(items, all_namespaces=all_namespaces, containers=containers, sort_by=sort_by,
                        headers=headers), nl=False)
    return 0


async def top_nodes(session: Session, name: str | None, *, selector: str, sort_by: str, headers: bool) -> int:
    _check_sort(sort_by)
    if name:
        nodes = [await session.client.get("nodes", name)]
        try:
            metrics = [await session.client.request("GET", f"{METRICS}/nodes/{name}")]
        except errors.NotFoundError:
            raise CliError("error: metrics not available yet")
    else:
        nodes = list((await session.client.list("nodes", label_selector=selector or None)).get("items") or [])
        listed = await session.client.request("GET", f"{METRICS}/nodes", params={"labelSelector": selector or None})
        metrics = list((listed or {}).get("items") or [])
    by_name = {str((n.get("metadata") or {}).get("name")): n for n in nodes}
    seen = {str((m.get("metadata") or {}).get("name")) for m in metrics}
    if not metrics and not nodes:
        typer.echo("No resources found", err=True)
        return 0
    typer.echo(node_rows(metrics, by_name, sort_by=sort_by, headers=headers,
                         missing=sorted(n for n in by_name if n not in seen)), nl=False)
    return 0


@top_app.command("pod")
@top_app.command("pods", hidden=True)
@top_app.command("po", hidden=True)
def top_pod_command(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument()] = None,
    selector: Annotated[str, typer.Option("--selector", "-l")] = "",
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces/--no-all-namespaces", "-A")] = False,
    containers: Annotated[bool, typer.Option("--containers/--no-containers")] = False,
    sort_by: Annotated[str, typer.Option("--sort-by")] = "",
    no_headers: Annotated[bool, typer.Option("--no-headers/--headers")] = False,
) -> None:
    """Display resource (CPU/memory) usage of pods."""
    run_command(options_of(ctx), lambda s: top_pods(s, name, selector=selector, all_namespaces=all_namespaces,
                                                    containers=containers, sort_by=sort_by, headers=not no_headers))


@top_app.command("node")
@top_app.command("nodes", hidden=True)
@top_app.command("no", hidden=True)
def top_node_command(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument()] = None,
    selector: Annotated[str, typer.Option("--selector", "-l")] = "",
    sort_by: Annotated[str, typer.Option("--sort-by")] = "",
    no_headers: Annotated[bool, typer.Option("--no-headers/--headers")] = False,
) -> None:
    """Display resource (CPU/memory) usage of nodes."""
    run_command(options_of(ctx), lambda s: top_nodes(s, name, selector=selector, sort_by=sort_by,
                                                     headers=not no_headers))


__all__ = ["node_rows", "pod_rows", "top_nodes", "top_pods"]

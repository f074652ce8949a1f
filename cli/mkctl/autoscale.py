"""``mkctl autoscale TYPE NAME --max=N [--min=N] [--cpu-percent=N] [--name=HPA]``, as ``kubectl autoscale``.

Data flow: the target (``deployment web`` or ``deployment/web``) is resolved through discovery and
read (it must exist) -> ``hpa_manifest`` builds an autoscaling/v2 HorizontalPodAutoscaler named
after it (a cpu Utilization metric when ``--cpu-percent`` is given; otherwise the server's default
of 80 %) -> POST -> ``horizontalpodautoscaler.autoscaling/NAME autoscaled``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from machinery.client import ApiResource

from .app import app, options_of
from .session import CliError, Session, run_command
from .targets import parse_targets

HPA = ApiResource("autoscaling/v2", "horizontalpodautoscalers", True, "HorizontalPodAutoscaler")


def hpa_manifest(*, name: str, namespace: str, target_api_version: str, target_kind: str, target_name: str,
                 minimum: int, maximum: int, cpu_percent: int) -> dict[str, Any]:
    """The HorizontalPodAutoscaler kubectl autoscale makes (in its v2 form)."""
    spec: dict[str, Any] = {"scaleTargetRef": {"apiVersion": target_api_version, "kind": target_kind,
                                               "name": target_name},
                            "maxReplicas": maximum}
    if minimum > 0:
        spec["minReplicas"] = minimum
    if cpu_percent >= 0:
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": cpu_percent}}}]
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def check_bounds(minimum: int, maximum: int) -> None:
    """kubectl's own checks of --min and --max."""
    if maximum < 1:
        raise CliError(f"error: --max=MAXPODS is required and must be at least 1, max: {maximum}")
    if maximum < minimum:
        raise CliError(f"error: --max=MAXPODS must be larger or equal to --min=MINPODS, max: {maximum}, min: {minimum}")


async def autoscale(session: Session, args: list[str], *, minimum: int, maximum: int, cpu_percent: int,
                    name: str, dry_run: bool) -> int:
    check_bounds(minimum, maximum)
    targets = await parse_targets(session, args, verb="autoscale")
    if len(targets) != 1 or len(targets[0].names) != 1:
        raise CliError("error: exactly one resource and one name are required")
    target = targets[0]
    target_name = target.names[0]
    namespace = session.namespace
    obj = await session.client.get(target.res.api_resource, target_name, namespace=namespace)
    manifest = hpa_manifest(name=name or target_name, namespace=namespace,
                            target_api_version=str(obj.get("apiVersion") or target.res.api_version),
                            target_kind=target.res.kind, target_name=target_name, minimum=minimum,
                            maximum=maximum, cpu_percent=cpu_percent)
    await session.client.create(HPA, manifest, namespace=namespace, dry_run=dry_run)
    typer.echo(f"horizontalpodautoscaler.autoscaling/{manifest['metadata']['name']} autoscaled"
               + (" (server dry run)" if dry_run else ""))
    return 0


@app.command("autoscale")
def autoscale_command(
    ctx: typer.Context,
    args: Annotated[list[str], typer.Argument(help="TYPE NAME or TYPE/NAME")],
    maximum: Annotated[int, typer.Option("--max", help="The upper limit for the number of pods.")] = -1,
    minimum: Annotated[int, typer.Option("--min", help="The lower limit for the number of pods (-1: the server's).")] = -1,
    cpu_percent: Annotated[int, typer.Option("--cpu-percent", help="The target average CPU utilization (-1: the server's default).")] = -1,
    name: Annotated[str, typer.Option("--name", help="The name of the new autoscaler (default: the target's).")] = "",
    dry_run: Annotated[str, typer.Option("--dry-run", help="none or server")] = "none",
) -> None:
    """Create an autoscaler that scales a deployment, replica set or stateful set on CPU use."""
    if dry_run not in ("none", "server"):
        typer.echo(f'error: Invalid dry-run value ({dry_run}). Must be "none" or "server".', err=True)
        raise typer.Exit(1)
    run_command(options_of(ctx), lambda s: autoscale(s, args, minimum=minimum, maximum=maximum,
                                                     cpu_percent=cpu_percent, name=name,
                                                     dry_run=dry_run == "server"))


__all__ = ["autoscale", "check_bounds", "hpa_manifest"]

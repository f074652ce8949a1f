"""``mkctl create job NAME --image=IMAGE [-- COMMAND...]`` and ``mkctl create job NAME --from=cronjob/X``.

As kubectl's create_job.go: ``job_manifest`` builds a Job of one container named NAME with
``restartPolicy: Never``; ``job_from_cronjob`` copies a CronJob's jobTemplate (its labels, its
annotations plus ``cronjob.kubernetes.io/instantiate: manual``, the CronJob as controller owner).
Data flow: flags -> (GET the CronJob) -> the manifest -> create in the session's namespace (or
``--dry-run=client|server``) -> ``job.batch/NAME created`` or the object with ``-o yaml|json``.
Importing this module registers the sub-command on ``mkctl create``.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any

import typer

from .app import options_of
from .misc import create_app
from .printing import to_json, to_yaml
from .session import CliError, Session, run_command

INSTANTIATE = "cronjob.kubernetes.io/instantiate"
_CRONJOB_TYPES = ("cronjob", "cronjobs", "cj", "cronjob.batch", "cronjobs.batch")


def job_manifest(name: str, image: str, command: list[str]) -> dict[str, Any]:
    """What ``kubectl create job NAME --image=IMAGE -- COMMAND`` sends."""
    container: dict[str, Any] = {"name": name, "image": image, "resources": {}}
    if command:
        container["command"] = list(command)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"metadata": {}, "spec": {"containers": [container], "restartPolicy": "Never"}}},
            "status": {}}


def job_from_cronjob(name: str, cronjob: dict[str, Any]) -> dict[str, Any]:
    """What ``kubectl create job NAME --from=cronjob/X`` sends."""
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    cmeta = cronjob.get("metadata") or {}
    annotations = {INSTANTIATE: "manual", **(tmeta.get("annotations") or {})}
    meta: dict[str, Any] = {"name": name, "annotations": annotations, "ownerReferences": [
        {"apiVersion": "batch/v1", "kind": "CronJob", "name": cmeta.get("name"), "uid": cmeta.get("uid"),
         "controller": True}]}
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": copy.deepcopy(template.get("spec") or {}), "status": {}}


def parse_from(value: str) -> str:
    """The CronJob's name in ``--from=cronjob/NAME``."""
    kind, slash, name = value.partition("/")
    if not slash or not name:
        raise CliError(f'error: from must be of the form TYPE/NAME, got "{value}"')
    if kind.lower() not in _CRONJOB_TYPES:
        raise CliError(f"error: unknown object type {kind}: only cronjobs can be used with --from")
    return name


async def create_job(s: Session, name: str, *, image: str, source: str, command: list[str], dry_run: str,
                     output: str) -> int:
    if not image and not source:
        raise CliError("error: either --image or --from must be specified")
    if image and source:
        raise CliError("error: --image and --from are mutually exclusive")
    if command and source:
        raise CliError("error: COMMAND not supported with --from")
    if dry_run not in ("none", "client", "server"):
        raise CliError(f'error: Invalid dry-run value ({dry_run}). Must be "none", "server", or "client".')
    if source:
        cronjob = await s.client.get(("batch/v1", "cronjobs"), parse_from(source), namespace=s.namespace)
        body = job_from_cronjob(name, cronjob)
    else:
        body = job_manifest(name, image, command)
    if dry_run == "client":
        result = body
    else:
        result = await s.client.create(("batch/v1", "jobs"), body, namespace=s.namespace, dry_run=dry_run == "server")
    if output in ("yaml", "json"):
        typer.echo(to_yaml(result) if output == "yaml" else to_json(result), nl=False)
    elif output == "name":
        typer.echo(f"job.batch/{name}")
    else:
        suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")
        typer.echo(f"job.batch/{name} created{suffix}")
    return 0


@create_app.command("job")
def create_job_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    command: Annotated[list[str] | None, typer.Argument(help="The command to run (after --).")] = None,
    image: Annotated[str, typer.Option("--image", help="Image name to run.")] = "",
    source: Annotated[str, typer.Option("--from", help="The resource to create a Job from (only cronjob).")] = "",
    dry_run: Annotated[str, typer.Option("--dry-run", help="none, client or server.")] = "none",
    output: Annotated[str, typer.Option("--output", "-o", help="yaml, json or name.")] = "",
) -> None:
    """Create a job with the specified name."""
    run_command(options_of(ctx), lambda s: create_job(s, name, image=image, source=source, command=command or [],
                                                      dry_run=dry_run, output=output))

"""The small verbs: ``create``, ``scale``, ``api-resources``, ``version``, ``logs``.

Data flow: each parses its arguments, makes one or a few API calls through the ``Session``'s
client (``/scale`` for scale, discovery for api-resources, ``/version``, ``pods/{name}/log``)
and prints kubectl's line for the result.
"""

from __future__ import annotations

from importlib import metadata
from typing import Annotated, Any

import typer

from machinery import errors
from machinery.client import ApiClient, resource_for

from .app import app, options_of
from .apply import with_source
from .manifests import load
from .printing import ResourceRow, render_api_resources, to_json, to_yaml
from .session import CliError, Session, print_error, run_command
from .targets import parse_targets

# ------------------------------------------------------------------------------- create
create_app = typer.Typer(help="Create a resource from a file or from stdin, or a namespace / deployment.")
app.add_typer(create_app, name="create")


@create_app.callback(invoke_without_command=True)
def create_command(
    ctx: typer.Context,
    filename: Annotated[list[str] | None, typer.Option("--filename", "-f")] = None,
    recursive: Annotated[bool, typer.Option("--recursive/--no-recursive", "-R")] = False,
) -> None:
    """Create resources from files (``create -f``), or use a sub-command."""
    if ctx.invoked_subcommand is not None:
        return
    if not filename:
        typer.echo("error: must specify one of -f and -k", err=True)
        raise typer.Exit(1)
    run_command(options_of(ctx), lambda s: create_from_files(s, filename, recursive=recursive))


async def create_from_files(session: Session, filenames: list[str], *, recursive: bool) -> int:
    failed = False
    for m in load(filenames, recursive=recursive):
        try:
            res = await session.for_manifest(m.obj, m.source)
            await session.client.create(res.api_resource, m.obj, namespace=session.namespace_for(res, m.obj))
        except (errors.ApiError, CliError) as e:
            shown = with_source(e, "creating", m.source) if isinstance(e, errors.ApiError) else e
            print_error(shown, server=session.config.server)
            failed = True
            continue
        typer.echo(f"{res.prefix}/{m.name} created")
    return 1 if failed else 0


@create_app.command("namespace")
def create_namespace(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Create a namespace with the specified name."""
    async def run(s: Session) -> int:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        await s.client.create("namespaces", body)
        typer.echo(f"namespace/{name} created")
        return 0
    run_command(options_of(ctx), run)


create_app.command("ns", hidden=True)(create_namespace)


@create_app.command("deployment")
def create_deployment(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    image: Annotated[list[str], typer.Option("--image", help="Container image(s).")],
    replicas: Annotated[int, typer.Option("--replicas", "-r")] = 1,
    port: Annotated[int | None, typer.Option("--port")] = None,
) -> None:
    """Create a deployment with the specified name."""
    run_command(options_of(ctx), lambda s: _create_deployment(s, name, image, replicas=replicas, port=port))


def deployment_manifest(name: str, images: list[str], *, replicas: int, port: int | None) -> dict[str, Any]:
    """What ``kubectl create deployment`` builds: label ``app=NAME``, one container per image."""
    containers: list[dict[str, Any]] = []
    for image in images:
        base = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]
        container: dict[str, Any] = {"name": base if len(images) > 1 else base, "image": image}
        if port is not None:
            container["ports"] = [{"containerPort": port}]
        containers.append(container)
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}}}}


async def _create_deployment(s: Session, name: str, images: list[str], *, replicas: int, port: int | None) -> int:
    await s.client.create("deployments", deployment_manifest(name, images, replicas=replicas, port=port),
                          namespace=s.namespace)
    typer.echo(f"deployment.apps/{name} created")
    return 0


# ------------------------------------------------------------------------------- scale
@app.command("scale")
def scale_command(
    ctx: typer.Context,
    args: Annotated[list[str], typer.Argument(help="TYPE NAME... or TYPE/NAME...")],
    replicas: Annotated[int, typer.Option("--replicas", help="The new desired number of replicas.")],
    current_replicas: Annotated[int, typer.Option("--current-replicas",
                                                  help="Precondition: the current size (-1: none).")] = -1,
) -> None:
    """Set a new size for a deployment or replica set."""
    run_command(options_of(ctx), lambda s: scale(s, args, replicas=replicas, current_replicas=current_replicas))


async def scale(session: Session, args: list[str], *, replicas: int, current_replicas: int = -1) -> int:
    if replicas < 0:
        raise CliError("error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    failed = False
    for t in await parse_targets(session, args, verb="scale"):
        if not t.names:
            raise CliError("error: resource(s) were provided, but no name was specified")
        ns = session.namespace if t.res.namespaced else None
        for name in t.names:
            try:
                if current_replicas >= 0:
                    current = await session.client.get_scale(t.res.api_resource, name, namespace=ns)
                    actual = int((current.get("spec") or {}).get("replicas") or 0)
                    if actual != current_replicas:
                        raise CliError(f"error: Expected replicas to be {current_replicas}, was {actual}")
                await session.client.patch_scale(t.res.api_resource, name, replicas, namespace=ns)
            except (errors.ApiError, CliError) as e:
                print_error(e, server=session.config.server)
                failed = True
                continue
            typer.echo(f"{t.res.prefix}/{name} scaled")
    return 1 if failed else 0


# ------------------------------------------------------------------------------- api-resources
@app.command("api-resources")
def api_resources_command(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("--output", "-o", help="wide|name")] = "",
    namespaced: Annotated[bool | None, typer.Option("--namespaced/--no-namespaced",
                                                    help="Only namespaced (or only cluster-scoped) types.")] = None,
    api_group: Annotated[str | None, typer.Option("--api-group", help="Only this API group ('' = core).")] = None,
    no_headers: Annotated[bool, typer.Option("--no-headers/--no-no-headers")] = False,
) -> None:
    """Print the supported API resources on the server."""
    async def run(s: Session) -> int:
        chosen = [r for r in sorted(await s.resources(), key=lambda r: (r.group != "", r.group, r.plural))
                  if (namespaced is None or r.namespaced == namespaced) and (api_group is None or r.group == api_group)]
        if output == "name":
            for r in chosen:
                typer.echo(f"{r.plural}.{r.group}" if r.group else r.plural)
            return 0
        rows = [ResourceRow(r.plural, r.short_names, r.api_version, r.namespaced, r.kind, r.verbs, r.categories)
                for r in chosen]
        if output not in ("", "wide"):
            raise CliError(f'error: --output {output} is not available')
        typer.echo(render_api_resources(rows, wide=output == "wide", headers=not no_headers), nl=False)
        return 0
    run_command(options_of(ctx), run)


# ------------------------------------------------------------------------------- version
def client_version() -> dict[str, str]:
    try:
        version = metadata.version("minik8s")
    except metadata.PackageNotFoundError:
        version = "0.0.0"
    return {"major": version.split(".")[0], "minor": version.split(".")[1] if "." in version else "0",
            "gitVersion": f"v{version}-mkctl", "platform": "python"}


@app.command("version")
def version_command(
    ctx: typer.Context,
    client: Annotated[bool, typer.Option("--client/--no-client", help="Client version only.")] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="json|yaml")] = "",
) -> None:
    """Print the client and server version information."""
    async def run(s: Session) -> int:
        doc: dict[str, Any] = {"clientVersion": client_version()}
        error: errors.ApiError | None = None
        if not client:
            try:
                doc["serverVersion"] = await s.client.request("GET", "/version")
            except errors.ApiError as e:
                error = e
        if output in ("json", "yaml"):
            typer.echo(to_json(doc) if output == "json" else to_yaml(doc), nl=False)
        elif output:
            raise CliError("error: --output must be 'yaml' or 'json'")
        else:
            typer.echo(f"Client Version: {doc['clientVersion']['gitVersion']}")
            if "serverVersion" in doc:
                typer.echo(f"Server Version: {doc['serverVersion'].get('gitVersion', '')}")
        if error is not None:
            raise error
        return 0
    run_command(options_of(ctx), run)


# ------------------------------------------------------------------------------- logs
@app.command("logs")
def logs_command(
    ctx: typer.Context,
    pod: Annotated[str, typer.Argument(help="POD or pod/POD")],
    container: Annotated[str | None, typer.Option("--container", "-c")] = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", "-f")] = False,
    tail: Annotated[int, typer.Option("--tail", help="Lines from the end (-1: all).")] = -1,
    previous: Annotated[bool, typer.Option("--previous/--no-previous", "-p")] = False,
    timestamps: Annotated[bool, typer.Option("--timestamps/--no-timestamps")] = False,
) -> None:
    """Print the logs for a container in a pod."""
    async def run(s: Session) -> int:
        typed, _, name = pod.rpartition("/")
        if typed and typed.lower() not in ("pod", "pods", "po"):
            raise CliError(f"error: cannot get the logs of a {typed}: only pods are supported")
        path = ApiClient.path(resource_for("pods"), s.namespace, name, "log")
        params = {"container": container, "follow": "true" if follow else None,
                  "tailLines": tail if tail >= 0 else None, "previous": "true" if previous else None,
                  "timestamps": "true" if timestamps else None}
        text = await s.client.request("GET", path, params=params, headers={"Accept": "*/*"})
        if text:
            typer.echo(text if isinstance(text, str) else to_json(text), nl=not str(text).endswith("\n"))
        return 0
    run_command(options_of(ctx), run)


__all__ = ["client_version", "create_from_files", "deployment_manifest", "scale"]

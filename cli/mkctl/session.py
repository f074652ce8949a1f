"""One mkctl invocation's connection: global flags -> kubeconfig -> ``ApiClient`` + discovery.

Data flow: the global flags (``--server``, ``--kubeconfig``, ``--context``, ``-n``,
``--request-timeout``) -> ``GlobalOptions`` -> ``run_command`` loads the kubeconfig like kubectl
(``machinery.kubeconfig.load_config``), opens one ``ApiClient`` (server ``Warning`` headers go to
stderr as ``Warning: ...``), runs the command's coroutine with a ``Session`` and turns every
failure into kubectl's one-line error on stderr (``format_error``) and exit code 1.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, NoReturn
from urllib.parse import urlsplit

import typer

from machinery import errors, timefmt
from machinery.client import ApiClient, ConnectionFailedError, is_connection_refused
from machinery.kubeconfig import ClientConfig, KubeconfigError, load_config
from machinery.discovery import ResourceInfo, UnknownResourceType, discover, for_kind, resolve
from machinery.schemaview import ANY, Schema, find_kind_schema, patches_strategically

from .manifests import ManifestError


class CliError(Exception):
    """A client-side failure whose message is printed as is (``error: ...``)."""


@dataclass
class GlobalOptions:
    server: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    request_timeout: float | None = None


def parse_duration(value: str) -> float:
    """kubectl's ``--request-timeout``: ``0`` (none), ``30``, ``5s``, ``1m``, ``1h``, ``1m30s``."""
    try:
        return timefmt.parse_duration(value)
    except ValueError as e:
        raise CliError(f"error: {e}") from None


@dataclass
class Session:
    """What a command works with: the client, the effective namespace, the discovered types."""

    client: ApiClient
    config: ClientConfig
    namespace: str
    namespace_explicit: bool
    request_timeout: float | None = None
    _resources: list[ResourceInfo] | None = field(default=None, repr=False)
    _openapi: dict[str, Any] = field(default_factory=dict, repr=False)

    async def resources(self) -> list[ResourceInfo]:
        if self._resources is None:
            self._resources = await discover(self.client)
        return self._resources

    async def resolve(self, typed: str) -> ResourceInfo:
        try:
            return resolve(await self.resources(), typed)
        except UnknownResourceType:
            raise CliError(f'error: the server doesn\'t have a resource type "{typed}"') from None

    async def for_manifest(self, obj: dict[str, Any], source: str) -> ResourceInfo:
        api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
        try:
            return for_kind(await self.resources(), api_version, kind)
        except UnknownResourceType:
            meta = obj.get("metadata") or {}
            raise CliError(
                f'error: resource mapping not found for name: "{meta.get("name", "")}" namespace: '
                f'"{meta.get("namespace", "")}" from "{source}": no matches for kind "{kind}" in version '
                f'"{api_version}"\nensure CRDs are installed first') from None

    async def patch_schema(self, res: ResourceInfo) -> tuple[Schema, bool]:
        """The kind's schema from ``/openapi/v3`` and whether it takes a strategic merge patch
        (kubectl's rule: only when its PATCH operation lists one; custom resources get a JSON
        merge patch). Without a usable document: no schema, JSON merge patch."""
        path = "api/v1" if not res.group else f"apis/{res.group}/{res.version}"
        if path not in self._openapi:
            doc: Any = None
            try:
                index = await self.client.request("GET", "/openapi/v3")
                url = ((index.get("paths") or {}).get(path) or {}).get("serverRelativeURL") if isinstance(index, dict) else None
                if url:
                    doc_path, _, query = str(url).partition("?")
                    params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
                    doc = await self.client.request("GET", doc_path, params=params)
            except errors.ApiError:
                doc = None
            self._openapi[path] = doc if isinstance(doc, dict) else {}
        doc = self._openapi[path]
        schema = find_kind_schema(doc, res.group, res.version, res.kind)
        if schema is None or not patches_strategically(doc, res.group, res.version, res.kind):
            return ANY, False
        return schema, True

    def namespace_for(self, res: ResourceInfo, obj: dict[str, Any] | None = None) -> str | None:
        """The namespace of a manifest (checked against an explicit ``-n``, like kubectl)."""
        if not res.namespaced:
            return None
        in_file = str(((obj or {}).get("metadata") or {}).get("namespace") or "")
        if in_file and self.namespace_explicit and in_file != self.namespace:
            raise CliError(f'error: the namespace from the provided object "{in_file}" does not match the '
                           f'namespace "{self.namespace}". You must pass \'--namespace={in_file}\' to perform '
                           f'this operation.')
        return in_file or self.namespace


def format_error(exc: BaseException, *, server: str) -> str:
    """kubectl's ``StandardErrorMessage`` for one failure, without the trailing newline."""
    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, (ManifestError, KubeconfigError)):
        return f"error: {exc}"
    if isinstance(exc, ConnectionFailedError):
        host = urlsplit(server).netloc or server
        # The cause is the aiohttp exception (ClientConnectorError with an ECONNREFUSED os_error).
        if is_connection_refused(exc.__cause__) or "refused" in str(exc).lower():
            return f"The connection to the server {host} was refused - did you specify the right host or port?"
        return f"Unable to connect to the server: {exc}"
    if isinstance(exc, errors.InvalidError) and exc.causes:
        joined = [f"{c.field}: {c.message}" if c.field else c.message for c in exc.causes]
        text = joined[0] if len(joined) == 1 else "[" + ", ".join(joined) + "]"
        return f'The {exc.kind or "object"} "{exc.name or ""}" is invalid: {text}'
    if isinstance(exc, errors.ApiError):
        reason = type(exc).reason if type(exc) is not errors.ApiError else ""
        return f"Error from server ({reason}): {exc.message}" if reason else f"Error from server: {exc.message}"
    return f"error: {exc}"


def print_error(exc: BaseException, *, server: str) -> None:
    typer.echo(format_error(exc, server=server), err=True)


def make_session(opts: GlobalOptions) -> Session:
    config = load_config(kubeconfig=opts.kubeconfig, context=opts.context, server=opts.server)
    timeout = opts.request_timeout if opts.request_timeout else 30.0
    client = ApiClient(config, timeout=timeout,
                       on_warning=lambda w: typer.echo(f"Warning: {w}", err=True))
    return Session(client=client, config=config, namespace=opts.namespace or config.namespace,
                   namespace_explicit=opts.namespace is not None, request_timeout=opts.request_timeout)


Command = Callable[[Session], Awaitable[int]]


def run_command(opts: GlobalOptions, command: Command) -> NoReturn:
    """Run one command's coroutine; exit with its code, or 1 after printing the error."""
    server = opts.server or ""
    try:
        session = make_session(opts)
        server = session.config.server
    except (KubeconfigError, CliError) as e:
        print_error(e, server=server)
        raise typer.Exit(1)

    async def main() -> int:
        async with session.client:
            return await command(session)

    try:
        code = asyncio.run(main())
    except KeyboardInterrupt:
        raise typer.Exit(130)
    except (errors.ApiError, CliError, ManifestError, KubeconfigError) as e:
        print_error(e, server=server)
        raise typer.Exit(1)
    sys.stdout.flush()
    raise typer.Exit(code)


__all__ = ["CliError", "GlobalOptions", "Session", "format_error", "make_session", "parse_duration",
           "print_error", "run_command"]

"""``mkctl cp SRC DST``: files and directories to and from a container, through exec and tar.

Data flow, like kubectl's: ``parse_file_spec`` (``[[NAMESPACE/]POD:]PATH``) ->
- into a pod: ``test -d DEST`` in the pod (a directory: the file goes inside it) -> ``make_tar``
  (entries named as they must land, kubectl's ``recursiveTar``) -> stdin of ``tar -xmf - -C DIR``
  (``--no-same-permissions --no-same-owner`` with ``--no-preserve``), ended by the v5 CLOSE message;
- out of a pod: ``tar cf - PATH`` -> its stdout in memory (its stderr goes to mkctl's stdout, as
  kubectl does) -> ``untar_all`` (the remote prefix stripped, entries outside DEST skipped with
  kubectl's warning, symlinks skipped).
Exec goes through ``exec.remote_command`` (``machinery.streamclient``).
"""

from __future__ import annotations

import glob
import io
import os
import posixpath
import sys
import tarfile
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from machinery.streamclient import RemoteIO, bytes_source, remote_command_params, write_sink

from .app import app, options_of
from .exec import choose_container, finish, remote_command
from .session import CliError, Session, run_command

SPEC_FORMAT = "error: filespec must match the canonical format: [[namespace/]pod:]file/path"


# ---------------------------------------------------------------------------- paths (pure)
@dataclass(frozen=True)
class FileSpec:
    path: str
    pod: str = ""
    namespace: str = ""


def strip_trailing_slash(path: str) -> str:
    return path[:-1] if path and path != "/" and path.endswith("/") else path


def strip_path_shortcuts(path: str) -> str:
    """kubectl's ``stripPathShortcuts``: leading ``../`` removed, ``.``/``..`` empty, no leading ``/``."""
    while path.startswith("../"):
        path = path[3:]
    if path in (".", ".."):
        path = ""
    return path[1:] if path.startswith("/") else path


def parse_file_spec(arg: str) -> FileSpec:
    i = arg.find(":")
    if i == 0:
        raise CliError(SPEC_FORMAT)
    if i < 0:
        return FileSpec(strip_trailing_slash(arg))
    pod, path = arg[:i], strip_trailing_slash(arg[i + 1:].replace("\\", "/"))
    pieces = pod.split("/")
    if len(pieces) == 1:
        return FileSpec(path, pod=pieces[0])
    if len(pieces) == 2:
        return FileSpec(path, pod=pieces[1], namespace=pieces[0])
    raise CliError(SPEC_FORMAT)


def extract_command(dest: str, *, no_preserve: bool) -> list[str]:
    cmd = ["tar", "--no-same-permissions", "--no-same-owner", "-xmf", "-"] if no_preserve else ["tar", "-xmf", "-"]
    directory = strip_trailing_slash(posixpath.dirname(dest))
    return [*cmd, "-C", directory] if directory else cmd


def make_tar(src: str, dest: str) -> bytes:
    """The archive kubectl's ``makeTar`` writes: ``src`` (a glob) as ``basename(dest)`` and below."""
    buf = io.BytesIO()
    src, dest = os.path.normpath(src), posixpath.normpath(dest)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for match in glob.glob(src):
            _add(tar, match, posixpath.basename(dest) or dest)
    return buf.getvalue()


def _add(tar: tarfile.TarFile, path: str, name: str) -> None:
    info = tar.gettarinfo(path, arcname=name)
    if info.isdir():
        children = sorted(os.listdir(path))
        if not children:
            tar.addfile(info)
        for child in children:
            _add(tar, os.path.join(path, child), posixpath.join(name, child))
    elif info.isreg():
        with open(path, "rb") as f:
            tar.addfile(info, f)
    else:
        tar.addfile(info)  # symlinks (their target in the header), fifos


def os_error(e: OSError, op: str) -> CliError:
    """A local file error as Go words it (``open /x: is a directory``)."""
    reason = e.strerror or str(e)
    return CliError(f"error: {op} {e.filename or ''}: {reason[:1].lower()}{reason[1:]}")


def untar_all(data: bytes, *, prefix: str, dest: str, namespace: str, pod: str, src: str) -> list[str]:
    """Write the archive's entries below ``dest``; kubectl's warnings for what was skipped.
    A member outside ``prefix`` means the archive was tampered with (an error)."""
    warnings: list[str] = []
    symlink_hint = True
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            if not member.name.startswith(prefix):
                raise CliError("error: tar contents corrupted")
            rest = member.name[len(prefix):].replace("\\", "/")
            target = os.path.normpath(os.path.join(dest, rest.lstrip("/"))) if rest.strip("/") else os.path.normpath(dest)
            relative = os.path.relpath(target, os.path.normpath(dest))
            if relative != "." and relative != strip_path_shortcuts(relative):
                warnings.append(f'warning: file "{target}" is outside target destination, skipping')
                continue
            try:
                os.makedirs(os.path.dirname(target) or ".", mode=0o755, exist_ok=True)
                if member.isdir():
                    os.makedirs(target, mode=0o755, exist_ok=True)
                    continue
            except OSError as e:
                raise os_error(e, "mkdir") from None
            if member.issym() or member.islnk():
                if symlink_hint:
                    warnings.append(f'warning: skipping symlink: "{target}" -> "{member.linkname}" (consider using '
                                    f'"mkctl exec -n "{namespace}" "{pod}" -- tar cf - "{src}" | tar xf -")')
                    symlink_hint = False
                else:
                    warnings.append(f'warning: skipping symlink: "{target}" -> "{member.linkname}"')
                continue
            f = tar.extractfile(member)
            try:
                with open(target, "wb") as out:
                    if f is not None:
                        out.write(f.read())
            except OSError as e:
                raise os_error(e, "open") from None
    return warnings


# ---------------------------------------------------------------------------- copying (I/O)
async def _pod(session: Session, spec: FileSpec, container: str | None) -> tuple[dict[str, Any], str]:
    pod = await session.client.get("pods", spec.pod, namespace=spec.namespace or session.namespace)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise CliError(f"error: cannot exec into a container in a completed pod; current phase is {phase}")
    chosen, note = choose_container(pod, container)
    if note:
        typer.echo(note, err=True)
    return pod, str(chosen.get("name"))


async def copy_to_pod(session: Session, src: FileSpec, dest: FileSpec, *, container: str | None,
                      no_preserve: bool) -> int:
    if not os.path.lexists(src.path):
        raise CliError(f"error: {src.path} doesn't exist in local filesystem")
    pod, name = await _pod(session, dest, container)
    target = dest.path
    probe = await remote_command(session, pod, "exec", remote_command_params(
        command=["test", "-d", target], container=name, stdin=False, stdout=True, stderr=True, tty=False), RemoteIO())
    if probe.code == 0:  # a directory: the source goes inside it
        target = posixpath.join(target, os.path.basename(os.path.normpath(src.path)))
    try:
        archive = make_tar(src.path, target)
    except OSError as e:
        raise os_error(e, "open") from None
    out, err = sys.stdout.buffer, sys.stderr.buffer
    params = remote_command_params(command=extract_command(target, no_preserve=no_preserve), container=name,
                                   stdin=True, stdout=True, stderr=True, tty=False)
    outcome = await remote_command(session, pod, "exec", params, RemoteIO(
        stdin=bytes_source(archive), stdout=write_sink(out.write, out.flush), stderr=write_sink(err.write, err.flush)))
    return finish(outcome)


async def copy_from_pod(session: Session, src: FileSpec, dest: FileSpec, *, container: str | None) -> int:
    pod, name = await _pod(session, src, container)
    received = bytearray()
    out = sys.stdout.buffer

    def collect(data: bytes) -> None:
        received.extend(data)
    params = remote_command_params(command=["tar", "cf", "-", src.path], container=name, stdin=False, stdout=True,
                                   stderr=True, tty=False)
    outcome = await remote_command(session, pod, "exec", params, RemoteIO(
        stdout=collect, stderr=write_sink(out.write, out.flush)))  # kubectl shows tar's stderr on stdout
    if outcome.code:
        return finish(outcome)
    prefix = strip_path_shortcuts(posixpath.normpath(src.path.lstrip("/")))
    meta = pod.get("metadata") or {}
    for warning in untar_all(bytes(received), prefix=prefix, dest=dest.path, namespace=str(meta.get("namespace")),
                             pod=str(meta.get("name")), src=src.path):
        typer.echo(warning, err=True)
    return 0


async def run_cp(session: Session, args: list[str], *, container: str | None, no_preserve: bool) -> int:
    if len(args) != 2:
        raise CliError("error: source and destination are required")
    src, dest = parse_file_spec(args[0]), parse_file_spec(args[1])
    if src.pod and dest.pod:
        raise CliError("error: one of src or dest must be a local file specification")
    if not src.path or not dest.path:
        raise CliError("error: filepath can not be empty")
    if src.pod:
        return await copy_from_pod(session, src, dest, container=container)
    if dest.pod:
        return await copy_to_pod(session, src, dest, container=container, no_preserve=no_preserve)
    raise CliError("error: one of src or dest must be a remote file specification")


@app.command("cp")
def cp_command(
    ctx: typer.Context,
    args: Annotated[list[str], typer.Argument(help="<file-spec-src> <file-spec-dest>", show_default=False)],
    container: Annotated[str | None, typer.Option("--container", "-c", help="Container name. If omitted, use the "
                                                  "kubectl.kubernetes.io/default-container annotation or the first one.")] = None,
    no_preserve: Annotated[bool, typer.Option("--no-preserve/--no-no-preserve", help="The copied file/directory's "
                                              "ownership and permissions will not be preserved in the container")] = False,
) -> None:
    """Copy files and directories to and from containers."""
    run_command(options_of(ctx), lambda s: run_cp(s, list(args), container=container, no_preserve=no_preserve))


__all__ = ["FileSpec", "extract_command", "make_tar", "parse_file_spec", "run_cp", "strip_path_shortcuts", "untar_all"]

"""The ``mkctl`` typer application and its global flags, which (as in kubectl) go anywhere.

Data flow: argv -> ``normalize_args`` (global flags such as ``-n ns`` or ``--server=URL`` are
moved in front of the verb, and kubectl's ``--flag=true|false`` spelling of boolean flags becomes
``--flag`` / ``--no-flag``) -> click parses -> the callback stores ``GlobalOptions`` in the
context -> the verb (registered by the command modules) runs through ``session.run_command``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .session import CliError, GlobalOptions, parse_duration, print_error

# Global flags that take a value, in every spelling kubectl accepts.
_VALUE_FLAGS = {"-s": "--server", "--server": "--server", "--kubeconfig": "--kubeconfig",
                "--context": "--context", "-n": "--namespace", "--namespace": "--namespace",
                "--request-timeout": "--request-timeout"}
# Boolean flags that kubectl users write as --flag=false.
BOOL_FLAGS = {"wait", "ignore-not-found", "all", "all-namespaces", "watch", "watch-only", "show-labels",
              "no-headers", "force", "recursive", "client", "namespaced", "output-watch-events", "now",
              "ignore-daemonsets", "delete-emptydir-data", "disable-eviction"}


def normalize_args(args: list[str]) -> list[str]:
    """Hoist global flags (with their values) before the verb; rewrite ``--bool=false`` flags."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        name, eq, value = arg.partition("=")
        if name in _VALUE_FLAGS:
            if eq:
                hoisted += [_VALUE_FLAGS[name], value]
            elif i + 1 < len(args):
                hoisted += [_VALUE_FLAGS[name], args[i + 1]]
                i += 1
            else:
                rest.append(arg)  # let click report the missing value
        elif arg.startswith("-n") and not arg.startswith("--") and len(arg) > 2:
            hoisted += ["--namespace", arg[2:]]
        elif arg.startswith("-s") and not arg.startswith("--") and len(arg) > 2 and "://" in arg:
            hoisted += ["--server", arg[2:]]
        elif eq and name.startswith("--") and name[2:] in BOOL_FLAGS and value.lower() in ("true", "false"):
            rest.append(name if value.lower() == "true" else f"--no-{name[2:]}")
        else:
            rest.append(arg)
        i += 1
    return hoisted + rest


class KubectlGroup(TyperGroup):
    """A typer group that accepts global flags after the verb, like kubectl's cobra commands."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, normalize_args(list(args)))


app = typer.Typer(cls=KubectlGroup, add_completion=False, no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="mkctl controls the minik8s cluster manager, kubectl-style.")


@app.callback()
def global_options(
    ctx: typer.Context,
    server: Annotated[str | None, typer.Option("--server", "-s", help="The address and port of the API server.")] = None,
    kubeconfig: Annotated[str | None, typer.Option("--kubeconfig", help="Path to the kubeconfig file.")] = None,
    context: Annotated[str | None, typer.Option("--context", help="The kubeconfig context to use.")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="The namespace scope.")] = None,
    request_timeout: Annotated[str | None, typer.Option(
        "--request-timeout", help="How long to wait for a server answer (0 = the default; 5s, 1m, ...).")] = None,
) -> None:
    timeout: float | None = None
    if request_timeout:
        try:
            timeout = parse_duration(request_timeout) or None
        except CliError as e:
            print_error(e, server=server or "")
            raise typer.Exit(1)
    ctx.obj = GlobalOptions(server=server, kubeconfig=kubeconfig, context=context, namespace=namespace,
                            request_timeout=timeout)


def options_of(ctx: typer.Context) -> GlobalOptions:
    found: Any = ctx.find_object(GlobalOptions)
    return found if isinstance(found, GlobalOptions) else GlobalOptions()


__all__ = ["BOOL_FLAGS", "KubectlGroup", "app", "normalize_args", "options_of"]

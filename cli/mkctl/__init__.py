"""mkctl, the kubectl-like command line of minik8s: ``main`` is the ``mkctl`` console script.

Data flow: argv -> ``app`` (typer; global flags hoisted, see ``app.py``) -> one verb module
(``get``, ``apply``, ``describe_cmd``, ``delete``, ``misc``, ``rollout``, ``gitops``, ``drain``) -> ``Session`` (kubeconfig +
``machinery.client.ApiClient`` + discovery) -> the API server -> pure formatting
(``printing``, ``describe``, ``threeway`` for apply patches) -> stdout; errors as kubectl's
one-line messages on stderr with exit code 1.
"""

from __future__ import annotations

from . import apply, autoscale, delete, describe_cmd, drain, get, gitops, misc, rollout, top  # noqa: F401  (they register the verbs)
from . import createjob  # noqa: F401  (mkctl create job)
from . import createquota  # noqa: F401  (mkctl create quota)
from . import cp, exec, portforward  # noqa: F401  (mkctl exec, attach, cp, port-forward)
from .app import app


def main() -> None:
    app(prog_name="mkctl")


__all__ = ["app", "main"]

"""The pv-protection controller's entry for the controller-manager: a deleting PersistentVolume
keeps its ``kubernetes.io/pv-protection`` finalizer while it is Bound (``controllers.pvcprotection``
holds both protection controllers)."""

from __future__ import annotations

from controllers.manager import ControllerContext
from controllers.pvcprotection import run_volumes


async def run(ctx: ControllerContext) -> None:
    await run_volumes(ctx)

"""ServiceAccounts controller: every namespace has a ``default`` ServiceAccount.

After Kubernetes' pkg/controller/serviceaccount (``ServiceAccountsController``). Data flow: the
namespaces and serviceaccounts informers -> a namespace is enqueued when it appears or changes,
and when its ``default`` ServiceAccount is deleted -> reconcile(namespace): an active namespace
whose cache has no ``default`` ServiceAccount gets one created (AlreadyExists is fine: the cache
was behind); a terminating namespace is left alone (nothing can be created in it).
"""

from __future__ import annotations

import logging

from machinery import errors
from machinery.controller import Controller, Result
from machinery.informer import Obj

from .manager import ControllerContext

log = logging.getLogger(__name__)

NAMESPACES = ("v1", "namespaces")
SERVICE_ACCOUNTS = ("v1", "serviceaccounts")
DEFAULT_ACCOUNTS = ("default",)


def missing_accounts(namespace: Obj | None, existing: set[str]) -> list[str]:
    """The ServiceAccounts to create in this namespace (pure)."""
    if namespace is None:
        return []
    meta, status = namespace.get("metadata") or {}, namespace.get("status") or {}
    if meta.get("deletionTimestamp") or status.get("phase") == "Terminating":
        return []
    return [name for name in DEFAULT_ACCOUNTS if name not in existing]


class ServiceAccountsController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.namespaces = ctx.informers.informer(NAMESPACES)
        self.accounts = ctx.informers.informer(SERVICE_ACCOUNTS)
        self.controller: Controller[str] = Controller("serviceaccounts", self.reconcile, workers=ctx.settings.workers)
        self.namespaces.add_handler(self._on_namespace, lambda old, new: self._on_namespace(new), None)
        self.accounts.add_handler(None, None, self._on_account_deleted)

    def _on_namespace(self, ns: Obj) -> None:
        self.controller.enqueue(str((ns.get("metadata") or {}).get("name") or ""))

    def _on_account_deleted(self, sa: Obj) -> None:
        meta = sa.get("metadata") or {}
        if meta.get("name") in DEFAULT_ACCOUNTS:
            self.controller.enqueue(str(meta.get("namespace") or ""))

    async def reconcile(self, name: str) -> Result | None:
        existing = {name_ for name_ in DEFAULT_ACCOUNTS if self.accounts.get(f"{name}/{name_}") is not None}
        for account in missing_accounts(self.namespaces.get(name), existing):
            try:
                await self.client.create(SERVICE_ACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                            "metadata": {"name": account, "namespace": name}},
                                         namespace=name)
                log.info("created ServiceAccount %s/%s", name, account)
            except errors.AlreadyExistsError:
                pass
            except (errors.ForbiddenError, errors.NotFoundError):
                return None  # the namespace is terminating or gone
        return None


async def run(ctx: ControllerContext) -> None:
    ctl = ServiceAccountsController(ctx)
    ctx.informers.start()
    await ctl.namespaces.wait_synced()
    await ctl.accounts.wait_synced()
    await ctl.controller.run()

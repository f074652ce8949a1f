"""ServiceAccounts controller: which accounts to create (pure), and a default account in every namespace."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from controllers import serviceaccounts
from controllers.serviceaccounts import missing_accounts
from machinery import errors
from tests.controllers.controller_helpers import eventually, running


@pytest.mark.parametrize(("namespace", "existing", "expected"), [
    ({"metadata": {"name": "a"}, "status": {"phase": "Active"}}, set(), ["default"]),
    ({"metadata": {"name": "a"}, "status": {"phase": "Active"}}, {"default"}, []),
    ({"metadata": {"name": "a", "deletionTimestamp": "2026-01-01T00:00:00Z"}}, set(), []),
    ({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}}, set(), []),
    (None, set(), []),
])
def test_missing_accounts(namespace: dict[str, Any] | None, existing: set[str], expected: list[str]) -> None:
    assert missing_accounts(namespace, existing) == expected


async def test_every_namespace_gets_a_default_account_back(apiserver: Any) -> None:
    name = f"sa-{uuid.uuid4().hex[:8]}"
    async with running(serviceaccounts, apiserver.url) as client:
        await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

        async def has_default() -> bool:
            try:
                await client.get(("v1", "serviceaccounts"), "default", namespace=name)
                return True
            except errors.NotFoundError:
                return False
        await eventually(has_default, what="the default ServiceAccount")
        assert await has_default()  # kube-system and default have one too
        for ns in ("default", "kube-system"):
            await client.get(("v1", "serviceaccounts"), "default", namespace=ns)
        await client.delete(("v1", "serviceaccounts"), "default", namespace=name)
        await eventually(has_default, what="the default ServiceAccount recreated")
        await client.delete("namespaces", name)

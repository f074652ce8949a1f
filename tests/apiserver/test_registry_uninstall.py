"""A request that looked a resource up just before it stopped being served (its CRD deleted) gets 404.

Data flow: the app resolves the resource from the registry's table, then the registry reads its
watch cache; a CRD deleted in between removes both (``Registry.uninstall``). That request must be
answered 404, as for any resource that is not served, not 500 (a 500 from an unexpected error also
makes the server drop the client's keep-alive connection).
"""

from __future__ import annotations

import pytest

from apiserver.registry import Registry
from apiserver.resources import default_resources
from apiserver.storage.etcd import EtcdStorage
from machinery import errors
from tests.cluster import Etcd


async def test_a_resource_uninstalled_after_lookup_is_not_found(etcd: Etcd) -> None:
    storage = EtcdStorage(etcd.url)
    registry = Registry(storage, default_resources())
    await registry.start()
    try:
        res = registry.resources.lookup("", "v1", "configmaps")
        assert res is not None
        await registry.uninstall("", "configmaps")
        with pytest.raises(errors.NotFoundError):
            await registry.list(res, "default")
        with pytest.raises(errors.NotFoundError):
            await registry.get(res, "default", "x")
    finally:
        await registry.stop()
        await storage.close()

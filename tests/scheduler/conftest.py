"""A private etcd + apiserver for the scheduler tests: the scheduler sees every Node in the
cluster, so exact "0/N nodes are available" messages need a cluster no other test adds nodes to."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.cluster import ApiServerProcess, Etcd


@pytest.fixture(scope="module")
def private_apiserver() -> Iterator[ApiServerProcess]:
    etcd = Etcd.start()
    try:
        server = ApiServerProcess.start(etcd.url)
        try:
            yield server
        finally:
            server.stop()
    finally:
        etcd.stop()

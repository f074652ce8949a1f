"""Issue 13: the kubelet's API answers only the API server (its bearer token), a Docker node.

This module's own cluster (tests/e2e/streamcluster.py: one Docker kubelet ``ex13-auth-*``) and one
long-lived pod ``quiet``. The kubelet is reached where the API server reaches it: the Node's
InternalIP and ``status.daemonEndpoints.kubeletEndpoint.Port``.

Data flow: the API server presents ``Authorization: Bearer <token>`` (Secret
kube-system/minik8s-kubelet-client, machinery.kubeletauth) on every call to a kubelet; the kubelet
compares it with the Secret it watches.

What it proves: a WebSocket exec (and attach, port-forward) straight to the kubelet without a token
is refused with 401, and so is a token that is not valid (a TokenReview says so: 401 as the real kubelet); so are its plain HTTP endpoints (logs,
stats), while ``/healthz`` stays open; the same exec through the API server runs (``hi`` on stdout,
a Success status); the Secret's token straight to the kubelet runs it too (so the refusals are
about the credential, not the request).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Iterator
from urllib.parse import urlencode

import httpx
import pytest
import websocket

from tests.e2e.streamcluster import StreamCluster, container, pod, stream_cluster

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.timeout(120)]

POD = "quiet"
V5 = "v5.channel.k8s.io"
EXEC_QUERY = urlencode([("command", "echo"), ("command", "hi"), ("stdout", "true"), ("stderr", "true")])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamCluster]:
    with stream_cluster(tmp_path_factory, "auth") as c:
        yield c


@pytest.fixture(scope="module")
def ns(cluster: StreamCluster) -> str:
    return cluster.populated(pod(POD, container("main")))


@pytest.fixture(scope="module")
def kubelet(cluster: StreamCluster, ns: str) -> str:
    """``host:port`` of the pod's kubelet, as its Node publishes it."""
    ip, port = cluster.node_endpoint()
    return f"{ip}:{port}"


def ws_exec(url: str, headers: list[str], protocol: str = V5) -> tuple[bytes, dict[str, Any] | None]:
    """Runs a channel-protocol exec over a WebSocket: (stdout, the status on the error channel)."""
    ws = websocket.create_connection(url, subprotocols=[protocol], header=headers, timeout=15)
    out, status = b"", None
    try:
        assert ws.getsubprotocol() == protocol
        while True:
            try:
                opcode, data = ws.recv_data()
            except websocket.WebSocketConnectionClosedException:
                break
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            if data and data[0] == 1:
                out += data[1:]
            elif data and data[0] == 3:
                status = json.loads(data[1:])
    finally:
        ws.close()
    return out, status


def refused_with(url: str, headers: list[str], protocol: str) -> int:
    """The HTTP status of a refused WebSocket upgrade (fails if the upgrade is accepted)."""
    try:
        ws = websocket.create_connection(url, subprotocols=[protocol], header=headers, timeout=15)
    except websocket.WebSocketBadStatusException as e:
        return int(e.status_code)
    ws.close()
    raise AssertionError(f"{url}: the kubelet accepted the upgrade ({headers})")


WRONG = "Bearer " + base64.urlsafe_b64encode(b"not-the-api-servers-token").decode()
REFUSALS = [pytest.param(None, 401, id="no-token"), pytest.param(WRONG, 401, id="wrong-token")]


@pytest.mark.parametrize(("authorization", "status"), REFUSALS)
@pytest.mark.parametrize(("path", "protocol"), [
    ("/exec/{ns}/quiet/main?" + EXEC_QUERY, V5),
    ("/attach/{ns}/quiet/main?stdout=true", V5),
    ("/portforward/{ns}/quiet?ports=80", "portforward.k8s.io"),
], ids=["exec", "attach", "portforward"])
def test_kubelet_refuses_streams_without_the_api_servers_token(
        kubelet: str, ns: str, path: str, protocol: str, authorization: str | None, status: int) -> None:
    headers = [f"Authorization: {authorization}"] if authorization else []
    assert refused_with(f"ws://{kubelet}{path.format(ns=ns)}", headers, protocol) == status


@pytest.mark.parametrize(("authorization", "status"), REFUSALS)
@pytest.mark.parametrize("path", ["/containerLogs/{ns}/quiet/main", "/stats/summary"])
def test_kubelet_refuses_plain_requests_without_the_token(
        kubelet: str, ns: str, path: str, authorization: str | None, status: int) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    assert httpx.get(f"http://{kubelet}{path.format(ns=ns)}", headers=headers, timeout=10).status_code == status


def test_kubelet_healthz_needs_no_token(kubelet: str) -> None:
    r = httpx.get(f"http://{kubelet}/healthz", timeout=10)
    assert r.status_code == 200


def test_exec_through_the_api_server_runs(cluster: StreamCluster, ns: str) -> None:
    out, status = ws_exec(f"ws://{cluster.url.split('://', 1)[1]}/api/v1/namespaces/{ns}/pods/{POD}/exec?{EXEC_QUERY}",
                          [])
    assert out == b"hi\n"
    assert status is not None and status.get("status") == "Success", status


def test_the_api_servers_token_opens_the_kubelet(cluster: StreamCluster, ns: str, kubelet: str) -> None:
    from machinery.kubeletauth import SECRET_NAME, SECRET_NAMESPACE, token_of

    token = token_of(cluster.get(f"/api/v1/namespaces/{SECRET_NAMESPACE}/secrets/{SECRET_NAME}"))
    assert token, "the API server wrote no kubelet credential Secret"
    out, status = ws_exec(f"ws://{kubelet}/exec/{ns}/{POD}/main?{EXEC_QUERY}", [f"Authorization: Bearer {token}"])
    assert out == b"hi\n"
    assert status is not None and status.get("status") == "Success", status

"""The kubelet's API is the API server's alone: kubelet.credential and kubelet.server's middleware.

Pure: ``decide`` over a table of Authorization headers. Real: a ``minik8s kubelet`` process (its
own node, a test pod network, its API on 127.0.0.1 on a free port, published on the Node) against
the session's apiserver, which holds the credential Secret kube-system/minik8s-kubelet-client.
Without the token the kubelet's exec and logs endpoints answer 401, with a token the API server's
TokenReview does not accept 401 too (kubelet.authn; identities with grants: test_kubelet_authn), with
the Secret's token the request goes through (a pod's logs; exec reaches its handler), as it does
through the API server's pods/log; /healthz is open. Clean-up: the kubelet (by its pid), its containers (node label), the network, the Node.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from pathlib import Path
from typing import Any, Iterator

import aiohttp
import httpx
import pytest

from kubelet.credential import FORBIDDEN, NOT_READY, UNAUTHORIZED, Denial, decide
from kubelet.runtime import LABEL_NODE, DockerRuntime, NetworkInfo
from machinery import remotecommand as rc
from machinery.kubeletauth import SECRET_NAME, SECRET_NAMESPACE, authorization_header, secret_body, token_of
from tests.cluster import ApiServerProcess, ComponentProcess
from tests.dockertest import IMAGE, docker_runtime, make_test_network
from tests.waiting import wait_for


@pytest.mark.parametrize(("header", "expected", "answer"), [
    (None, "tok", UNAUTHORIZED),
    ("", "tok", UNAUTHORIZED),
    ("Basic dXNlcjpwYXNz", "tok", UNAUTHORIZED),
    ("Bearer", "tok", UNAUTHORIZED),
    ("Bearer   ", "tok", UNAUTHORIZED),
    ("Bearer other", "tok", FORBIDDEN),
    ("Bearer tok2", "tok", FORBIDDEN),
    ("Bearer tok", "tok", None),
    ("bearer tok", "tok", None),
    ("Bearer tok ", "tok", None),
    ("Bearer tok", None, NOT_READY),
    (None, None, NOT_READY),
])
def test_decide(header: str | None, expected: str | None, answer: Denial | None) -> None:
    assert decide(header, expected) == answer


def test_denials_are_kubernetes_codes() -> None:
    assert (UNAUTHORIZED.status, FORBIDDEN.status, NOT_READY.status) == (401, 403, 503)
    assert NOT_READY.message == "the kubelet has not read its credential yet"


# ---------------------------------------------------------------------------------------------
# A real kubelet process

NODE = f"cred-{uuid.uuid4().hex[:8]}"
LABELS = {LABEL_NODE: NODE}


@pytest.fixture(scope="module")
def runtime() -> Iterator[DockerRuntime]:
    yield from docker_runtime(LABELS)


@pytest.fixture(scope="module")
def network(runtime: DockerRuntime) -> Iterator[NetworkInfo]:
    info = make_test_network(runtime, f"minik8s-test-{NODE}", LABELS, engine_lower_half=True)
    yield info
    for c in runtime.list(LABELS):  # the pod's containers outlive the kubelet process
        runtime.remove(c.id, force=True)
    runtime.remove_network(info.name)


def api_server_token(api: httpx.Client) -> str:
    """The credential the apiserver presents (made here when this apiserver has not made it yet)."""
    url = f"/api/v1/namespaces/{SECRET_NAMESPACE}/secrets/{SECRET_NAME}"
    r = api.get(url)
    if r.status_code == 404:
        api.post(f"/api/v1/namespaces/{SECRET_NAMESPACE}/secrets", json=secret_body("made-by-test-credential"))
        r = api.get(url)
    assert r.status_code == 200, r.text
    token = token_of(r.json())
    assert token
    return token


class Node:
    def __init__(self, api: httpx.Client, proc: ComponentProcess) -> None:
        self.api = api
        self.proc = proc
        self.first_answer = 0  # the status of the first call with the token, right after the port is published

    def url(self) -> str:
        node = self.api.get(f"/api/v1/nodes/{NODE}").json()
        port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        assert port > 0
        return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def kubelet(apiserver: ApiServerProcess, network: NetworkInfo, runtime: DockerRuntime,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    root: Path = tmp_path_factory.mktemp("kubelet-cred")
    api = httpx.Client(base_url=apiserver.url, timeout=15)
    token = api_server_token(api)
    proc = ComponentProcess.start("kubelet", "--server", apiserver.url, "--node-name", NODE,
                                  "--pod-network-name", network.name, "--pod-network-subnet", network.subnet,
                                  "--kubelet-port", "0", "--address", "127.0.0.1", "--root-dir", str(root),
                                  "--lease-renew-interval", "1", "--sync-interval", "0.5", "--no-service-proxy")
    try:
        def published() -> bool:
            r = api.get(f"/api/v1/nodes/{NODE}")
            return r.status_code == 200 and bool(r.json()["status"].get("daemonEndpoints"))

        wait_for(published, timeout=30, what="the kubelet's Node", diagnose=proc.logs)
        node = Node(api, proc)
        node.first_answer = httpx.get(f"{node.url()}/metrics/resource", headers=authorization_header(token)).status_code
        yield node
    finally:
        proc.stop()
        api.delete(f"/api/v1/nodes/{NODE}")
        api.close()


@pytest.fixture(scope="module")
def pod(kubelet: Node) -> Iterator[dict[str, Any]]:
    api, ns = kubelet.api, f"cred-{uuid.uuid4().hex[:8]}"
    assert api.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                "metadata": {"name": ns}}).status_code == 201
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "talker", "namespace": ns},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 0, "containers": [
                {"name": "main", "image": IMAGE, "command": ["sh", "-c", "echo hello-from-pod; sleep 3600"]}]}}
    assert api.post(f"/api/v1/namespaces/{ns}/pods", json=body).status_code == 201
    wait_for(lambda: api.get(f"/api/v1/namespaces/{ns}/pods/talker").json()["status"].get("phase") == "Running",
             timeout=30, what="the pod Running", diagnose=kubelet.proc.logs)
    yield {"namespace": ns, "name": "talker"}
    api.delete(f"/api/v1/namespaces/{ns}")


def test_requests_without_the_api_servers_credential_are_refused(kubelet: Node, pod: dict[str, Any]) -> None:
    token = api_server_token(kubelet.api)
    base, ns = kubelet.url(), pod["namespace"]
    paths = [f"/exec/{ns}/talker/main?command=echo&command=hi&stdout=1",
             f"/attach/{ns}/talker/main?stdout=1", f"/portforward/{ns}/talker?ports=80",
             f"/containerLogs/{ns}/talker/main", "/stats/summary", "/metrics/resource"]
    with httpx.Client(base_url=base, timeout=15) as k:
        assert (k.get("/healthz").status_code, k.get("/healthz").text) == (200, "ok")
        # The kubelet read the Secret before it published its port: no 503 window for the API server.
        assert kubelet.first_answer == 200
        for path in paths:
            r = k.get(path)
            assert (r.status_code, r.text.strip()) == (401, UNAUTHORIZED.message), path
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
            # Another token goes to the API server's TokenReview (kubelet.authn): not valid, 401.
            r = k.get(path, headers={"Authorization": "Bearer not-the-token"})
            assert (r.status_code, r.text.strip()) == (401, UNAUTHORIZED.message), path
            r = k.get(path, headers={"Authorization": "Basic " + base64.b64encode(b"a:b").decode()})
            assert r.status_code == 401, path
            r = k.get(path, headers=authorization_header(token))
            assert r.status_code not in (401, 403, 503), (path, r.status_code, r.text)
        r = k.get(paths[3], headers=authorization_header(token))
        assert (r.status_code, r.text) == (200, "hello-from-pod\n")


def test_the_api_server_presents_the_credential(kubelet: Node, pod: dict[str, Any]) -> None:
    """The same kubelet, reached the way users reach it: the API server's pods/log proxy."""
    r = kubelet.api.get(f"/api/v1/namespaces/{pod['namespace']}/pods/talker/log")
    assert (r.status_code, r.text) == (200, "hello-from-pod\n")


async def _ws_exec(url: str, headers: dict[str, str]) -> tuple[bytes, int | None]:
    """A v5.channel.k8s.io exec straight to the kubelet: (stdout, exit code)."""
    out, code = b"", None
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=20)) as s:
        async with s.ws_connect(url, protocols=(rc.V5,)) as ws:
            async for msg in ws:
                if msg.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    break
                channel, payload = rc.decode(ws.protocol, msg.data)
                if channel == 1:
                    out += payload
                elif channel == 3:
                    code = rc.exit_code_of(ws.protocol, payload)
    return out, code


def test_exec_upgrade_needs_the_credential(kubelet: Node, pod: dict[str, Any]) -> None:
    token = api_server_token(kubelet.api)
    url = (f"{kubelet.url()}/exec/{pod['namespace']}/talker/main"
           "?command=sh&command=-c&command=echo+hi%3B+exit+3&stdout=1&stderr=1")
    for headers, status in (({}, 401), ({"Authorization": "Bearer wrong"}, 401)):
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            asyncio.run(_ws_exec(url, headers))
        assert e.value.status == status
    assert asyncio.run(_ws_exec(url, authorization_header(token))) == (b"hi\n", 3)

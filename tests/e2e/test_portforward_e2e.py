"""Issue 13's port-forward acceptance: the real ``kubectl port-forward`` and the official client.

This module's own cluster (tests/e2e/streamcluster.py: one Docker kubelet ``ex13-pf-*``), one
long-lived pod ``web`` (busybox httpd on 8080 serving a random token and 50000 numbered lines,
a second httpd on 8081) and a Service ``web`` (port 80 -> targetPort 8080) selecting it. The local
ports are free ones, never fixed; every kubectl started here is stopped by its pid.

Data flow under test: kubectl (SPDY/3.1 in WebSocket binary messages, ``portforward.k8s.io``) or the
official client's ``portforward()`` (the WebSocket channel protocol) --> apiserver
``pods/portforward`` --relayed--> the kubelet's ``/portforward`` --> a TCP connection to
localhost:PORT inside the pod's network namespace.

What it proves: one kubectl forwards two ports and an HTTP request on each reaches the pod (a
~290 KB body intact); 20 concurrent requests through one forward all succeed; ``port-forward
svc/web`` reaches the pod behind the Service's port; forwarding to a port nobody listens on prints
kubectl's error with the kubelet's reason (Kubernetes' words) and ends that kubectl, while a request
on the good forward still works afterwards; the
official client's ``portforward`` socket carries an HTTP exchange; ``kubectl proxy`` serves the API
and the pod's HTTP through ``services/web:80/proxy/`` and ``pods/web:8080/proxy/``.
"""

from __future__ import annotations

import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import httpx
import pytest

from tests.cluster import free_port
from tests.e2e.streamcluster import Background, StreamCluster, container, pod, stream_cluster

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.timeout(180)]

POD = "web"
TOKEN = uuid.uuid4().hex
NUMBERS = "".join(f"{i}\n" for i in range(1, 50001))
SCRIPT = ("mkdir -p /www /www2 && printf %s \"$TOKEN\" > /www/index.html && seq 1 50000 > /www/numbers.txt"
          " && echo second > /www2/index.html && httpd -p 8081 -h /www2 && exec httpd -f -p 8080 -h /www")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamCluster]:
    with stream_cluster(tmp_path_factory, "pf") as c:
        yield c


@pytest.fixture(scope="module")
def ns(cluster: StreamCluster) -> str:
    """The namespace of the pod ``web`` (Ready: its httpd answers) and the Service ``web``."""
    return cluster.populated(
        pod(POD, container("httpd", SCRIPT, env=[{"name": "TOKEN", "value": TOKEN}],
                           ports=[{"containerPort": 8080, "name": "http"}, {"containerPort": 8081}],
                           readinessProbe={"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1}),
            labels={"app": "web"}),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})


def forward(cluster: StreamCluster, ns: str, target: str, *pairs: tuple[int, int]) -> Background:
    """``kubectl port-forward TARGET LOCAL:REMOTE...`` once kubectl says it listens on every local port."""
    pf = cluster.background("port-forward", target, "-n", ns, *(f"{local}:{remote}" for local, remote in pairs))
    try:
        for local, remote in pairs:
            pf.expect(rf"^Forwarding from 127\.0\.0\.1:{local} -> \d+$", timeout=30)
    except BaseException:
        pf.stop()
        raise
    return pf


@pytest.fixture(scope="module")
def good(cluster: StreamCluster, ns: str) -> Iterator[tuple[int, int]]:
    """One kubectl forwarding two free local ports to the pod's 8080 and 8081 (for the whole module)."""
    ports = (free_port(), free_port())
    with forward(cluster, ns, f"pod/{POD}", (ports[0], 8080), (ports[1], 8081)):
        yield ports


def get(port: int, path: str = "/index.html") -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=15)


def test_port_forward_pod_reaches_the_pod_on_each_port(good: tuple[int, int]) -> None:
    r = get(good[0])
    assert (r.status_code, r.text) == (200, TOKEN)
    r = get(good[0], "/numbers.txt")
    assert r.status_code == 200 and r.text == NUMBERS  # ~290 KB through the tunnel, intact
    r = get(good[1])
    assert (r.status_code, r.text) == (200, "second\n")


def test_20_concurrent_requests_through_one_forward(good: tuple[int, int]) -> None:
    start = threading.Barrier(20)

    def one(_: int) -> tuple[int, str]:
        start.wait(15)
        r = get(good[0])
        return r.status_code, r.text

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(20)))
    assert results == [(200, TOKEN)] * 20


def test_port_forward_service(cluster: StreamCluster, ns: str) -> None:
    local = free_port()
    with forward(cluster, ns, "svc/web", (local, 80)) as pf:
        r = get(local)
        assert (r.status_code, r.text) == (200, TOKEN)
    # kubectl resolves the Service's port 80 to the pod's targetPort 8080
    assert pf.expect(rf"^Forwarding from 127\.0\.0\.1:{local} -> 8080$")


def test_kubectl_proxy_serves_the_api_and_the_service_and_pod_behind_it(cluster: StreamCluster, ns: str) -> None:
    """``kubectl proxy``: the API, and the Docker pod's HTTP through services/proxy and pods/proxy."""
    with cluster.background("proxy", "--port=0") as proxy:
        port = int(proxy.expect(r"^Starting to serve on 127\.0\.0\.1:(\d+)$", timeout=30)[0].group(1))
        base = f"http://127.0.0.1:{port}"
        assert "v1" in httpx.get(f"{base}/api", timeout=10).json()["versions"]
        for path in (f"services/{POD}:80", f"services/{POD}:http", f"pods/{POD}:8080"):
            r = httpx.get(f"{base}/api/v1/namespaces/{ns}/{path}/proxy/index.html", timeout=10)
            assert (r.status_code, r.text) == (200, TOKEN), (path, r.status_code, r.text[:300])


def test_forward_to_a_closed_port_reports_it_and_the_good_forward_still_works(
        cluster: StreamCluster, ns: str, good: tuple[int, int]) -> None:
    local = free_port()
    with forward(cluster, ns, f"pod/{POD}", (local, 9999)) as pf:
        with socket.create_connection(("127.0.0.1", local), timeout=15) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            try:
                reply = s.recv(1024)  # kubectl closes the connection (a hang fails with a timeout)
            except ConnectionResetError:
                reply = b""
        assert reply == b"", reply  # nothing answers in the pod: the connection closes with no data
        # kubectl's report, with the kubelet's reason (Kubernetes: "error forwarding port 9999 to pod ...")
        pf.expect(rf"(?i)error occurred forwarding {local} -> 9999.*error forwarding port 9999 to pod",
                  stream="stderr", timeout=15)
        assert pf.wait(15) == 1  # kubectl 1.32 ends that forward: "error: lost connection to pod"
        assert "lost connection to pod" in pf.text("stderr")
    r = get(good[0])
    assert (r.status_code, r.text) == (200, TOKEN)


def test_official_client_portforward(cluster: StreamCluster, ns: str) -> None:
    from kubernetes.stream import portforward

    api = cluster.core_api()
    try:
        pf: Any = portforward(api.connect_get_namespaced_pod_portforward, POD, ns, ports="8080")
        try:
            sock = pf.socket(8080)
            sock.settimeout(15)
            sock.sendall(b"GET /index.html HTTP/1.0\r\nHost: web\r\n\r\n")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
            sock.close()
            assert reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0], reply[:200]
            assert reply.endswith(TOKEN.encode())
            assert pf.error(8080) is None
        finally:
            pf.close()
    finally:
        api.api_client.close()

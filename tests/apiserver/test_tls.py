"""The API server over TLS: kubectl and the official client with the generated kubeconfig, the client
certificate in the ASGI scope (HTTP and WebSocket), the plain port on 127.0.0.1 only, the
default/kubernetes Service on the secure port, and clear start-up errors for bad files."""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import kubernetes
import pytest
import uvicorn
import websocket

from apiserver import bootstrap, server, tlsserver
from apiserver.encryption import load_transformer
from apiserver.registry import Registry
from apiserver.resources import default_resources
from apiserver.storage.etcd import EtcdStorage
from cli.processes import component_command
from machinery import pki
from tests.cluster import free_port
from tests.securecluster import SecureCluster

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    # Every address: the secure port must then be reachable at 127.0.0.2 too, the plain one must not.
    # The advertised address is only published in default/kubernetes' Endpoints (TEST-NET-1: no test
    # here sends anything to it).
    c = SecureCluster.start(tmp_path_factory.mktemp("tls"), extra_args=[
        "--bind-address", "0.0.0.0", "--advertise-address", "192.0.2.10"])
    yield c
    c.stop()


def test_kubectl_with_the_admin_kubeconfig(cluster: SecureCluster) -> None:
    r = cluster.kubectl("admin", "get", "ns", "-o", "name")
    assert r.returncode == 0, r.stderr
    assert "namespace/kube-system" in r.stdout.split()


def test_official_client_with_the_admin_kubeconfig(cluster: SecureCluster) -> None:
    api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig("admin")))
    try:
        names = {ns.metadata.name for ns in kubernetes.client.CoreV1Api(api).list_namespace().items
                 if ns.metadata is not None}
    finally:
        api.close()
    assert {"default", "kube-system"} <= names


def test_a_certificate_of_another_ca_is_refused_in_the_handshake(cluster: SecureCluster, tmp_path: Path) -> None:
    other = pki.issue(pki.new_ca("someone-else"), common_name="kubernetes-admin", organizations=["system:masters"])
    (tmp_path / "c.crt").write_bytes(other.cert_pem)
    (tmp_path / "c.key").write_bytes(other.key_pem)
    ctx = cluster.ssl_context()
    ctx.load_cert_chain(tmp_path / "c.crt", tmp_path / "c.key")
    with pytest.raises(httpx.HTTPError):  # TLS 1.3 reports the alert on the first read
        httpx.get(f"{cluster.url}/api", verify=ctx, timeout=5)


def test_the_server_certificate_names_the_cluster(cluster: SecureCluster) -> None:
    ctx = ssl.create_default_context(cafile=str(cluster.pki.ca_cert))
    port = int(cluster.url.rsplit(":", 1)[1])
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                         server_hostname="kubernetes.default.svc") as s:
        assert s.version() in ("TLSv1.2", "TLSv1.3")


def test_plain_port_only_on_loopback_secure_port_everywhere(cluster: SecureCluster) -> None:
    insecure_port = int(cluster.insecure_url.rsplit(":", 1)[1])
    secure_port = int(cluster.url.rsplit(":", 1)[1])
    assert httpx.get(f"{cluster.insecure_url}/api/v1/namespaces/default").status_code == 200  # no credential
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.2:{insecure_port}/readyz", timeout=5)
    ctx = cluster.ssl_context("admin")
    ctx.check_hostname = False  # 127.0.0.2 is not in the certificate; reaching it is the point
    assert httpx.get(f"https://127.0.0.2:{secure_port}/readyz", verify=ctx, timeout=5).status_code == 200


def test_default_kubernetes_service_targets_the_secure_port(cluster: SecureCluster) -> None:
    secure_port = int(cluster.url.rsplit(":", 1)[1])
    with cluster.client("admin") as http:
        svc = http.get("/api/v1/namespaces/default/services/kubernetes").json()
        assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": secure_port}]
        eps = http.get("/api/v1/namespaces/default/endpoints/kubernetes")
    assert eps.status_code == 200, eps.text
    assert eps.json()["subsets"] == [{"addresses": [{"ip": "192.0.2.10"}],
                                      "ports": [{"name": "https", "port": secure_port, "protocol": "TCP"}]}]


async def test_a_restart_with_tls_moves_the_service_port(cluster: SecureCluster) -> None:
    """The Service written by a plain-HTTP API server gets the secure port back (Kubernetes' reconciler)."""
    secure_port = int(cluster.url.rsplit(":", 1)[1])
    storage = EtcdStorage(cluster.etcd.url, transformer=load_transformer(str(cluster.pki.encryption_config)))
    registry = Registry(storage, default_resources())
    await registry.start()
    res = registry.resources.by_kind("Service", "")
    assert res is not None
    try:
        for port in (8080, secure_port):  # ends where the running API server wants it
            await bootstrap.ensure_system_objects(registry, port=port)
            svc = (await registry.get(res, "default", "kubernetes")).obj
            assert [p["targetPort"] for p in svc["spec"]["ports"]] == [port]
            assert svc["spec"]["clusterIP"] == "172.28.128.1"
    finally:
        await registry.stop()
        await storage.close()


# ------------------------------------------------------------------ the TLS extension in the scope
async def _echo(scope: Any, receive: Any, send: Any) -> None:
    """Answers with what the scope's TLS extension says (HTTP body or one WebSocket message)."""
    tls = (scope.get("extensions") or {}).get("tls")
    body = json.dumps({"chain": tlsserver.client_cert_chain(scope), "tls": tls is not None,
                       "name": (tls or {}).get("client_cert_name")})
    if scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body.encode()})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": body})
        await send({"type": "websocket.close"})


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> pki.ClusterPKI:
    return pki.ensure_cluster_pki(tmp_path_factory.mktemp("pki"), hosts=[])


@pytest.fixture(scope="module")
def echo_server(files: pki.ClusterPKI) -> Iterator[tuple[str, pki.ClusterPKI]]:
    made = files
    port = free_port()
    config = tlsserver.listener_config(_echo, host="127.0.0.1", port=port, log_level="warning", tls=tlsserver.TLSFiles(
        str(made.apiserver_cert), str(made.apiserver_key), str(made.ca_cert)))
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "echo server did not start"
        time.sleep(0.05)
    yield f"127.0.0.1:{port}", made
    srv.should_exit = True
    thread.join(10)


def _ctx(made: pki.ClusterPKI, who: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(made.ca_cert))
    if who:
        ctx.load_cert_chain(made.client_cert(who), made.client_key(who))
    return ctx


@pytest.mark.parametrize("who", ["admin", "node:n9", None])
def test_client_certificate_reaches_the_http_scope(echo_server: tuple[str, pki.ClusterPKI], who: str | None) -> None:
    addr, made = echo_server
    if who and who.startswith("node:"):
        made = pki.ensure_cluster_pki(made.directory, nodes=["n9"])
    with httpx.Client(verify=_ctx(made, who)) as http:
        got = [http.get(f"https://{addr}/x").json() for _ in range(2)]  # two requests, one connection
    expected = [made.client_cert(who).read_text()] if who else []
    assert [g["chain"] for g in got] == [expected, expected]
    assert got[0]["tls"] is True
    if who:
        cn, _ = pki.identity_subject(who)
        assert f"CN={cn}" in got[0]["name"]


@pytest.mark.parametrize("who", ["scheduler", None])
def test_client_certificate_reaches_the_websocket_scope(echo_server: tuple[str, pki.ClusterPKI],
                                                        who: str | None) -> None:
    addr, made = echo_server
    sslopt: dict[str, Any] = {"ca_certs": str(made.ca_cert)}
    if who:
        sslopt |= {"certfile": str(made.client_cert(who)), "keyfile": str(made.client_key(who))}
    ws = websocket.create_connection(f"wss://{addr}/ws", sslopt=sslopt, timeout=5)
    try:
        got = json.loads(ws.recv())
    finally:
        ws.close()
    assert got["chain"] == ([made.client_cert(who).read_text()] if who else [])
    assert got["tls"] is True


def test_plain_listener_has_no_tls_extension() -> None:
    assert tlsserver.client_cert_chain({"type": "http", "extensions": {}}) == []
    assert tlsserver.client_cert_chain({"type": "http"}) == []


# ------------------------------------------------------------------ start-up errors
@pytest.mark.parametrize(("change", "message"), [
    ({"tls_cert_file": "/nonexistent/x.crt"}, "--tls-cert-file: open /nonexistent/x.crt: No such file or directory"),
    ({"tls_private_key_file": ""}, "--tls-cert-file and --tls-private-key-file must be given together"),
    ({"client_ca_file": "/nonexistent/ca.crt"}, "--client-ca-file: open /nonexistent/ca.crt"),
    ({"token_auth_file": "/nonexistent/t.csv"}, "--token-auth-file: open /nonexistent/t.csv"),
    ({"tls_private_key_file": "SA_KEY"}, "not a matching PEM certificate and key"),
    ({"client_ca_file": "SA_PUB"}, "--client-ca-file: no PEM certificate"),
])
def test_bad_files_are_refused_before_serving(files: pki.ClusterPKI, change: dict[str, str], message: str) -> None:
    values = {"tls_cert_file": str(files.apiserver_cert), "tls_private_key_file": str(files.apiserver_key),
              "client_ca_file": str(files.ca_cert)}
    paths = {"SA_KEY": str(files.sa_key), "SA_PUB": str(files.sa_pub)}
    values |= {k: paths.get(v, v) for k, v in change.items()}
    with pytest.raises(server.SettingsError, match=re.escape(message)):
        server.check_settings(server.ApiServerSettings(
            tls_cert_file=values["tls_cert_file"], tls_private_key_file=values["tls_private_key_file"],
            client_ca_file=values["client_ca_file"], token_auth_file=values.get("token_auth_file", "")))


def test_apiserver_command_exits_with_a_clear_message() -> None:
    r = subprocess.run(component_command("apiserver", "--tls-cert-file", "/nonexistent/apiserver.crt",
                                         "--tls-private-key-file", "/nonexistent/apiserver.key"),
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 1
    assert "Error: --tls-cert-file: open /nonexistent/apiserver.crt: No such file or directory" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_service_port_follows_tls() -> None:
    assert server.service_port(server.ApiServerSettings(port=8080)) == 8080
    assert server.service_port(server.ApiServerSettings(port=8080, secure_port=6443, tls_cert_file="c",
                                                        tls_private_key_file="k")) == 6443


@pytest.mark.parametrize(("field", "content", "message"), [
    ("authorization_mode", None, "--authorization-mode: authorization-mode 'Foo' is not a valid mode"),
    ("token_auth_file", "garbage\n", "--token-auth-file/--service-account-key-file/"),
    ("encryption_provider_config", "apiVersion: x\n", "--encryption-provider-config: error while parsing file"),
    ("audit_policy_file", "apiVersion: x\n", "--audit-log-path/--audit-policy-file: invalid audit policy file"),
])
def test_bad_file_contents_are_refused_by_build(tmp_path: Path, field: str, content: str | None, message: str) -> None:
    value = "Foo"
    if content is not None:
        value = str(tmp_path / "f")
        Path(value).write_text(content)
    settings = server.ApiServerSettings(etcd_servers="http://127.0.0.1:1", audit_log_path=str(tmp_path / "audit.log"))
    setattr(settings, field, value)
    with pytest.raises(server.SettingsError, match=re.escape(message)):
        server.build(settings)


def test_sigterm_while_etcd_is_away_ends_the_process(files: pki.ClusterPKI, tmp_path: Path) -> None:
    log = tmp_path / "apiserver.log"
    proc = subprocess.Popen(component_command(
        "apiserver", "--etcd-servers", f"http://127.0.0.1:{free_port()}", "--insecure-port", "0",
        "--secure-port", str(free_port()), "--tls-cert-file", str(files.apiserver_cert),
        "--tls-private-key-file", str(files.apiserver_key)), stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while "Waiting for application startup" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        proc.terminate()
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "stopped during start-up" in log.read_text()
    assert "Traceback" not in log.read_text()

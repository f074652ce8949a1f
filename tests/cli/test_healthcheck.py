"""cli.healthcheck, what every compose health check runs: https against the cluster CA (the API
server's anonymous /readyz), refused for a server the CA did not sign, and its command line."""

from __future__ import annotations

import http.server
import ssl
import threading
from pathlib import Path
from typing import Iterator

import pytest

from cli.healthcheck import check, main, parse_args
from machinery.pki import ensure_cluster_pki


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"ok" if self.path == "/readyz" else b"not found"
        self.send_response(200 if self.path == "/readyz" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An https server with the API server's certificate of a fresh cluster PKI: (base URL, the CA file)."""
    pki = ensure_cluster_pki(tmp_path_factory.mktemp("pki"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.apiserver_cert, pki.apiserver_key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", pki.ca_cert
    finally:
        server.shutdown()
        server.server_close()


def test_https_against_the_cluster_ca(tls_server: tuple[str, Path], tmp_path: Path) -> None:
    url, ca = tls_server
    assert check(f"{url}/readyz", cafile=str(ca)) == (True, "ok")
    ok, text = check(f"{url}/nothing", cafile=str(ca))
    assert not ok and "404" in text
    # Another cluster's CA (or the system's trust store) does not trust this server.
    other = ensure_cluster_pki(tmp_path / "other").ca_cert
    ok, text = check(f"{url}/readyz", cafile=str(other))
    assert not ok and "CERTIFICATE_VERIFY_FAILED" in text
    ok, text = check(f"{url}/readyz")
    assert not ok and "CERTIFICATE_VERIFY_FAILED" in text
    assert check(f"{url}/readyz", insecure=True) == (True, "ok")
    assert main([f"{url}/readyz", "--cacert", str(ca)]) == 0
    assert main([f"{url}/readyz", f"--cacert={other}"]) == 1


@pytest.mark.parametrize(("args", "parsed"), [
    (["http://x/healthz"], ("http://x/healthz", None, False)),
    (["https://x/readyz", "--cacert", "/pki/ca.crt"], ("https://x/readyz", "/pki/ca.crt", False)),
    (["--cacert=/pki/ca.crt", "https://x/readyz"], ("https://x/readyz", "/pki/ca.crt", False)),
    (["https://x/readyz", "--insecure"], ("https://x/readyz", None, True)),
    ([], None),
    (["a", "b"], None),
    (["https://x", "--cacert"], None),
    (["https://x", "--verbose"], None),
    (["https://x", "--cacert", "ca", "--insecure"], None),
])
def test_command_line(args: list[str], parsed: tuple[str, str | None, bool] | None) -> None:
    assert parse_args(args) == parsed
    if parsed is None:
        assert main(args) == 2

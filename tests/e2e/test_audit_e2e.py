"""The audit log and Secrets at rest end to end (tests/securecluster.py: a real etcd and ``minik8s
apiserver`` over TLS with its EncryptionConfiguration, here also ``--audit-log-path`` and a
``--audit-policy-file`` asking RequestResponse for everything): the real kubectl creates and reads a
Secret as the admin, is refused (403) as a user without a grant, a bad token gets 401, a watch is
logged at ResponseStarted and ResponseComplete; the Secret's value is in no audit line, in no
line of the API server's log and not in etcd (read with aetcd), which holds the aesgcm prefix."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest
import yaml

from apiserver.storage.etcd import EtcdStorage
from tests.securecluster import SecureCluster

pytestmark = pytest.mark.e2e

VALUE = f"v4lue-{uuid.uuid4().hex[:12]}"
POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"], "rules": [
    {"level": "None", "nonResourceURLs": ["/readyz", "/healthz", "/livez"]},
    {"level": "RequestResponse"},
]}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SecureCluster, Path]]:
    d = tmp_path_factory.mktemp("audit-e2e")
    (d / "policy.yaml").write_text(yaml.safe_dump(POLICY))
    log = d / "audit.log"
    c = SecureCluster.start(d, extra_args=["--audit-log-path", str(log), "--audit-policy-file", str(d / "policy.yaml")])
    yield c, log
    c.stop()


def events(log: Path, want: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The log's events once ``want(events)`` holds (the writer thread appends in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        evs = [orjson.loads(line) for line in log.read_bytes().splitlines()] if log.exists() else []
        if want(evs) or time.monotonic() > deadline:
            return evs
        time.sleep(0.1)


def test_audit_and_secrets_at_rest(cluster: tuple[SecureCluster, Path]) -> None:
    c, log = cluster
    ns = f"audit-{uuid.uuid4().hex[:6]}"
    assert c.kubectl("admin", "create", "namespace", ns).returncode == 0
    made = c.kubectl("admin", "-n", ns, "create", "secret", "generic", "s", f"--from-literal=password={VALUE}")
    assert made.returncode == 0, made.stderr
    got = c.kubectl("admin", "-n", ns, "get", "secret", "s", "-o", "jsonpath={.data.password}")
    assert base64.b64decode(got.stdout).decode() == VALUE
    described = c.kubectl("admin", "-n", ns, "describe", "secret", "s")
    assert f"password:  {len(VALUE)} bytes" in described.stdout and VALUE not in described.stdout
    refused = c.kubectl("alice", "-n", ns, "get", "secret", "s")
    assert refused.returncode != 0 and 'User "alice" cannot get resource "secrets"' in refused.stderr
    with c.client("anonymous") as stranger:
        r = stranger.get(f"/api/v1/namespaces/{ns}/pods", headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401
    with c.client("admin") as admin:
        r = admin.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json={"metadata": {"name": "robot"}})
        assert r.status_code == 201
        r = admin.get(f"/api/v1/namespaces/{ns}/configmaps", params={"watch": "1", "timeoutSeconds": "1"})
        assert r.status_code == 200
        watch_id = r.headers["Audit-ID"]

    evs = events(log, lambda evs: sum(e["auditID"] == watch_id for e in evs) == 2)
    mine = [e for e in evs if ns in e["requestURI"]]
    create = next(e for e in mine if e["verb"] == "create" and e["objectRef"]["resource"] == "secrets")
    assert create["user"]["username"] == "kubernetes-admin" and "system:masters" in create["user"]["groups"]
    assert create["level"] == "Metadata" and "requestObject" not in create  # Secrets: never bodies
    assert create["responseStatus"]["code"] == 201 and create["userAgent"].startswith("kubectl")
    ns_create = next(e for e in evs if e["verb"] == "create" and e.get("objectRef", {}).get("resource") == "namespaces"
                     and e.get("responseObject", {}).get("metadata", {}).get("name") == ns)
    assert ns_create["level"] == "RequestResponse"  # kubectl sent protobuf: its request body is not logged
    sa = next(e for e in mine if e["verb"] == "create" and e["objectRef"]["resource"] == "serviceaccounts")
    assert sa["requestObject"] == {"metadata": {"name": "robot"}} and sa["responseObject"]["metadata"]["uid"]
    forbidden = next(e for e in mine if e["responseStatus"]["code"] == 403)
    assert forbidden["objectRef"] == {"resource": "secrets", "namespace": ns, "name": "s", "apiVersion": "v1"}
    assert forbidden["responseStatus"]["reason"] == "Forbidden"
    assert next(e for e in mine if e["responseStatus"]["code"] == 401)["user"] == {}
    assert [e["stage"] for e in evs if e["auditID"] == watch_id] == ["ResponseStarted", "ResponseComplete"]
    assert not [e for e in evs if e["requestURI"].startswith("/readyz")]  # the policy's None rule

    assert VALUE.encode() not in log.read_bytes()
    assert base64.b64encode(VALUE.encode()) not in log.read_bytes()
    assert VALUE not in c.apiserver.logs()

    async def raw() -> bytes:
        storage = EtcdStorage(c.etcd.url)
        try:
            return (await storage.get(f"/registry/core/secrets/{ns}/s".encode())).value
        finally:
            await storage.close()
    stored = asyncio.run(raw())
    assert stored.startswith(b"k8s:enc:aesgcm:v1:") and VALUE.encode() not in stored
    assert base64.b64encode(VALUE.encode()) not in stored

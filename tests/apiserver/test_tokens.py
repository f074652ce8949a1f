"""The TokenRequest subresource (``POST serviceaccounts/{name}/token``): the JWT's claims and
signature, Kubernetes' validation and errors, one signing key for every apiserver of a cluster,
and the real ``kubectl create token`` (which sends the request as protobuf)."""

from __future__ import annotations

import base64
import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from apiserver.auth import jws
from apiserver.tokens import ISSUER, claims_of, decode_request, defaulted_spec, token_claims, validate
from machinery.kubeconfig import write_kubeconfig
from tests.cluster import ApiServerProcess, Etcd

Obj = dict[str, Any]


def _header(token: str) -> Obj:
    head = token.split(".")[0]
    return dict(orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))))


# ------------------------------------------------------------------------------ pure parts
def test_sign_and_verify() -> None:
    key = jws.new_private_key()
    token = jws.sign({"sub": "x"}, key)
    assert claims_of(token) == {"sub": "x"} and _header(token) == {"alg": "RS256", "kid": jws.key_id(key.public_key())}
    assert jws.verify(jws.parse(token), [key.public_key()])
    assert not jws.verify(jws.parse(token), [jws.new_private_key().public_key()])


@pytest.mark.parametrize("spec,message", [
    ({"expirationSeconds": 60}, "may not specify a duration less than 10 minutes"),
    ({"expirationSeconds": (1 << 32) + 1}, "may not specify a duration larger than 2^32 seconds"),
    ({"boundObjectRef": {"kind": "Deployment", "name": "x"}}, 'supported values: "Pod", "Secret", "Node"'),
    ({"audiences": [""]}, "audiences must be non-empty"),
])
def test_validation(spec: Obj, message: str) -> None:
    full = {**defaulted_spec({}), **spec}
    assert any(message in c.message for c in validate(full))


def test_defaults_and_claims() -> None:
    spec = defaulted_spec({})
    assert spec == {"expirationSeconds": 3600, "audiences": [ISSUER]} and validate(spec) == []
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    claims = token_claims(namespace="ns", service_account={"metadata": {"name": "sa", "uid": "u1"}},
                          spec={**spec, "boundObjectRef": {"kind": "Pod", "name": "p"}},
                          bound={"metadata": {"name": "p", "uid": "u2"}}, now=now)
    assert claims["sub"] == "system:serviceaccount:ns:sa" and claims["aud"] == [ISSUER]
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"] == int(now.timestamp())
    assert claims["kubernetes.io"] == {"namespace": "ns", "serviceaccount": {"name": "sa", "uid": "u1"},
                                       "pod": {"name": "p", "uid": "u2"}}


@pytest.mark.parametrize("body,message", [
    ({"kind": "Pod"}, "does not match the expected kind (TokenRequest)"),
    ({"apiVersion": "v1"}, "does not match the expected API version (authentication.k8s.io/v1)"),
    ([1], "expected a TokenRequest"),
])
def test_decode_rejects(body: Any, message: str) -> None:
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode_request(body)


# ------------------------------------------------------------------------------ over HTTP
def _sa(http: httpx.Client, ns: str, name: str = "robot") -> Obj:
    r = http.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json={"metadata": {"name": name}})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _request(http: httpx.Client, ns: str, name: str, **spec: Any) -> httpx.Response:
    return http.post(f"/api/v1/namespaces/{ns}/serviceaccounts/{name}/token",
                     json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})


def test_token_request(http: httpx.Client, namespace: str) -> None:
    sa = _sa(http, namespace)
    before = int(time.time())
    r = _request(http, namespace, "robot", audiences=["vault"], expirationSeconds=1200)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["kind"] == "TokenRequest" and answer["apiVersion"] == "authentication.k8s.io/v1"
    assert answer["spec"] == {"audiences": ["vault"], "expirationSeconds": 1200}
    claims = claims_of(answer["status"]["token"])
    assert claims["sub"] == f"system:serviceaccount:{namespace}:robot" and claims["aud"] == ["vault"]
    assert claims["iss"] == ISSUER and before <= claims["iat"] <= claims["exp"] - 1200 + 2
    assert claims["kubernetes.io"] == {"namespace": namespace,
                                       "serviceaccount": {"name": "robot", "uid": sa["metadata"]["uid"]}}
    expires = datetime.strptime(answer["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert int(expires.replace(tzinfo=timezone.utc).timestamp()) == claims["exp"]


def test_token_bound_to_a_pod(http: httpx.Client, namespace: str) -> None:
    _sa(http, namespace)
    r = http.post(f"/api/v1/namespaces/{namespace}/pods", json={
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert r.status_code == 201, r.text
    uid = r.json()["metadata"]["uid"]
    r = _request(http, namespace, "robot", boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "p"})
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["boundObjectRef"]["uid"] == uid
    assert claims_of(r.json()["status"]["token"])["kubernetes.io"]["pod"] == {"name": "p", "uid": uid}
    r = _request(http, namespace, "robot", boundObjectRef={"kind": "Pod", "name": "p", "uid": "other"})
    assert r.status_code == 409 and "does not match the UID in record" in r.json()["message"]
    r = _request(http, namespace, "robot", boundObjectRef={"kind": "Pod", "name": "absent"})
    assert r.status_code == 404 and r.json()["message"] == 'pods "absent" not found'


def test_token_errors(http: httpx.Client, namespace: str) -> None:
    r = _request(http, namespace, "nobody")
    assert r.status_code == 404 and r.json()["message"] == 'serviceaccounts "nobody" not found'
    _sa(http, namespace)
    r = _request(http, namespace, "robot", expirationSeconds=60)
    assert r.status_code == 422
    assert r.json()["message"] == ('TokenRequest.authentication.k8s.io "robot" is invalid: spec.expirationSeconds: '
                                   "Invalid value: 60: may not specify a duration less than 10 minutes")
    assert r.json()["details"]["causes"][0]["field"] == "spec.expirationSeconds"
    assert http.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/robot/token").status_code == 405
    r = http.post(f"/api/v1/namespaces/{namespace}/serviceaccounts/robot/token", content=b"{not json",
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_every_apiserver_signs_with_the_one_key(etcd: Etcd, apiserver: ApiServerProcess, http: httpx.Client,
                                                namespace: str) -> None:
    _sa(http, namespace)
    second = ApiServerProcess.start(etcd.url)
    try:
        with httpx.Client(base_url=second.url, timeout=30) as other:
            a = _request(http, namespace, "robot").json()["status"]["token"]
            b = _request(other, namespace, "robot").json()["status"]["token"]
    finally:
        second.stop()
    assert a != b and _header(a)["kid"] == _header(b)["kid"]


def test_kubectl_create_token(apiserver: ApiServerProcess, http: httpx.Client, namespace: str,
                              tmp_path: Path) -> None:
    _sa(http, namespace)
    kubeconfig = tmp_path / "kubeconfig"
    write_kubeconfig(kubeconfig, server=apiserver.url)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)}

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env, timeout=60)

    p = kubectl("create", "token", "robot", "-n", namespace, "--duration", "20m", "--audience", "https://x.example")
    assert p.returncode == 0, p.stderr
    claims = claims_of(p.stdout.strip())
    assert claims["sub"] == f"system:serviceaccount:{namespace}:robot" and claims["aud"] == ["https://x.example"]
    assert claims["exp"] - claims["iat"] == 1200
    r = http.post(f"/api/v1/namespaces/{namespace}/pods", json={
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert r.status_code == 201, r.text
    p = kubectl("create", "token", "robot", "-n", namespace, "--bound-object-kind", "Pod", "--bound-object-name", "p")
    assert p.returncode == 0, p.stderr
    assert claims_of(p.stdout.strip())["kubernetes.io"]["pod"] == {"name": "p", "uid": r.json()["metadata"]["uid"]}
    p = kubectl("create", "token", "ghost", "-n", namespace)
    assert p.returncode != 0 and 'serviceaccounts "ghost" not found' in p.stderr
    p = kubectl("create", "token", "robot", "-n", namespace, "--duration", "1m")
    assert p.returncode != 0 and "may not specify a duration less than 10 minutes" in p.stderr

"""Secrets encrypted at rest: the EncryptionConfiguration (parsing, validation, providers, rotation)
as pure tables, then the API server's registry and HTTP app over a real etcd of this module,
with the raw etcd values read back through a transformer-less ``EtcdStorage`` (aetcd)."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import httpx
import orjson
import pytest
import yaml

from apiserver.app import create_app
from apiserver.encryption import (
    DecryptError, EncryptionConfigError, Transformer, load_transformer, parse_config,
)
from apiserver.registry import Registry
from apiserver.resources import default_resources
from apiserver.storage.etcd import EtcdStorage
from tests.cluster import Etcd

K1 = base64.b64encode(b"1" * 32).decode()
K2 = base64.b64encode(b"2" * 16).decode()
SECRET_KEY = b"/registry/core/secrets/ns/s"
PLAIN = b'{"kind":"Secret","data":{"token":"czNjcjN0"}}'


def config(*providers: dict[str, Any], resources: list[str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
            "resources": [{"resources": resources or ["secrets"], "providers": list(providers)}]}


def gcm(*keys: tuple[str, str]) -> dict[str, Any]:
    return {"aesgcm": {"keys": [{"name": n, "secret": s} for n, s in keys]}}


IDENTITY: dict[str, Any] = {"identity": {}}


# ------------------------------------------------------------------------------ configuration
@pytest.mark.parametrize("doc,message", [
    ({"kind": "EncryptionConfig", "apiVersion": "v1"}, "got unexpected config type"),
    ({**config(IDENTITY), "resources": []}, "at least one resources is required"),
    (config(gcm(("k", "not base64!"))), "keys[0].secret: Invalid value: \"REDACTED\": secrets must be base64 encoded"),
    (config(gcm(("k", base64.b64encode(b"short").decode()))), "got 5, expected one of [16 24 32]"),
    (config(gcm(("", K1))), "keys[0].name: Required value"),
    (config({"aesgcm": {"keys": []}}), "aesgcm.keys: Required value"),
    (config({**gcm(("k", K1)), **IDENTITY}), "more than one provider specified in a single element"),
    (config({"secretbox": {"keys": [{"name": "k", "secret": K1}]}}), "supports the aesgcm, aescbc and identity"),
    (config({"kms": {"name": "x"}}), "providers[0].kms: Unsupported value"),
    (config({}), "provider does not contain any of the expected providers"),
    (config(IDENTITY, resources=["*"]), "use '*.' to encrypt all the resources from core API group"),
    (config(IDENTITY, resources=["Secrets"]), "should not contain capital letters"),
    (config(IDENTITY, resources=["secrets.*"]), "encrypting the same resource across groups"),
    (config(IDENTITY, resources=["secrets", "secrets"]), "the same resource cannot be specified multiple times"),
    ({**config(IDENTITY), "resources": [{"resources": ["secrets"]}]}, "resources[0].providers: Required value"),
])
def test_bad_configurations_name_the_problem(doc: Any, message: str) -> None:
    with pytest.raises(EncryptionConfigError) as e:
        parse_config(doc)
    assert message in str(e.value)
    assert K1 not in str(e.value)  # a key never shows in an error


def test_config_files(tmp_path: Path) -> None:
    assert load_transformer("") is None
    with pytest.raises(EncryptionConfigError, match="error opening encryption provider configuration file"):
        load_transformer(str(tmp_path / "missing.yaml"))
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(EncryptionConfigError, match="is empty"):
        load_transformer(str(tmp_path / "empty.yaml"))
    (tmp_path / "bad.yaml").write_text("resources: [")
    with pytest.raises(EncryptionConfigError, match="error while parsing file"):
        load_transformer(str(tmp_path / "bad.yaml"))
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(config(gcm(("key1", K1)), IDENTITY)))
    assert isinstance(load_transformer(str(tmp_path / "ok.yaml")), Transformer)


# ------------------------------------------------------------------------------ providers
@pytest.mark.parametrize("provider,prefix", [
    (gcm(("key1", K1)), b"k8s:enc:aesgcm:v1:key1:"),
    (gcm(("k16", K2)), b"k8s:enc:aesgcm:v1:k16:"),
    ({"aescbc": {"keys": [{"name": "c", "secret": K1}]}}, b"k8s:enc:aescbc:v1:c:"),
])
def test_providers_round_trip_with_their_prefix(provider: dict[str, Any], prefix: bytes) -> None:
    t = parse_config(config(provider))
    stored = t.to_storage(SECRET_KEY, PLAIN)
    assert stored.startswith(prefix) and b"czNjcjN0" not in stored and PLAIN not in stored
    assert t.from_storage(SECRET_KEY, stored) == PLAIN
    assert t.to_storage(SECRET_KEY, PLAIN) != stored  # a fresh nonce / IV every time


def test_gcm_binds_the_value_to_its_etcd_key() -> None:
    t = parse_config(config(gcm(("key1", K1))))
    stored = t.to_storage(SECRET_KEY, PLAIN)
    with pytest.raises(DecryptError, match="message authentication failed"):
        t.from_storage(b"/registry/core/secrets/ns/other", stored)
    with pytest.raises(DecryptError, match="message authentication failed"):
        t.from_storage(SECRET_KEY, stored[:-1] + bytes([stored[-1] ^ 1]))


def test_rotation_and_identity() -> None:
    old = parse_config(config(gcm(("key1", K1)), IDENTITY))
    rotated = parse_config(config(gcm(("key2", K2), ("key1", K1)), IDENTITY))
    only_new = parse_config(config(gcm(("key2", K2))))
    by_old = old.to_storage(SECRET_KEY, PLAIN)
    assert old.from_storage(SECRET_KEY, PLAIN) == PLAIN  # written before encryption was on
    assert rotated.from_storage(SECRET_KEY, by_old) == PLAIN
    assert rotated.to_storage(SECRET_KEY, PLAIN).startswith(b"k8s:enc:aesgcm:v1:key2:")
    with pytest.raises(DecryptError, match="no matching prefix found .*aesgcm:v1:key1"):
        only_new.from_storage(SECRET_KEY, by_old)
    with pytest.raises(DecryptError, match="identity is not configured"):
        only_new.from_storage(SECRET_KEY, PLAIN)
    # identity first (turning encryption off): writes plain, still reads what was encrypted
    off = parse_config(config(IDENTITY, gcm(("key1", K1))))
    assert off.to_storage(SECRET_KEY, PLAIN) == PLAIN and off.from_storage(SECRET_KEY, by_old) == PLAIN


@pytest.mark.parametrize("resources,key,encrypted", [
    (["secrets"], b"/registry/core/secrets/a/b", True),
    (["secrets"], b"/registry/core/configmaps/a/b", False),
    (["*."], b"/registry/core/configmaps/a/b", True),
    (["*."], b"/registry/apps/deployments/a/b", False),
    (["*.apps"], b"/registry/apps/deployments/a/b", True),
    (["deployments.apps"], b"/registry/apps/deployments/a/b", True),
    (["*.*"], b"/registry/minik8s.io/serviceaccountsigningkey", True),  # minik8s' own keys too
    (["*.*"], b"/other/prefix/x/y", False),
    (["*.*"], b"/registry/networking.k8s.io/ipaddresses/10.0.0.1", True),
])
def test_resources_pick_their_keys(resources: list[str], key: bytes, encrypted: bool) -> None:
    t = parse_config(config(gcm(("key1", K1)), resources=resources))
    assert t.to_storage(key, PLAIN).startswith(b"k8s:enc:") is encrypted


# ------------------------------------------------------------------------------ against etcd
@pytest.fixture(scope="module")
def own_etcd() -> Iterator[Etcd]:
    e = Etcd.start()  # its own: the session's unencrypting apiserver must never see these values
    yield e
    e.stop()


class Server:
    """The registry and HTTP app of one API server over the module's etcd, with a transformer."""

    def __init__(self, url: str, transformer: Transformer) -> None:
        self.storage = EtcdStorage(url, transformer=transformer)
        self.registry = Registry(self.storage, default_resources())
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(self.registry)),
                                      base_url="http://apiserver")

    async def __aenter__(self) -> "Server":
        await self.registry.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()
        await self.registry.stop()
        await self.storage.close()


@pytest.fixture(scope="module")
async def raw(own_etcd: Etcd) -> AsyncIterator[EtcdStorage]:
    s = EtcdStorage(own_etcd.url)  # no transformer: what etcd really holds
    yield s
    await s.close()


def secret(name: str, value: bytes) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {"token": base64.b64encode(value).decode()}, "stringData": {"plain": "string-" + name}}


async def test_secrets_at_rest_rotation_and_unreadable_values(own_etcd: Etcd, raw: EtcdStorage) -> None:
    ns = f"enc-{uuid.uuid4().hex[:6]}"
    value = os.urandom(8).hex().encode()
    # A Secret stored before encryption was turned on: plain JSON in etcd.
    before = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": {"token": "b2xkLXZhbHVl"},
              "metadata": {"name": "before", "namespace": ns, "uid": "u0", "creationTimestamp": "2026-01-01T00:00:00Z"}}
    await raw.create(f"/registry/core/secrets/{ns}/before".encode(), orjson.dumps(before))

    key1 = parse_config(config(gcm(("key1", K1)), IDENTITY))
    async with Server(own_etcd.url, key1) as one:
        r = await one.http.post("/api/v1/namespaces", json={"metadata": {"name": ns}})
        assert r.status_code == 201, r.text
        watcher = await one.registry.watch(one.registry.resources.lookup("", "v1", "secrets"), ns)  # type: ignore[arg-type]
        r = await one.http.post(f"/api/v1/namespaces/{ns}/secrets", json=secret("s1", value))
        assert r.status_code == 201, r.text
        stored = (await raw.get(f"/registry/core/secrets/{ns}/s1".encode())).value
        assert stored.startswith(b"k8s:enc:aesgcm:v1:key1:")
        for clear in (value, base64.b64encode(value), b"string-s1", b'"token"'):
            assert clear not in stored
        got = (await one.http.get(f"/api/v1/namespaces/{ns}/secrets/s1")).json()
        assert base64.b64decode(got["data"]["token"]) == value and "stringData" not in got
        assert base64.b64decode(got["data"]["plain"]) == b"string-s1"
        seen: dict[str, Any] = {}
        while "s1" not in seen:  # the watch cache saw plaintext
            event = await asyncio.wait_for(watcher.queue.get(), 5)
            assert event is not None and not isinstance(event, Exception)
            seen[event.entry.obj["metadata"]["name"]] = event.entry.obj
        assert base64.b64decode(seen["s1"]["data"]["token"]) == value
        r = await one.http.get(f"/api/v1/namespaces/{ns}/secrets/before")
        assert r.status_code == 200 and base64.b64decode(r.json()["data"]["token"]) == b"old-value"
        # an update re-encrypts; the configmaps of this config stay plain
        r = await one.http.patch(f"/api/v1/namespaces/{ns}/secrets/before", json={"metadata": {"labels": {"a": "b"}}},
                                 headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 200, r.text
        assert (await raw.get(f"/registry/core/secrets/{ns}/before".encode())).value.startswith(b"k8s:enc:aesgcm:v1:key1:")
        r = await one.http.post(f"/api/v1/namespaces/{ns}/configmaps",
                                json={"metadata": {"name": "cm"}, "data": {"k": "visible"}})
        assert r.status_code == 201 and b"visible" in (await raw.get(f"/registry/core/configmaps/{ns}/cm".encode())).value

    # Rotation: key2 writes, key1 still reads.
    rotated = parse_config(config(gcm(("key2", K2), ("key1", K1)), IDENTITY))
    async with Server(own_etcd.url, rotated) as two:
        got = (await two.http.get(f"/api/v1/namespaces/{ns}/secrets/s1")).json()
        assert base64.b64decode(got["data"]["token"]) == value
        r = await two.http.post(f"/api/v1/namespaces/{ns}/secrets", json=secret("s2", b"second"))
        assert r.status_code == 201
        assert (await raw.get(f"/registry/core/secrets/{ns}/s2".encode())).value.startswith(b"k8s:enc:aesgcm:v1:key2:")

    # key1 dropped: its values are a clear error for those objects only; the rest is served.
    only_key2 = parse_config(config(gcm(("key2", K2))))
    async with Server(own_etcd.url, only_key2) as three:
        r = await three.http.get(f"/api/v1/namespaces/{ns}/secrets/s1")
        assert r.status_code == 500 and r.json()["reason"] == "InternalError"
        assert r.json()["message"] == (f'Internal error occurred: unable to transform key "/registry/core/secrets/{ns}/s1": '
                                       "no matching prefix found (stored with aesgcm:v1:key1, which is not configured)")
        names = [i["metadata"]["name"] for i in (await three.http.get(f"/api/v1/namespaces/{ns}/secrets")).json()["items"]]
        assert names == ["s2"]
        # A value written meanwhile with a key this server lacks: its watch goes on, the object is an error.
        async with Server(own_etcd.url, key1) as other:
            assert (await other.http.post(f"/api/v1/namespaces/{ns}/secrets", json=secret("s3", b"x"))).status_code == 201
        # its cache counts the unreadable key, so consistent reads need not fall back to etcd
        cache, prefix = three.registry.caches["secrets"], f"/registry/core/secrets/{ns}/".encode()
        probe = await three.storage.probe(prefix, prefix=True)
        assert await cache.wait_until(lambda: cache.caught_up(probe, prefix, prefix=True), timeout=5)
        r = await three.http.post(f"/api/v1/namespaces/{ns}/secrets", json=secret("s4", b"y"))
        assert r.status_code == 201
        assert (await three.http.get(f"/api/v1/namespaces/{ns}/secrets/s4")).status_code == 200
        r = await three.http.get(f"/api/v1/namespaces/{ns}/secrets/s3")
        assert r.status_code == 500 and "unable to transform key" in r.json()["message"]
        r = await three.http.put(f"/api/v1/namespaces/{ns}/secrets/s3", json=secret("s3", b"z"))
        assert r.status_code == 500 and "unable to transform key" in r.json()["message"]


# ------------------------------------------------------------------------------ never shown
def test_mkctl_describe_secret_shows_sizes_like_kubectl() -> None:
    from datetime import datetime, timezone

    from cli.mkctl.describe import Related, describe
    obj = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "s", "namespace": "d"},
           "data": {"token": base64.b64encode(b"s3cr3t-s3cr3t-16").decode(), "a": base64.b64encode(b"xy").decode(),
                    "empty": ""}}
    text = describe(obj, Related(), now=datetime.now(timezone.utc))
    assert text.splitlines() == ["Name:         s", "Namespace:    d", "Labels:       <none>", "Annotations:  <none>",
                                 "", "Type:  Opaque", "", "Data", "====",
                                 "a:      2 bytes", "empty:  0 bytes", "token:  16 bytes"]
    assert "czNjcjN0" not in text and "s3cr3t" not in text

"""traffic.ingress.tls: which hosts each spec.tls entry covers, and the certificate SNI picks."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from traffic.ingress.tls import Certificates, TLSEntry, tls_entries


def ingress(name: str, created: str, tls: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "creationTimestamp": created}, "spec": {"tls": tls}}


def test_entries_oldest_first_hosts_normalized() -> None:
    ings = [ingress("new", "2024-02-01T00:00:00Z", [{"hosts": ["B.test"], "secretName": "b"}]),
            ingress("old", "2024-01-01T00:00:00Z", [{"hosts": ["a.test", "*.a.test"], "secretName": "a"},
                                                    {"secretName": "fallback"}, {"hosts": ["x.test"]}])]
    assert tls_entries(ings) == [TLSEntry(("a.test", "*.a.test"), "ns", "a"), TLSEntry((), "ns", "fallback"),
                                 TLSEntry(("b.test",), "ns", "b")]


A, WILD, DEFAULT = (ssl.create_default_context(ssl.Purpose.CLIENT_AUTH) for _ in range(3))


@pytest.mark.parametrize("name,expected", [
    ("a.test", A), ("A.TEST", A), ("x.a.test", WILD), ("y.x.a.test", DEFAULT), ("other.test", DEFAULT),
    (None, DEFAULT), ("", DEFAULT),
])
def test_sni_lookup(name: str | None, expected: ssl.SSLContext) -> None:
    certs = Certificates()
    certs.by_host, certs.default = {"a.test": A, "*.a.test": WILD}, DEFAULT
    assert certs.lookup(name) is expected


def test_no_default_means_no_certificate_and_bad_secrets_are_skipped() -> None:
    certs = Certificates()
    certs.update([ingress("i", "2024-01-01T00:00:00Z", [{"hosts": ["a.test"], "secretName": "s"}])],
                 lambda ns, name: {"metadata": {"namespace": ns, "name": name, "resourceVersion": "1"},
                                   "type": "kubernetes.io/tls", "data": {"tls.crt": "bm9wZQ==", "tls.key": ""}})
    assert certs.lookup("a.test") is None and certs.lookup(None) is None

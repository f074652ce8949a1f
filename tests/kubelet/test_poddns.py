"""kubelet.poddns: dnsPolicy / dnsConfig -> the sandbox's DNS, Services -> the containers' variables."""

from __future__ import annotations

from typing import Any

import pytest

from kubelet.cri import PodDNS
from kubelet.poddns import pod_dns, service_env

CLUSTER = PodDNS(nameservers=("172.28.128.10",),
                 searches=("shop.svc.cluster.local", "svc.cluster.local", "cluster.local"), options=("ndots:5",))


def pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "shop"}, "spec": {"containers": [], **spec}}


@pytest.mark.parametrize("spec, want", [
    ({}, CLUSTER),
    ({"dnsPolicy": "ClusterFirst"}, CLUSTER),
    ({"dnsPolicy": "ClusterFirst", "hostNetwork": True}, None),
    ({"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": True}, CLUSTER),
    ({"dnsPolicy": "Default"}, None),
    ({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.2.3.4"], "searches": ["a.test"],
                                         "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}},
     PodDNS(nameservers=("1.2.3.4",), searches=("a.test",), options=("ndots:2", "edns0"))),
    ({"dnsConfig": {"nameservers": ["172.28.128.10", "9.9.9.9"], "searches": ["x.test", "cluster.local"],
                    "options": [{"name": "ndots", "value": "1"}]}},
     PodDNS(nameservers=("172.28.128.10", "9.9.9.9"), searches=CLUSTER.searches + ("x.test",), options=("ndots:1",))),
    ({"dnsPolicy": "Default", "dnsConfig": {"searches": ["x.test"]}}, PodDNS(searches=("x.test",))),
])
def test_dns_policy_and_config(spec: dict[str, Any], want: PodDNS | None) -> None:
    assert pod_dns(pod(**spec), cluster_dns=["172.28.128.10"]) == want


def test_cluster_first_without_a_cluster_dns_is_the_nodes_resolver() -> None:
    assert pod_dns(pod(), cluster_dns=[]) is None


def test_at_most_three_nameservers() -> None:
    got = pod_dns(pod(dnsConfig={"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3"]}), cluster_dns=["10.0.0.10"])
    assert got is not None and got.nameservers == ("10.0.0.10", "1.1.1.1", "2.2.2.2")


def svc(ns: str, name: str, ip: str, *ports: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name}, "spec": {"clusterIP": ip, "ports": list(ports)}}


SERVICES = [
    svc("shop", "redis-primary", "10.0.0.11", {"name": "redis", "port": 6379}, {"name": "metrics", "port": 9121}),
    svc("shop", "dns-ish", "10.0.0.12", {"port": 53, "protocol": "UDP"}),
    svc("shop", "headless", "None", {"port": 80}),
    svc("other", "elsewhere", "10.0.0.13", {"port": 80}),
    svc("default", "kubernetes", "10.0.0.1", {"name": "https", "port": 443}),
]


def test_service_variables_as_kubernetes_writes_them() -> None:
    env = service_env(pod(), SERVICES)
    assert env["REDIS_PRIMARY_SERVICE_HOST"] == "10.0.0.11"
    assert env["REDIS_PRIMARY_SERVICE_PORT"] == "6379"
    assert env["REDIS_PRIMARY_SERVICE_PORT_METRICS"] == "9121"
    assert env["REDIS_PRIMARY_PORT"] == "tcp://10.0.0.11:6379"
    assert env["REDIS_PRIMARY_PORT_9121_TCP_ADDR"] == "10.0.0.11"
    assert env["DNS_ISH_PORT_53_UDP"] == "udp://10.0.0.12:53"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.0.0.1"
    assert not any(k.startswith(("HEADLESS_", "ELSEWHERE_")) for k in env)


def test_enable_service_links_false_keeps_only_the_master_service() -> None:
    env = service_env(pod(enableServiceLinks=False), SERVICES)
    assert {k.split("_")[0] for k in env} == {"KUBERNETES"}

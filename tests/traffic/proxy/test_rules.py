"""traffic.proxy.rules: the in-pod nftables table, checked as text and by the real nft in a new
network namespace (``unshare --net``; root, as CI runs)."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from traffic.proxy.rules import TABLE, render, stale_udp
from traffic.servicemap import service_ports


def svc(name: str, ip: str | None, *ports: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"clusterIP": ip or "None", "ports": list(ports), **spec}}


def eps(service: str, port: int, *ips: str, name: str = "", protocol: str = "TCP", ready: bool = True,
        node: str | None = None, terminating: bool = False) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": [{"name": name, "port": port, "protocol": protocol}],
            "endpoints": [{"addresses": [ip], "nodeName": node,
                           "conditions": {"ready": ready, "serving": ready or terminating,
                                          "terminating": terminating}} for ip in ips]}


SERVICES = [
    svc("web", "10.0.0.10", {"name": "http", "port": 80, "protocol": "TCP"}),
    svc("sticky", "10.0.0.11", {"port": 80}, sessionAffinity="ClientIP"),
    svc("dns", "10.0.0.12", {"name": "dns", "port": 53, "protocol": "UDP"}),
    svc("empty", "10.0.0.13", {"port": 80}, {"name": "u", "port": 81, "protocol": "UDP"}),
    svc("headless", None, {"port": 80}),
    svc("local", "10.0.0.14", {"port": 80}, internalTrafficPolicy="Local"),
]
SLICES = [
    eps("web", 8080, "172.28.0.2", "172.28.0.3", name="http"),
    eps("sticky", 8080, "172.28.0.2", "172.28.0.3"),
    eps("dns", 5353, "172.28.0.4", name="dns", protocol="UDP"),
    eps("empty", 8080, "172.28.0.9", ready=False),
    eps("headless", 8080, "172.28.0.5"),
    eps("local", 8080, "172.28.0.6", node="node-a"),
    eps("local", 8080, "172.28.0.7", node="node-b"),
]


def test_each_kind_of_service_port_gets_its_rule() -> None:
    text = render(service_ports(SERVICES, SLICES), node="node-a").text
    assert "numgen random mod 2 map { 0 : 172.28.0.2 . 8080, 1 : 172.28.0.3 . 8080 }" in text
    assert "jhash ip saddr mod 2 map" in text  # ClientIP affinity
    assert "meta l4proto udp dnat to 172.28.0.4:5353" in text
    assert "10.0.0.12 . udp . 53 : goto" in text
    assert "ip daddr 10.0.0.13 tcp dport 80 reject with tcp reset" in text  # no ready endpoint
    assert "ip daddr 10.0.0.13 udp dport 81 reject" in text
    assert "172.28.0.5" not in text  # headless: no rules
    assert "dnat to 172.28.0.6:8080" in text and "172.28.0.7" not in text  # internalTrafficPolicy Local


def test_terminating_endpoints_serve_only_when_nothing_is_ready() -> None:
    only_terminating = [eps("web", 8080, "172.28.0.8", name="http", ready=False, terminating=True)]
    text = render(service_ports(SERVICES[:1], only_terminating)).text
    assert "dnat to 172.28.0.8:8080" in text
    mixed = only_terminating + [eps("web", 8080, "172.28.0.2", name="http")]
    text = render(service_ports(SERVICES[:1], mixed)).text
    assert "dnat to 172.28.0.2:8080" in text and "172.28.0.8" not in text


def test_the_rendering_is_stable_and_replaces_the_whole_table() -> None:
    a = render(service_ports(SERVICES, SLICES))
    b = render(service_ports(list(reversed(SERVICES)), list(reversed(SLICES))))
    assert a.digest == b.digest
    assert a.text.startswith(f"table ip {TABLE}\ndelete table ip {TABLE}\n")


def test_gone_udp_endpoints_are_listed_for_conntrack_clearing() -> None:
    before = render(service_ports(SERVICES, SLICES))
    after = render(service_ports(SERVICES, [s for s in SLICES if s["metadata"]["labels"]["kubernetes.io/service-name"] != "dns"]))
    assert stale_udp(before, after) == [("10.0.0.12", 53, "172.28.0.4")]
    assert stale_udp(None, after) == []


def _nft_in_new_netns(*rulesets: str) -> str:
    script = "".join(f"nft -f - <<'EOF'\n{r}EOF\n" for r in rulesets) + "nft list table ip " + TABLE
    done = subprocess.run(["unshare", "--net", "sh", "-e", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_real_nft_accepts_the_table_and_a_rewrite() -> None:
    if shutil.which("nft") is None or shutil.which("unshare") is None:
        pytest.fail("nft and unshare are needed (scripts/docker-up installs nftables)")
    first = render(service_ports(SERVICES, SLICES), node="node-a")
    empty = render([])
    listed = _nft_in_new_netns(first.text, empty.text, first.text)  # applied twice: the rewrite is idempotent
    assert "10.0.0.10 . tcp . 80 : goto" in listed
    assert "reject with tcp reset" in listed
    assert _nft_in_new_netns(empty.text).count("chain ") == 2

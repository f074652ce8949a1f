"""Join one more etcd member to a running cluster: the compose ``ha`` profile's etcd-2 and etcd-3.

Data flow: ``python3 -m cli.etcdjoin --endpoint http://etcd:2379 --name etcd-2 --peer-url
http://etcd-2:2380 --client-url http://etcd-2:2379 --out /join/etcd-2.json`` -> the member list
from etcd's JSON gateway (``POST /v3/cluster/member/list``) -> ``member add`` with the peer URL
unless a member already has it (a second ``up`` adds nothing) -> an etcd configuration file
(``etcd --config-file``: name, data directory, listen and advertise URLs, ``initial-cluster`` naming
every member, ``initial-cluster-state: existing``) that the new member starts from. Members are
added one at a time, each after the previous one is healthy, as etcd's runtime reconfiguration
asks: the cluster keeps its quorum throughout. Standard library only (it runs in any image with
Python).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse


def call(endpoint: str, path: str, body: dict[str, Any], *, timeout: float = 5.0) -> dict[str, Any]:
    """One request to etcd's gRPC JSON gateway."""
    req = urllib.request.Request(endpoint.rstrip("/") + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        answer: dict[str, Any] = json.loads(resp.read() or b"{}")
        return answer


def initial_cluster(members: list[dict[str, Any]], *, name: str, peer_url: str) -> str:
    """``name=peer,...`` of every member; one not started yet has no name: this one's, or its host."""
    parts: list[str] = []
    for m in members:
        peers = m.get("peerURLs") or []
        if not peers:
            continue
        member_name = m.get("name") or (name if peer_url in peers else urlparse(peers[0]).hostname or "member")
        parts.extend(f"{member_name}={p}" for p in peers)
    return ",".join(parts)


def member_config(*, name: str, data_dir: str, peer_url: str, client_url: str, cluster: str) -> dict[str, Any]:
    """The new member's ``--config-file`` (keys as etcd's flags)."""
    peer, client = urlparse(peer_url), urlparse(client_url)
    return {
        "name": name,
        "data-dir": data_dir,
        "listen-peer-urls": f"{peer.scheme}://0.0.0.0:{peer.port or 2380}",
        "initial-advertise-peer-urls": peer_url,
        "listen-client-urls": f"{client.scheme}://0.0.0.0:{client.port or 2379}",
        "advertise-client-urls": client_url,
        "initial-cluster": cluster,
        "initial-cluster-state": "existing",
    }


def join(*, endpoint: str, name: str, peer_url: str, client_url: str, data_dir: str) -> dict[str, Any]:
    members = call(endpoint, "/v3/cluster/member/list", {}).get("members") or []
    if not any(peer_url in (m.get("peerURLs") or []) for m in members):
        members = call(endpoint, "/v3/cluster/member/add", {"peerURLs": [peer_url]}).get("members") or []
        print(f"etcdjoin: added {name} ({peer_url})", file=sys.stderr)
    else:
        print(f"etcdjoin: {name} ({peer_url}) is a member already", file=sys.stderr)
    return member_config(name=name, data_dir=data_dir, peer_url=peer_url, client_url=client_url,
                         cluster=initial_cluster(members, name=name, peer_url=peer_url))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m cli.etcdjoin", description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", required=True, help="a client URL of the running cluster")
    p.add_argument("--name", required=True)
    p.add_argument("--peer-url", required=True)
    p.add_argument("--client-url", required=True)
    p.add_argument("--data-dir", default="/etcd-data")
    p.add_argument("--out", required=True, help="where to write the member's etcd configuration file")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to retry while the cluster is unreachable")
    args = p.parse_args(argv)
    deadline = time.monotonic() + args.wait
    while True:
        try:
            config = join(endpoint=args.endpoint, name=args.name, peer_url=args.peer_url,
                          client_url=args.client_url, data_dir=args.data_dir)
            break
        except (OSError, urllib.error.URLError, ValueError) as e:
            if time.monotonic() > deadline:
                print(f"etcdjoin: {args.endpoint}: {e}", file=sys.stderr)
                return 1
            time.sleep(1)
    with open(args.out, "w") as f:
        json.dump(config, f, indent=2)
    print(f"etcdjoin: wrote {args.out} (initial-cluster {config['initial-cluster']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""cli.etcdjoin: an etcd member added to a running single-member cluster starts from its config file.

Real etcd processes (the local binary): the first runs alone, ``join`` adds the second through the
JSON gateway and writes its ``--config-file``; the second becomes healthy and both are listed. A
second ``join`` adds nothing. ``initial_cluster`` names a member not started yet after its host.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from cli import etcdjoin
from cli.processes import etcd_binary, etcd_command, free_port, stop, wait_http


def test_initial_cluster_names_every_member() -> None:
    members = [{"name": "etcd", "peerURLs": ["http://etcd:2380"]},
               {"name": "", "peerURLs": ["http://etcd-2:2380"]},
               {"name": "", "peerURLs": ["http://etcd-3:2380"]}]
    assert etcdjoin.initial_cluster(members, name="etcd-2", peer_url="http://etcd-2:2380") == \
        "etcd=http://etcd:2380,etcd-2=http://etcd-2:2380,etcd-3=http://etcd-3:2380"


def test_join_a_second_member() -> None:
    root = Path(tempfile.mkdtemp(prefix="minik8s-etcdjoin-"))
    first_url, second_client, second_peer = f"http://127.0.0.1:{free_port()}", free_port(), free_port()
    first = subprocess.Popen(etcd_command(data_dir=root / "first", client_url=first_url, peer_port=free_port(),
                                          name="etcd"), stdout=(root / "first.log").open("wb"), stderr=subprocess.STDOUT)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_http(f"{first_url}/health", first, root / "first.log")
        peer, client = f"http://127.0.0.1:{second_peer}", f"http://127.0.0.1:{second_client}"
        config = etcdjoin.join(endpoint=first_url, name="etcd-2", peer_url=peer, client_url=client,
                               data_dir=str(root / "second"))
        assert config["initial-cluster-state"] == "existing" and f"etcd-2={peer}" in config["initial-cluster"]
        config.update({"listen-peer-urls": peer, "listen-client-urls": client})  # loopback only in tests
        (root / "second.json").write_text(json.dumps(config))
        second = subprocess.Popen([etcd_binary(), "--config-file", str(root / "second.json")],
                                  stdout=(root / "second.log").open("wb"), stderr=subprocess.STDOUT)
        wait_http(f"{client}/health", second, root / "second.log")
        names = {m.get("name") for m in etcdjoin.call(first_url, "/v3/cluster/member/list", {})["members"]}
        assert names == {"etcd", "etcd-2"}
        again = etcdjoin.join(endpoint=client, name="etcd-2", peer_url=peer, client_url=client,
                              data_dir=str(root / "second"))
        assert len(etcdjoin.call(first_url, "/v3/cluster/member/list", {})["members"]) == 2
        assert again["initial-cluster"].count("=") == 2
    finally:
        stop(second)
        stop(first)
        shutil.rmtree(root, ignore_errors=True)

"""Kubeconfig loading and writing with temporary files, kubectl's precedence rules."""

from __future__ import annotations

import base64
import os
import ssl
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from machinery.kubeconfig import (
    DEFAULT_SERVER, ClientConfig, KubeconfigError, kubeconfig_paths, load_config, write_kubeconfig,
)


def _kubeconfig(*, current: str | None = "dev", clusters: dict[str, dict[str, Any]] | None = None,
                users: dict[str, dict[str, Any]] | None = None,
                contexts: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in (clusters or {}).items()],
        "users": [{"name": n, "user": u} for n, u in (users or {}).items()],
        "contexts": [{"name": n, "context": c} for n, c in (contexts or {}).items()],
    }
    if current is not None:
        doc["current-context"] = current
    return doc


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return home


DEV = _kubeconfig(
    clusters={"c1": {"server": "https://10.0.0.1:6443", "insecure-skip-tls-verify": True}},
    users={"u1": {"token": "secret-token"}},
    contexts={"dev": {"cluster": "c1", "user": "u1", "namespace": "team-a"}},
)


def test_nothing_anywhere_defaults_to_localhost_8080() -> None:
    cfg = load_config()
    assert cfg.server == DEFAULT_SERVER == "http://127.0.0.1:8080"
    assert cfg.namespace == "default"
    assert cfg.token is None and cfg.context is None


def test_server_override_without_kubeconfig() -> None:
    assert load_config(server="http://example:9000/").server == "http://example:9000"


def test_home_kube_config_is_read(_isolated_home: Path) -> None:
    (_isolated_home / ".kube").mkdir()
    _write(_isolated_home / ".kube" / "config", DEV)
    cfg = load_config()
    assert cfg.server == "https://10.0.0.1:6443"
    assert cfg.namespace == "team-a"
    assert cfg.token == "secret-token"
    assert cfg.auth_headers["Authorization"] == "Bearer secret-token"
    assert cfg.insecure_skip_tls_verify
    assert cfg.context == "dev"
    assert "secret-token" not in repr(cfg)


def test_explicit_kubeconfig_beats_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = _write(tmp_path / "env.yaml", _kubeconfig(
        clusters={"c": {"server": "http://env:1"}}, contexts={"dev": {"cluster": "c"}}))
    flag_file = _write(tmp_path / "flag.yaml", _kubeconfig(
        clusters={"c": {"server": "http://flag:2"}}, contexts={"dev": {"cluster": "c"}}))
    monkeypatch.setenv("KUBECONFIG", str(env_file))
    assert load_config().server == "http://env:1"
    assert load_config(kubeconfig=str(flag_file)).server == "http://flag:2"
    assert kubeconfig_paths(str(flag_file)) == [flag_file]


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="no such file"):
        load_config(kubeconfig=str(tmp_path / "nope"))


def test_env_list_merges_first_file_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _write(tmp_path / "a.yaml", _kubeconfig(
        current=None,
        clusters={"shared": {"server": "http://first:1"}},
        contexts={"one": {"cluster": "shared"}}))
    second = _write(tmp_path / "b.yaml", _kubeconfig(
        current="two",
        clusters={"shared": {"server": "http://second:2"}, "own": {"server": "http://own:3"}},
        users={"u": {"username": "admin", "password": "pw"}},
        contexts={"one": {"cluster": "own"}, "two": {"cluster": "shared", "user": "u", "namespace": "ns2"}}))
    missing = tmp_path / "missing.yaml"
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(missing), str(first), str(second)]))
    cfg = load_config()
    # current-context from the first file that sets one; cluster "shared" from the first file.
    assert cfg.context == "two"
    assert cfg.server == "http://first:1"
    assert cfg.namespace == "ns2"
    assert cfg.basic_auth == ("admin", "pw")
    assert cfg.source == (str(first), str(second))
    # context "one" from the first file (cluster shared), not the second (cluster own).
    assert load_config(context="one").server == "http://first:1"


def test_context_flag_and_missing_context(tmp_path: Path) -> None:
    path = _write(tmp_path / "k.yaml", _kubeconfig(
        clusters={"c1": {"server": "http://one:1"}, "c2": {"server": "http://two:2"}},
        contexts={"dev": {"cluster": "c1"}, "prod": {"cluster": "c2"}}))
    assert load_config(kubeconfig=str(path), context="prod").server == "http://two:2"
    assert load_config(kubeconfig=str(path), context="prod").namespace == "default"
    with pytest.raises(KubeconfigError, match='context "staging" does not exist'):
        load_config(kubeconfig=str(path), context="staging")


def test_current_context_naming_nothing_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "k.yaml", _kubeconfig(current="ghost", clusters={"c": {"server": "http://x:1"}}))
    with pytest.raises(KubeconfigError, match='context "ghost" does not exist'):
        load_config(kubeconfig=str(path))


def test_missing_cluster_or_server(tmp_path: Path) -> None:
    path = _write(tmp_path / "k.yaml", _kubeconfig(contexts={"dev": {"cluster": "nope"}}))
    with pytest.raises(KubeconfigError, match='cluster "nope" does not exist'):
        load_config(kubeconfig=str(path))
    # --server fills in for a missing cluster, as kubectl's flag does.
    assert load_config(kubeconfig=str(path), server="http://s:1").server == "http://s:1"
    path2 = _write(tmp_path / "k2.yaml", _kubeconfig(clusters={"c": {}}, contexts={"dev": {"cluster": "c"}}))
    with pytest.raises(KubeconfigError, match="no server"):
        load_config(kubeconfig=str(path2))


def test_server_flag_overrides_cluster_but_keeps_credentials(tmp_path: Path) -> None:
    path = _write(tmp_path / "k.yaml", DEV)
    cfg = load_config(kubeconfig=str(path), server="http://127.0.0.1:9999")
    assert cfg.server == "http://127.0.0.1:9999"
    assert cfg.token == "secret-token" and cfg.namespace == "team-a"


def test_tls_files_relative_paths_and_data(tmp_path: Path) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    (sub / "token").write_text("from-file\n")
    path = _write(sub / "k.yaml", _kubeconfig(
        clusters={"c": {"server": "https://h:443", "certificate-authority": "ca.crt"}},
        users={"u": {"tokenFile": "token", "client-certificate": "/abs/client.crt",
                     "client-key-data": base64.b64encode(b"KEY").decode()}},
        contexts={"dev": {"cluster": "c", "user": "u"}}))
    cfg = load_config(kubeconfig=str(path))
    assert cfg.ca_file == str(sub / "ca.crt")
    assert cfg.cert_file == "/abs/client.crt"
    assert cfg.key_data == b"KEY"
    assert cfg.token == "from-file"


def test_bad_base64_and_plugins_are_clear_errors(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.yaml", _kubeconfig(
        clusters={"c": {"server": "https://h", "certificate-authority-data": "!!not base64!!"}},
        contexts={"dev": {"cluster": "c"}}))
    with pytest.raises(KubeconfigError, match="certificate-authority-data"):
        load_config(kubeconfig=str(bad))
    plugin = _write(tmp_path / "plugin.yaml", _kubeconfig(
        clusters={"c": {"server": "https://h"}}, users={"u": {"exec": {"command": "aws"}}},
        contexts={"dev": {"cluster": "c", "user": "u"}}))
    with pytest.raises(KubeconfigError, match="not supported"):
        load_config(kubeconfig=str(plugin))


def test_unreadable_yaml(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text("clusters: [unclosed\n")
    with pytest.raises(KubeconfigError, match="error loading config file"):
        load_config(kubeconfig=str(path))


def test_verify_for_http_and_insecure_https() -> None:
    assert ClientConfig(server="http://x").verify is True
    ctx = ClientConfig(server="https://x", insecure_skip_tls_verify=True).verify
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname
    strict = ClientConfig(server="https://x").verify
    assert isinstance(strict, ssl.SSLContext) and strict.verify_mode == ssl.CERT_REQUIRED


def test_write_kubeconfig_round_trip_and_merge(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "config"
    write_kubeconfig(path, server="http://127.0.0.1:8080", namespace="work")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cfg = load_config(kubeconfig=str(path))
    assert (cfg.server, cfg.namespace, cfg.context) == ("http://127.0.0.1:8080", "work", "minik8s")

    # Another tool's entries survive; writing again replaces ours and makes it current.
    doc = yaml.safe_load(path.read_text())
    doc["clusters"].append({"name": "other", "cluster": {"server": "https://other"}})
    doc["contexts"].append({"name": "other", "context": {"cluster": "other"}})
    doc["current-context"] = "other"
    path.write_text(yaml.safe_dump(doc))
    write_kubeconfig(path, server="http://127.0.0.1:9090")
    doc = yaml.safe_load(path.read_text())
    assert [c["name"] for c in doc["clusters"]] == ["other", "minik8s"]
    assert len(doc["contexts"]) == 2 and doc["current-context"] == "minik8s"
    cfg = load_config(kubeconfig=str(path))
    assert cfg.server == "http://127.0.0.1:9090" and cfg.namespace == "default"
    assert load_config(kubeconfig=str(path), context="other").server == "https://other"

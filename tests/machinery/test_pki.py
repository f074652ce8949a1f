"""machinery.pki: the cluster CA, the serving and client certificates, idempotency, kubeconfigs."""

from __future__ import annotations

import base64
import shutil
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from machinery import pki
from machinery.kubeconfig import load_config
from machinery.userinfo import COMPONENT_USERS


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> pki.ClusterPKI:
    return pki.ensure_cluster_pki(tmp_path_factory.mktemp("pki"), hosts=["10.1.2.3", "api.example"], nodes=["n1"])


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _subject(cert: x509.Certificate) -> tuple[str, list[str]]:
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return str(cn), [str(o) for o in orgs]


def _usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_serving_certificate_names_every_host(made: pki.ClusterPKI) -> None:
    assert pki.subject_alt_names(made.apiserver_cert.read_bytes()) == {
        "10.1.2.3", "api.example", "localhost", "127.0.0.1", "kubernetes", "kubernetes.default",
        "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "172.28.128.1"}
    assert _usages(_cert(made.apiserver_cert)) == {ExtendedKeyUsageOID.SERVER_AUTH}


@pytest.mark.parametrize(("who", "cn", "orgs"), [
    ("admin", "kubernetes-admin", ["system:masters"]),
    ("node:n1", "system:node:n1", ["system:nodes"]),
    *[(k, v, []) for k, v in COMPONENT_USERS.items()],
])
def test_client_certificates_carry_user_and_groups(made: pki.ClusterPKI, who: str, cn: str, orgs: list[str]) -> None:
    cert = _cert(made.client_cert(who))
    assert _subject(cert) == (cn, orgs)
    assert _usages(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert pki.signed_by(made.client_cert(who).read_bytes(), made.ca_cert.read_bytes())
    assert stat.S_IMODE(made.client_key(who).stat().st_mode) == 0o600


def test_ca_is_a_ca_and_other_cas_do_not_sign(made: pki.ClusterPKI) -> None:
    assert _cert(made.ca_cert).extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    other = pki.new_ca("other")
    assert not pki.signed_by(made.apiserver_cert.read_bytes(), other.cert_pem)
    for private in (made.ca_key, made.apiserver_key, made.sa_key, made.encryption_config):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private


def test_service_account_and_encryption_keys(made: pki.ClusterPKI) -> None:
    assert made.sa_pub.read_bytes() == pki.public_key_pem(made.sa_key.read_bytes())
    conf = yaml.safe_load(made.encryption_config.read_text())
    assert (conf["apiVersion"], conf["kind"]) == ("apiserver.config.k8s.io/v1", "EncryptionConfiguration")
    [res] = conf["resources"]
    assert res["resources"] == ["secrets"]
    aes, identity = res["providers"]
    assert identity == {"identity": {}}
    [key] = aes["aesgcm"]["keys"]
    assert key["name"] == "key1" and len(base64.b64decode(key["secret"])) == 32


def test_ensure_is_idempotent_and_grows(made: pki.ClusterPKI, tmp_path: Path) -> None:
    d = tmp_path / "pki"
    shutil.copytree(made.directory, d)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    again = pki.ensure_cluster_pki(d, hosts=["10.1.2.3"])  # no new host, no node named: nothing changes
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    assert "node:n1" in again.identities  # an existing node's certificate is kept and listed

    grown = pki.ensure_cluster_pki(d, hosts=["10.9.9.9"], nodes=["n2"])
    after = {p.name: p.read_bytes() for p in d.iterdir()}
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {"apiserver.crt", "apiserver.key", "node-n2.crt", "node-n2.key"}
    assert {"10.9.9.9", "10.1.2.3", "api.example"} <= pki.subject_alt_names(after["apiserver.crt"])
    assert _subject(_cert(grown.client_cert("node:n2"))) == ("system:node:n2", ["system:nodes"])


def test_another_service_range_adds_its_first_address(made: pki.ClusterPKI, tmp_path: Path) -> None:
    d = tmp_path / "pki"
    shutil.copytree(made.directory, d)
    pki.ensure_cluster_pki(d, service_cidr="10.96.0.0/12")
    assert {"10.96.0.1", "172.28.128.1", "10.1.2.3"} <= pki.subject_alt_names((d / "apiserver.crt").read_bytes())


def test_certificates_of_another_ca_are_reissued(made: pki.ClusterPKI, tmp_path: Path) -> None:
    d = tmp_path / "pki"
    shutil.copytree(made.directory, d)
    (d / "ca.crt").unlink()
    (d / "ca.key").unlink()
    fresh = pki.ensure_cluster_pki(d, hosts=[])
    ca = fresh.ca_cert.read_bytes()
    assert ca != made.ca_cert.read_bytes()
    for path in (fresh.apiserver_cert, fresh.client_cert("admin"), fresh.client_cert("node:n1")):
        assert pki.signed_by(path.read_bytes(), ca), path


def test_kubeconfig_embeds_ca_and_client_certificate(made: pki.ClusterPKI, tmp_path: Path) -> None:
    path = made.write_kubeconfig(tmp_path / "kc" / "scheduler.kubeconfig", user="scheduler",
                                 server="https://127.0.0.1:6443")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "minik8s" and len(doc["contexts"]) == 1
    cfg = load_config(kubeconfig=str(path))
    assert cfg.server == "https://127.0.0.1:6443"
    assert cfg.ca_data == made.ca_cert.read_bytes()
    assert cfg.cert_data == made.client_cert("scheduler").read_bytes()
    assert cfg.key_data == made.client_key("scheduler").read_bytes()
    cfg.verify  # the CA and the client pair load into an SSL context


@pytest.mark.parametrize("who", ["nobody", "node:", "kubernetes-admin"])
def test_unknown_identity_is_refused(who: str) -> None:
    with pytest.raises(ValueError, match="unknown identity"):
        pki.identity_subject(who)


@pytest.mark.parametrize(("who", "stem"), [("admin", "admin"), ("node:n-1", "node-n-1"), ("scheduler", "scheduler")])
def test_file_stem(who: str, stem: str) -> None:
    assert pki.file_stem(who) == stem


def test_certs_command_writes_a_kubeconfig_per_identity(made: pki.ClusterPKI, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.minik8s import app

    d = tmp_path / "pki"
    shutil.copytree(made.directory, d)
    r = CliRunner().invoke(app, ["certs", "--dir", str(d), "--host", "minik8s-apiserver", "--node", "n1",
                                 "--server", "https://minik8s-apiserver:6443", "--user-server", "https://127.0.0.1:16443"])
    assert r.exit_code == 0, r.output
    assert "minik8s-apiserver" in pki.subject_alt_names((d / "apiserver.crt").read_bytes())
    for who in ("scheduler", "node:n1", "apiserver-kubelet-client"):
        path = d / f"{pki.file_stem(who)}.kubeconfig"
        assert load_config(kubeconfig=str(path)).server == "https://minik8s-apiserver:6443"
        assert f"wrote {path} ({who}, https://minik8s-apiserver:6443)" in r.output
    assert load_config(kubeconfig=str(d / "admin.kubeconfig")).server == "https://127.0.0.1:16443"

"""The cluster's certificates and keys: one CA, the API server's serving certificate, a client
certificate per identity, the ServiceAccount signing key pair and the Secrets encryption key.

Data flow: ``minik8s certs`` (compose) and ``minik8s up`` call ``ensure_cluster_pki(dir, hosts=...,
nodes=...)`` -> the files below in ``dir`` (made when missing, kept when present) -> the API server
reads them through its flags (``ClusterPKI.apiserver_flags``), every component and the user get a
kubeconfig with the CA and their own client certificate embedded (``ClusterPKI.write_kubeconfig``).

Files, as kubeadm names them where it has a name:

- ``ca.crt`` / ``ca.key``: the cluster CA (self-signed; signs every certificate below).
- ``apiserver.crt`` / ``.key``: serving certificate; SANs: the given hosts (names or IP
  addresses), ``localhost``, ``127.0.0.1``, the ``kubernetes[.default[.svc[.cluster.local]]]``
  names and the first address of the Service range (default/kubernetes' ClusterIP, which
  in-cluster clients dial: ``KUBERNETES_SERVICE_HOST``), as kubeadm does. Re-issued when a host is missing from it (or it is not signed by this CA).
- ``<who>.crt`` / ``.key`` per identity: ``admin`` (CN ``kubernetes-admin``, O ``system:masters``),
  each key of ``machinery.userinfo.COMPONENT_USERS`` (CN = that user), ``node-<name>`` for
  ``node:<name>`` (CN ``system:node:<name>``, O ``system:nodes``: what the Node authorizer reads).
- ``sa.key`` / ``sa.pub``: RSA pair that signs and verifies ServiceAccount tokens (RS256).
- ``encryption-config.yaml``: ``apiserver.config.k8s.io/v1`` EncryptionConfiguration for Secrets
  (aesgcm with a random 32-byte key, then identity to read what was stored before).

Keys are RSA 2048 (about 60 ms each here); private keys and kubeconfigs are written 0600.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from machinery.userinfo import ADMIN, COMPONENT_USERS, NODE_USER_PREFIX, NODES_GROUP, SYSTEM_MASTERS

KUBERNETES_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local")
LOCAL_NAMES = ("localhost", "127.0.0.1")
DEFAULT_SERVICE_CIDR = "172.28.128.0/17"  # the API server's default --service-cluster-ip-range
NODE_PREFIX = "node:"


@dataclass(frozen=True)
class CertKey:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


# ---------------------------------------------------------------------------------- primitives
def new_rsa_key() -> bytes:
    """A new RSA 2048 private key, PKCS#8 PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_key_pem(private_pem: bytes) -> bytes:
    """The SubjectPublicKeyInfo PEM of a PEM private key (what --service-account-key-file reads)."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _rsa(private_pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("expected an RSA private key")
    return key


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    return x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(builder: x509.CertificateBuilder, days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    # Back-dated a little: a client whose clock is slightly behind still accepts a fresh certificate.
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(
        now + datetime.timedelta(days=days))


def new_ca(common_name: str = "minik8s-ca", *, days: int = 3650) -> CertKey:
    """A self-signed CA certificate (the cluster's root of trust) and its key."""
    key_pem = new_rsa_key()
    key = _rsa(key_pem)
    name = _name(common_name)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = _validity(x509.CertificateBuilder(), days).subject_name(name).issuer_name(name) \
        .public_key(key.public_key()).serial_number(x509.random_serial_number()) \
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True) \
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=True,
                                     crl_sign=True, content_commitment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False),
                       critical=True) \
        .add_extension(ski, critical=False) \
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return CertKey(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def _san(names: Sequence[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def issue(ca: CertKey, *, common_name: str, organizations: Sequence[str] = (), dns_names: Sequence[str] = (),
          ip_addresses: Sequence[str] = (), server: bool = False, client: bool = True,
          days: int = 3650) -> CertKey:
    """A new key and a certificate for it signed by ``ca``.

    ``server`` / ``client`` set the extended key usages (serverAuth / clientAuth). Kubernetes reads
    the user name from the CN and the groups from the O attributes of a client certificate.
    """
    key_pem = new_rsa_key()
    key = _rsa(key_pem)
    ca_cert, ca_key = ca.cert, _rsa(ca.key_pem)
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = _validity(x509.CertificateBuilder(), days).subject_name(_name(common_name, organizations)) \
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number()) \
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True) \
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False),
                       critical=True) \
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False) \
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    sans = _san([*dns_names, *ip_addresses])
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return CertKey(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def signed_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    """Whether ``cert_pem`` was issued by the CA ``ca_pem`` (signature checked)."""
    try:
        x509.load_pem_x509_certificate(cert_pem).verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def subject_alt_names(cert_pem: bytes) -> set[str]:
    """The DNS names and IP addresses (as text) a certificate is valid for."""
    try:
        ext = x509.load_pem_x509_certificate(cert_pem).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return set(ext.value.get_values_for_type(x509.DNSName)) | \
        {str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress)}


# ---------------------------------------------------------------------------------- identities
def identity_subject(who: str) -> tuple[str, tuple[str, ...]]:
    """(CN, O...) of an identity: ``admin``, a ``COMPONENT_USERS`` key, or ``node:<name>``."""
    if who == "admin":
        return ADMIN, (SYSTEM_MASTERS,)
    if who.startswith(NODE_PREFIX) and who[len(NODE_PREFIX):]:
        return NODE_USER_PREFIX + who[len(NODE_PREFIX):], (NODES_GROUP,)
    if who in COMPONENT_USERS:
        return COMPONENT_USERS[who], ()
    raise ValueError(f"unknown identity {who!r}: expected admin, node:<name> or one of {', '.join(COMPONENT_USERS)}")


def file_stem(who: str) -> str:
    """The file name of an identity's certificate, key and kubeconfig (``node:a`` -> ``node-a``)."""
    identity_subject(who)  # refuse unknown identities
    return who.replace(":", "-")


def encryption_config(secret: bytes) -> dict[str, Any]:
    """Kubernetes' EncryptionConfiguration: Secrets written with AES-GCM, older identity data readable."""
    return {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
            "resources": [{"resources": ["secrets"], "providers": [
                {"aesgcm": {"keys": [{"name": "key1", "secret": base64.b64encode(secret).decode()}]}},
                {"identity": {}}]}]}


# ---------------------------------------------------------------------------------- the directory
def _write(path: Path, data: bytes, *, private: bool) -> None:
    """Replace ``path`` atomically; private files are created 0600 (never briefly readable)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _read_pair(cert: Path, key: Path) -> CertKey | None:
    if cert.is_file() and key.is_file():
        return CertKey(cert.read_bytes(), key.read_bytes())
    return None


@dataclass(frozen=True)
class ClusterPKI:
    """The files of one cluster's PKI in ``directory`` (see the module docstring)."""

    directory: Path
    identities: tuple[str, ...]

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def apiserver_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def apiserver_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def sa_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.directory / "sa.pub"

    @property
    def encryption_config(self) -> Path:
        return self.directory / "encryption-config.yaml"

    def client_cert(self, who: str) -> Path:
        return self.directory / f"{file_stem(who)}.crt"

    def client_key(self, who: str) -> Path:
        return self.directory / f"{file_stem(who)}.key"

    def apiserver_flags(self, *, encryption: bool = True) -> list[str]:
        """The ``minik8s apiserver`` flags that serve TLS and trust these certificates and keys."""
        flags = ["--tls-cert-file", str(self.apiserver_cert), "--tls-private-key-file", str(self.apiserver_key),
                 "--client-ca-file", str(self.ca_cert), "--service-account-key-file", str(self.sa_pub),
                 "--service-account-signing-key-file", str(self.sa_key)]
        if encryption:
            flags += ["--encryption-provider-config", str(self.encryption_config)]
        return flags

    def kubeconfig(self, *, user: str, server: str, name: str = "minik8s") -> dict[str, Any]:
        """A kubeconfig (one cluster, user and context, current) with the CA and ``user``'s certificate embedded."""
        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        user_name = f"{name}-{file_stem(user)}"
        return {"apiVersion": "v1", "kind": "Config", "preferences": {},
                "clusters": [{"name": name, "cluster": {"server": server,
                                                        "certificate-authority-data": b64(self.ca_cert)}}],
                "users": [{"name": user_name, "user": {"client-certificate-data": b64(self.client_cert(user)),
                                                       "client-key-data": b64(self.client_key(user))}}],
                "contexts": [{"name": name, "context": {"cluster": name, "user": user_name}}],
                "current-context": name}

    def write_kubeconfig(self, path: str | os.PathLike[str], *, user: str, server: str) -> Path:
        """Write ``kubeconfig(user=, server=)`` to ``path`` (0600, replacing the file); returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        _write(target, yaml.safe_dump(self.kubeconfig(user=user, server=server), sort_keys=False).encode(),
               private=True)
        return target


def _ensure_ca(d: Path) -> CertKey:
    ca = _read_pair(d / "ca.crt", d / "ca.key")
    if ca is None:
        ca = new_ca()
        _write(d / "ca.key", ca.key_pem, private=True)
        _write(d / "ca.crt", ca.cert_pem, private=False)
    return ca


def _ensure_pair(*, ca: CertKey, cert: Path, key: Path, wanted_sans: set[str] | frozenset[str] = frozenset(),
                 **issue_kw: Any) -> None:
    current = _read_pair(cert, key)
    if current is not None and signed_by(current.cert_pem, ca.cert_pem) \
            and wanted_sans <= subject_alt_names(current.cert_pem):
        return
    made = issue(ca, **issue_kw)
    _write(key, made.key_pem, private=True)
    _write(cert, made.cert_pem, private=False)


def ensure_cluster_pki(directory: str | os.PathLike[str], *, hosts: Sequence[str] = (),
                       nodes: Sequence[str] = (), service_cidr: str = DEFAULT_SERVICE_CIDR) -> ClusterPKI:
    """Make the cluster's certificates and keys in ``directory``; keep whatever is already valid.

    Idempotent: an existing CA and keys stay; the serving certificate is re-issued when one of
    ``hosts`` is missing from its SANs (the old hosts are kept in the new one); a client
    certificate is added for every new node; files not signed by the current CA are re-issued.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca = _ensure_ca(d)
    current = d / "apiserver.crt"
    previous = subject_alt_names(current.read_bytes()) if current.is_file() else set()
    service_ip = str(ipaddress.ip_network(service_cidr, strict=False).network_address + 1)
    names = list(dict.fromkeys([*hosts, *LOCAL_NAMES, *KUBERNETES_NAMES, service_ip]))
    names += sorted(previous - set(names)) if previous and signed_by(current.read_bytes(), ca.cert_pem) else []
    dns = [n for n in names if not _is_ip(n)]
    ips = [n for n in names if _is_ip(n)]
    _ensure_pair(ca=ca, cert=current, key=d / "apiserver.key", wanted_sans={_canonical(n) for n in names},
                 common_name="kube-apiserver", dns_names=dns, ip_addresses=ips, server=True, client=False)
    if not (d / "sa.key").is_file():
        _write(d / "sa.key", new_rsa_key(), private=True)
    _write(d / "sa.pub", public_key_pem((d / "sa.key").read_bytes()), private=False)
    if not (d / "encryption-config.yaml").is_file():
        _write(d / "encryption-config.yaml",
               yaml.safe_dump(encryption_config(secrets.token_bytes(32)), sort_keys=False).encode(), private=True)
    existing_nodes = sorted(p.name[len("node-"):-len(".crt")] for p in d.glob("node-*.crt"))
    who_all = ["admin", *COMPONENT_USERS, *(NODE_PREFIX + n for n in dict.fromkeys([*existing_nodes, *nodes]))]
    pki = ClusterPKI(d, tuple(who_all))
    for who in who_all:
        cn, orgs = identity_subject(who)
        _ensure_pair(ca=ca, cert=pki.client_cert(who), key=pki.client_key(who), common_name=cn, organizations=orgs)
    return pki


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def _canonical(name: str) -> str:
    return str(ipaddress.ip_address(name)) if _is_ip(name) else name


__all__ = ["CertKey", "ClusterPKI", "KUBERNETES_NAMES", "encryption_config", "ensure_cluster_pki", "file_stem",
           "identity_subject", "issue", "new_ca", "new_rsa_key", "public_key_pem", "signed_by", "subject_alt_names"]

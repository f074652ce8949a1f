"""The credentials of ``minik8s up``: the cluster PKI, one kubeconfig per component, the user's kubeconfig.

Data flow:

    ensure_cluster_pki(DATA_DIR/pki, hosts=[127.0.0.1, localhost, the address pods reach the API
    server at, the kubernetes Service IP], nodes=[the Docker node])      (machinery.pki: made once,
                                                                         kept by later runs: same CA)
      -> DATA_DIR/pki/<who>.kubeconfig for every component user (its client certificate, the CA,
         server https://127.0.0.1:PORT), node-<name>.kubeconfig for the Docker node's kubelet
      -> apiserver_args: the API server's TLS pair, client CA, ServiceAccount keys, encryption
         config and audit log flags, authorization Node,RBAC, no plain-HTTP port
      -> write_user_kubeconfig: the CA and the admin certificate (group system:masters) into the
         user's kubeconfig (merged into an existing file, as kind and minikube do)

Simulated nodes (one kubelet process holding many Nodes, like kwok) use the admin credential:
the Node authorizer lets a node's certificate write its own Node only. Pure planning apart from
the PKI and file writes; the processes are started by ``cli.up``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from machinery.kubeconfig import ClientConfig, load_config, write_kubeconfig
from machinery.pki import ClusterPKI, ensure_cluster_pki, file_stem

ADMIN = "admin"  # machinery.pki's name of the user kubeconfig's identity (kubernetes-admin, system:masters)


def node_user(node: str) -> str:
    return f"node:{node}"


@dataclass(frozen=True)
class UpCredentials:
    pki: ClusterPKI
    server: str  # https://127.0.0.1:PORT, what every kubeconfig names

    @property
    def directory(self) -> Path:
        return self.pki.directory

    def kubeconfig(self, user: str) -> Path:
        """``scheduler.kubeconfig``, ``node-NAME.kubeconfig``, ``admin.kubeconfig`` (as ``minik8s certs`` names them)."""
        return self.directory / f"{file_stem(user)}.kubeconfig"

    def component_args(self, component: str) -> list[str]:
        """``--kubeconfig FILE`` for a ``minik8s <component>`` command (its own user)."""
        return ["--kubeconfig", str(self.kubeconfig(component))]

    def kubelet_args(self, node: str | None) -> list[str]:
        """A Docker node's kubelet authenticates as ``system:node:<name>``; simulated ones as the admin."""
        return ["--kubeconfig", str(self.kubeconfig(node_user(node) if node else ADMIN))]

    def admin_config(self) -> ClientConfig:
        return load_config(kubeconfig=str(self.kubeconfig(ADMIN)))

    def ca_context(self) -> ssl.SSLContext:
        """Trusts the cluster CA, sends no certificate: for the anonymous health endpoints."""
        return ssl.create_default_context(cafile=str(self.pki.ca_cert))

    def apiserver_args(self, *, secure_port: int, logs: Path) -> list[str]:
        return ["--secure-port", str(secure_port), "--insecure-port", "0", *self.pki.apiserver_flags(),
                "--audit-log-path", str(logs / "audit.log"), "--authorization-mode", "Node,RBAC"]


def prepare(directory: Path, *, server: str, hosts: list[str], nodes: list[str], service_cidr: str) -> UpCredentials:
    """The PKI (kept if present; its serving certificate names ``hosts`` and the first address of
    ``service_cidr``, the kubernetes Service IP) and a kubeconfig for the admin, every component and node."""
    pki = ensure_cluster_pki(directory, hosts=hosts, nodes=nodes, service_cidr=service_cidr)
    creds = UpCredentials(pki, server)
    for user in pki.identities:
        pki.write_kubeconfig(creds.kubeconfig(user), user=user, server=server)
    return creds


def write_user_kubeconfig(path: Path, creds: UpCredentials) -> None:
    """Cluster, user and context ``minik8s`` in ``path`` (other entries kept): the CA and the admin
    certificate, embedded (the file does not depend on DATA_DIR/pki staying where it is)."""
    pki = creds.pki
    write_kubeconfig(path, server=creds.server, ca_data=pki.ca_cert.read_bytes(),
                     cert_data=pki.client_cert(ADMIN).read_bytes(), key_data=pki.client_key(ADMIN).read_bytes())

"""A real secured control plane for tests: etcd + ``minik8s apiserver`` with TLS, client certificates,
a token file, ServiceAccount keys, encryption at rest and ``--authorization-mode Node,RBAC``.

Usage (the module-scoped ``secure_cluster`` fixture in tests/conftest.py does the first line)::

    c = SecureCluster.start(tmp_dir, token_users={"t0k3n": ("alice", "1001", ("devs",))})
    c.client("admin").get("/api/v1/namespaces")        # kubernetes-admin, system:masters (cert)
    c.client("alice").get("/api/v1/pods")              # bearer token of the token file -> 403
    c.client("anonymous").get("/api/v1/pods")          # no credential -> 401
    c.kubectl("node:n1", "get", "nodes")               # real kubectl, kubelet identity of node n1
    httpx.get(c.insecure_url + "/api/v1/pods")         # plain HTTP on 127.0.0.1: the superuser
    c.stop()

Identities (``who``): ``admin``, a key of ``machinery.userinfo.COMPONENT_USERS`` (``scheduler``,
``controller-manager``, ...: the component's client certificate), ``node:<name>`` (made on first
use), a user of ``token_users`` (its bearer token), or ``anonymous`` (the CA only). The PKI is made
once per test process and copied, so a cluster starts in about the time etcd and the API server
take (a few seconds).
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import httpx
import yaml

from machinery import pki as pkimod
from tests.cluster import ApiServerProcess, ComponentProcess, Etcd, free_port

# The fixture's token users: a user with no grant, and one in a group (RBAC tests bind them).
DEFAULT_TOKEN_USERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "alice-token-0123456789": ("alice", "1001", ()),
    "bob-token-0123456789": ("bob", "1002", ("developers",)),
}
ANONYMOUS = "anonymous"

_template: Path | None = None


def _pki_copy(directory: Path) -> pkimod.ClusterPKI:
    """This process's PKI (made on first call: RSA keys take a while) copied into ``directory``."""
    global _template
    if _template is None:
        _template = Path(tempfile.mkdtemp(prefix="minik8s-pki-template-"))
        pkimod.ensure_cluster_pki(_template, hosts=["127.0.0.1"], nodes=["node-1"])
    shutil.copytree(_template, directory, dirs_exist_ok=True)
    return pkimod.ensure_cluster_pki(directory, hosts=["127.0.0.1"])


def token_file(users: Mapping[str, tuple[str, str, Sequence[str]]]) -> str:
    """kube-apiserver's --token-auth-file CSV: ``token,user,uid,"group1,group2"``."""
    return "".join(f'{token},{user},{uid},"{",".join(groups)}"\n' for token, (user, uid, groups) in users.items())


@dataclass
class SecureCluster:
    url: str  # https://127.0.0.1:PORT (authenticated, authorized)
    insecure_url: str  # http://127.0.0.1:PORT (no credentials: the insecure superuser)
    pki: pkimod.ClusterPKI
    etcd: Etcd
    apiserver: ApiServerProcess
    directory: Path
    token_users: dict[str, tuple[str, str, tuple[str, ...]]] = field(default_factory=dict)
    components: list[ComponentProcess] = field(default_factory=list)

    @classmethod
    def start(cls, tmpdir: str | Path, *, extra_args: Sequence[str] = (),
              token_users: Mapping[str, tuple[str, str, Sequence[str]]] | None = None) -> "SecureCluster":
        """etcd and a secured API server on free loopback ports; ``extra_args`` go to ``minik8s apiserver``."""
        directory = Path(tmpdir)
        users = {t: (u, uid, tuple(g)) for t, (u, uid, g) in (DEFAULT_TOKEN_USERS if token_users is None
                                                              else token_users).items()}
        pki = _pki_copy(directory / "pki")
        args = ["--secure-port", str(secure_port := free_port()), *pki.apiserver_flags(),
                "--authorization-mode", "Node,RBAC"]
        if users:
            (directory / "tokens.csv").write_text(token_file(users))
            args += ["--token-auth-file", str(directory / "tokens.csv")]
        etcd = Etcd.start()
        api = ApiServerProcess.start(etcd.url, *args, *extra_args, wait_ready=False)
        c = cls(f"https://127.0.0.1:{secure_port}", api.url, pki, etcd, api, directory, users)
        try:
            c._wait_secure()
        except BaseException:
            c.stop()
            raise
        return c

    def _wait_secure(self, timeout: float = 90.0) -> None:
        """Until the secure port's /readyz answers the admin (start-up takes long on a busy machine)."""
        deadline = time.monotonic() + timeout
        with self.client("admin") as http:
            while True:
                if self.apiserver.proc.poll() is not None:
                    raise RuntimeError(f"the API server exited:\n{self.apiserver.logs()[-3000:]}")
                try:
                    if http.get("/readyz", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.url}/readyz not ready:\n{self.apiserver.logs()[-3000:]}")
                time.sleep(0.2)

    # ------------------------------------------------------------------ credentials
    def _token(self, who: str) -> str | None:
        return next((t for t, (user, _, _) in self.token_users.items() if user == who), None)

    def _cert_pair(self, who: str) -> tuple[Path, Path]:
        if who.startswith(pkimod.NODE_PREFIX) and not self.pki.client_cert(who).exists():
            self.pki = pkimod.ensure_cluster_pki(self.pki.directory, nodes=[who[len(pkimod.NODE_PREFIX):]])
        return self.pki.client_cert(who), self.pki.client_key(who)

    def kubeconfig(self, who: str) -> Path:
        """A kubeconfig for ``who`` against ``url`` (the CA embedded; certificate or token)."""
        path = self.directory / "kubeconfigs" / f"{who.replace(':', '-')}.kubeconfig"
        token = self._token(who)
        if token is None and who != ANONYMOUS:
            self._cert_pair(who)
            return self.pki.write_kubeconfig(path, user=who, server=self.url)
        doc = self.pki.kubeconfig(user="admin", server=self.url)
        doc["users"] = [{"name": who, "user": {"token": token} if token else {}}]
        doc["contexts"][0]["context"]["user"] = who
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        path.chmod(0o600)
        return path

    def ssl_context(self, who: str = ANONYMOUS) -> ssl.SSLContext:
        """Trusts the cluster CA; carries ``who``'s client certificate when it has one."""
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        if who != ANONYMOUS and self._token(who) is None:
            cert, key = self._cert_pair(who)
            ctx.load_cert_chain(cert, key)
        return ctx

    def client(self, who: str, **kw: object) -> httpx.Client:
        """An HTTPS client of ``url`` acting as ``who``."""
        token = self._token(who)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, verify=self.ssl_context(who), headers=headers,
                            timeout=30, **kw)  # type: ignore[arg-type]

    def kubectl(self, who: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """The real kubectl as ``who`` (not checked: tests assert on returncode and output)."""
        return subprocess.run(["kubectl", "--kubeconfig", str(self.kubeconfig(who)), *args],
                              capture_output=True, text=True, timeout=timeout)

    def start_component(self, component: str, *args: str, who: str | None = None) -> ComponentProcess:
        """``minik8s <component> --kubeconfig <who's>`` (default: the component's own identity); stopped by stop()."""
        p = ComponentProcess.start(component, "--kubeconfig", str(self.kubeconfig(who or component)), *args,
                                   log_level="warning")
        self.components.append(p)
        return p

    def stop(self) -> None:
        for p in reversed(self.components):
            p.stop()
        self.apiserver.stop()
        self.etcd.stop()


__all__ = ["ANONYMOUS", "DEFAULT_TOKEN_USERS", "SecureCluster", "token_file"]

"""Kubeconfig loading, the way kubectl does it, into one frozen ``ClientConfig``.

Data flow: ``--kubeconfig PATH`` (must exist), else every file of ``KUBECONFIG`` (a colon-separated
list; missing files are skipped; for each cluster / user / context name the first file that
defines it wins, and so does the first non-empty ``current-context``), else ``~/.kube/config``
-> pick the context (``--context`` or ``current-context``) -> its cluster (server URL, TLS
settings) and user (token / token file, basic auth, client certificate) -> ``ClientConfig``,
which ``machinery.client.ApiClient`` turns into its aiohttp session.

With no kubeconfig anywhere (or one without a current context) and no ``server`` override, the
server is ``http://127.0.0.1:8080``: what kubectl tries, and where ``minik8s apiserver`` listens
by default. Relative file paths inside a kubeconfig are resolved against that file's directory,
as client-go does. Exec and auth-provider plugins are not supported (a clear ``KubeconfigError``).

``write_kubeconfig`` adds (or replaces) one cluster/user/context entry in a kubeconfig file and
makes it current, keeping everything else in the file, as ``minikube``/``kind`` do.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

DEFAULT_SERVER = "http://127.0.0.1:8080"
DEFAULT_NAMESPACE = "default"


class KubeconfigError(Exception):
    """A kubeconfig that cannot be used: missing file, unknown context, unreadable credentials."""


@dataclass(frozen=True)
class ClientConfig:
    """Everything needed to talk to one API server as one user. Secrets are in memory only."""

    server: str = DEFAULT_SERVER
    namespace: str = DEFAULT_NAMESPACE
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    insecure_skip_tls_verify: bool = False
    ca_file: str | None = None
    ca_data: bytes | None = field(default=None, repr=False)
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = field(default=None, repr=False)
    key_data: bytes | None = field(default=None, repr=False)
    # Extra request headers (e.g. impersonation); hash=False keeps the frozen class hashable.
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    context: str | None = None  # the kubeconfig context this came from, None without one
    source: tuple[str, ...] = ()  # the kubeconfig files that were read

    @property
    def auth_headers(self) -> dict[str, str]:
        """``Authorization`` plus the extra headers (basic auth is built by the client)."""
        out = dict(self.headers)
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        return out

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        if self.username is not None and self.password is not None and not self.token:
            return (self.username, self.password)
        return None

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What the HTTP client takes for TLS: a context carrying the CA and client cert for https.

        Client certificate *data* is written to a private temporary file only for the moment
        ``load_cert_chain`` reads it (the ssl module accepts files only), then removed.
        """
        if not self.server.startswith("https://"):
            return True
        ctx = ssl.create_default_context(
            cafile=self.ca_file, cadata=self.ca_data.decode() if self.ca_data else None)
        if self.insecure_skip_tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert_file or self.cert_data:
            _load_cert_chain(ctx, self)
        return ctx


def _load_cert_chain(ctx: ssl.SSLContext, cfg: ClientConfig) -> None:
    if cfg.cert_file and not cfg.key_data:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        return
    with tempfile.TemporaryDirectory(prefix="minik8s-tls-") as tmp:
        cert_path = cfg.cert_file
        if cfg.cert_data:
            cert_path = os.path.join(tmp, "client.crt")
            _write_private(cert_path, cfg.cert_data)
        key_path = cfg.key_file
        if cfg.key_data:
            key_path = os.path.join(tmp, "client.key")
            _write_private(key_path, cfg.key_data)
        assert cert_path is not None
        ctx.load_cert_chain(cert_path, key_path)


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------------- loading
def kubeconfig_paths(kubeconfig: str | None = None) -> list[Path]:
    """The files kubectl would read, in precedence order (existing or not)."""
    if kubeconfig:
        return [Path(kubeconfig).expanduser()]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise KubeconfigError(f"error loading config file \"{path}\": {e}") from e
    except OSError as e:
        raise KubeconfigError(f"error loading config file \"{path}\": {e.strerror}") from e
    if not isinstance(data, dict):
        raise KubeconfigError(f"error loading config file \"{path}\": not a kubeconfig mapping")
    return data


@dataclass
class _Merged:
    clusters: dict[str, tuple[dict[str, Any], Path]] = field(default_factory=dict)
    users: dict[str, tuple[dict[str, Any], Path]] = field(default_factory=dict)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)
    current_context: str = ""
    files: list[Path] = field(default_factory=list)


def _merge(paths: list[Path], *, explicit: bool) -> _Merged:
    merged = _Merged()
    for path in paths:
        if not path.exists():
            if explicit:
                raise KubeconfigError(f'stat {path}: no such file or directory')
            continue  # kubectl skips missing KUBECONFIG entries silently
        doc = _read(path)
        merged.files.append(path)
        for section, key, target in (("clusters", "cluster", merged.clusters),
                                     ("users", "user", merged.users)):
            for entry in doc.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") and entry["name"] not in target:
                    target[entry["name"]] = (entry.get(key) or {}, path)
        for entry in doc.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") and entry["name"] not in merged.contexts:
                merged.contexts[entry["name"]] = entry.get("context") or {}
        if not merged.current_context and doc.get("current-context"):
            merged.current_context = str(doc["current-context"])
    return merged


def _resolve(path: str | None, base: Path) -> str | None:
    if not path:
        return None
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else base.parent / p)


def _b64(value: Any, what: str) -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError as e:
        raise KubeconfigError(f"{what} is not valid base64: {e}") from e


def component_config(server: str, kubeconfig: str) -> ClientConfig | str:
    """What a component connects with: its ``--kubeconfig`` (``--server`` overriding the address), else the URL.

    With neither, the default ``http://127.0.0.1:8080``. A kubeconfig that cannot be read is an
    error at start-up (``KubeconfigError``), not a silent fall back to no credential.
    """
    if kubeconfig:
        return load_config(kubeconfig=kubeconfig, server=server or None)
    return server or DEFAULT_SERVER


def load_config(*, kubeconfig: str | None = None, context: str | None = None,
                server: str | None = None) -> ClientConfig:
    """Resolve the client settings like kubectl's ``--kubeconfig``, ``--context`` and ``--server``."""
    paths = kubeconfig_paths(kubeconfig)
    merged = _merge(paths, explicit=kubeconfig is not None)
    name = context or merged.current_context
    files = tuple(str(p) for p in merged.files)
    if not name:
        return ClientConfig(server=(server or DEFAULT_SERVER).rstrip("/"), source=files)
    if name not in merged.contexts:
        raise KubeconfigError(f'context "{name}" does not exist')
    ctx = merged.contexts[name]
    cluster_name, user_name = ctx.get("cluster") or "", ctx.get("user") or ""
    if cluster_name not in merged.clusters and not server:
        raise KubeconfigError(f'context "{name}": cluster "{cluster_name}" does not exist')
    cluster, cluster_file = merged.clusters.get(cluster_name, ({}, Path(".")))
    user, user_file = merged.users.get(user_name, ({}, Path("."))) if user_name else ({}, Path("."))
    if user_name and user_name not in merged.users:
        raise KubeconfigError(f'context "{name}": user "{user_name}" does not exist')
    if user.get("exec") or user.get("auth-provider"):
        raise KubeconfigError(f'user "{user_name}": exec and auth-provider credential plugins are not supported')
    url = server or cluster.get("server")
    if not url:
        raise KubeconfigError(f'context "{name}": cluster "{cluster_name}" has no server defined')
    token = user.get("token")
    token_file = _resolve(user.get("tokenFile"), user_file)
    if not token and token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as e:
            raise KubeconfigError(f'user "{user_name}": cannot read token file {token_file}: {e.strerror}') from e
    headers: dict[str, str] = {}
    if user.get("as"):
        headers["Impersonate-User"] = str(user["as"])
    return ClientConfig(
        server=str(url).rstrip("/"),
        namespace=ctx.get("namespace") or DEFAULT_NAMESPACE,
        token=token or None,
        username=user.get("username"),
        password=user.get("password"),
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
        ca_file=_resolve(cluster.get("certificate-authority"), cluster_file),
        ca_data=_b64(cluster.get("certificate-authority-data"), "certificate-authority-data"),
        cert_file=_resolve(user.get("client-certificate"), user_file),
        key_file=_resolve(user.get("client-key"), user_file),
        cert_data=_b64(user.get("client-certificate-data"), "client-certificate-data"),
        key_data=_b64(user.get("client-key-data"), "client-key-data"),
        headers=headers,
        context=name,
        source=files,
    )


# ---------------------------------------------------------------------------------- writing
def _upsert(entries: list[Any], name: str, key: str, value: dict[str, Any]) -> list[Any]:
    kept = [e for e in entries if not (isinstance(e, dict) and e.get("name") == name)]
    return kept + [{"name": name, key: value}]


def write_kubeconfig(path: str | os.PathLike[str], *, server: str, name: str = "minik8s",
                     namespace: str | None = None, ca_data: bytes | None = None, cert_data: bytes | None = None,
                     key_data: bytes | None = None) -> None:
    """Add or replace cluster, user and context ``name`` in ``path`` and make it current.

    Other entries in an existing file are kept. The file is replaced atomically, mode 0600
    (kubeconfigs may hold credentials, and kubectl warns about group-readable ones). The CA and
    the client certificate and key, when given, are embedded (``*-data``, base64).
    """
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()
    cluster: dict[str, Any] = {"server": server, **({"certificate-authority-data": b64(ca_data)} if ca_data else {})}
    user: dict[str, Any] = {"client-certificate-data": b64(cert_data), "client-key-data": b64(key_data)} \
        if cert_data and key_data else {}
    target = Path(path).expanduser()
    doc: dict[str, Any] = _read(target) if target.exists() else {}
    doc.setdefault("apiVersion", "v1")
    doc.setdefault("kind", "Config")
    doc.setdefault("preferences", {})
    context: dict[str, Any] = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    doc["clusters"] = _upsert(doc.get("clusters") or [], name, "cluster", cluster)
    doc["users"] = _upsert(doc.get("users") or [], name, "user", user)
    doc["contexts"] = _upsert(doc.get("contexts") or [], name, "context", context)
    doc["current-context"] = name
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".kubeconfig-", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["ClientConfig", "DEFAULT_NAMESPACE", "DEFAULT_SERVER", "KubeconfigError", "kubeconfig_paths",
           "load_config", "write_kubeconfig"]

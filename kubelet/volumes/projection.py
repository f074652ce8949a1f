"""What files a configMap, secret, downwardAPI or projected volume holds: paths, contents, modes.

Pure (no I/O): the manager fetches the objects a volume names (``references``) and the service
account tokens it needs, then asks for the payload; ``kubelet.volumes.writer`` writes it. As in
Kubernetes (pkg/volume/configmap, secret, downwardapi, projected):

    no ``items``   -> one file per key of the object (ConfigMap ``data`` and ``binaryData``,
                      Secret ``data`` decoded)
    ``items``      -> only those keys, at ``path``, with ``mode`` (else the volume's
                      ``defaultMode``, 0644 by default); a missing key is an error unless the
                      source is ``optional``
    missing object -> an error (``configmap "x" not found``) unless ``optional``: then no files
    projected      -> the files of every source together (configMap, secret, downwardAPI,
                      serviceAccountToken); one ``defaultMode`` for all
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from kubelet.volumes import SourceError
from kubelet.volumes.downward import field_value, resource_value

Obj = Mapping[str, Any]
DEFAULT_MODE = 0o644
CONFIGMAPS, SECRETS = "configmaps", "secrets"
TOKEN_EXPIRATION_SECONDS = 3600  # Kubernetes' default expirationSeconds of a projected token


@dataclass(frozen=True)
class File:
    content: bytes
    mode: int


Payload = dict[str, File]


@dataclass(frozen=True)
class Ref:
    """An object a volume reads (``kind`` is ``configmaps`` or ``secrets``)."""

    kind: str
    name: str
    optional: bool


@dataclass(frozen=True)
class TokenRef:
    """A service account token a projected volume needs (Kubernetes' TokenRequest)."""

    index: int  # the source's index in ``projected.sources``
    audience: str
    expiration_seconds: int
    path: str


def _mode(value: Any, default: int) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else default


def references(volume: Obj) -> list[Ref]:
    """The ConfigMaps and Secrets a volume needs, in order."""
    if "configMap" in volume:
        src = volume.get("configMap") or {}
        return [Ref(CONFIGMAPS, str(src.get("name") or ""), bool(src.get("optional")))]
    if "secret" in volume:
        src = volume.get("secret") or {}
        return [Ref(SECRETS, str(src.get("secretName") or ""), bool(src.get("optional")))]
    out: list[Ref] = []
    for source in (volume.get("projected") or {}).get("sources") or []:
        for key, kind in (("configMap", CONFIGMAPS), ("secret", SECRETS)):
            if key in source:
                src = source.get(key) or {}
                out.append(Ref(kind, str(src.get("name") or ""), bool(src.get("optional"))))
    return out


def token_refs(volume: Obj) -> list[TokenRef]:
    out: list[TokenRef] = []
    for i, source in enumerate((volume.get("projected") or {}).get("sources") or []):
        tok = source.get("serviceAccountToken")
        if tok is not None:
            out.append(TokenRef(index=i, audience=str(tok.get("audience") or ""),
                                expiration_seconds=int(tok.get("expirationSeconds") or TOKEN_EXPIRATION_SECONDS),
                                path=str(tok.get("path") or "token")))
    return out


def object_data(kind: str, obj: Obj) -> dict[str, bytes]:
    """The keys of a ConfigMap (``data`` and ``binaryData``) or a Secret (``data``, decoded)."""
    out: dict[str, bytes] = {}
    if kind == SECRETS:
        for k, v in (obj.get("data") or {}).items():
            out[str(k)] = base64.b64decode(str(v or ""))
        for k, v in (obj.get("stringData") or {}).items():
            out.setdefault(str(k), str(v).encode())
        return out
    for k, v in (obj.get("data") or {}).items():
        out[str(k)] = str(v if v is not None else "").encode()
    for k, v in (obj.get("binaryData") or {}).items():
        out[str(k)] = base64.b64decode(str(v or ""))
    return out


def keyed_payload(kind: str, data: Mapping[str, bytes], *, items: Sequence[Obj] | None, default_mode: int,
                  optional: bool) -> Payload:
    if not items:
        return {k: File(v, default_mode) for k, v in data.items()}
    out: Payload = {}
    for item in items:
        key = str(item.get("key") or "")
        if key not in data:
            if optional:
                continue
            what = "configmap references non-existent config key" if kind == CONFIGMAPS \
                else "references non-existent secret key"
            raise SourceError(f"{what}: {key}")
        out[str(item.get("path") or key)] = File(data[key], _mode(item.get("mode"), default_mode))
    return out


def _object_payload(ref: Ref, obj: Obj | None, *, items: Sequence[Obj] | None, default_mode: int) -> Payload:
    if obj is None:
        if ref.optional:
            return {}
        raise SourceError(f'{ref.kind[:-1]} "{ref.name}" not found')
    return keyed_payload(ref.kind, object_data(ref.kind, obj), items=items, default_mode=default_mode,
                         optional=ref.optional)


def downward_payload(pod: Obj, items: Sequence[Obj], *, default_mode: int, allocatable: Mapping[str, str],
                     node_name: str = "") -> Payload:
    out: Payload = {}
    for item in items:
        path = str(item.get("path") or "")
        if item.get("fieldRef"):
            value = field_value(pod, str((item.get("fieldRef") or {}).get("fieldPath") or ""), node_name=node_name)
        elif item.get("resourceFieldRef"):
            value = resource_value(pod, item.get("resourceFieldRef") or {}, allocatable=allocatable)
        else:
            raise SourceError(f"downwardAPI item {path}: one of fieldRef and resourceFieldRef is required")
        out[path] = File(value.encode(), _mode(item.get("mode"), default_mode))
    return out


def volume_payload(pod: Obj, volume: Obj, *, objects: Mapping[Ref, Obj | None], tokens: Mapping[int, str],
                   allocatable: Mapping[str, str], node_name: str = "") -> Payload:
    """The files of one configMap / secret / downwardAPI / projected volume.

    ``objects``: every ``references(volume)`` answer (None: not found); ``tokens``: the token of
    each ``token_refs(volume)`` by source index."""
    refs = references(volume)
    for key in ("configMap", "secret"):
        if key in volume:
            src = volume.get(key) or {}
            return _object_payload(refs[0], objects.get(refs[0]), items=src.get("items"),
                                   default_mode=_mode(src.get("defaultMode"), DEFAULT_MODE))
    if "downwardAPI" in volume:
        src = volume.get("downwardAPI") or {}
        return downward_payload(pod, src.get("items") or [], default_mode=_mode(src.get("defaultMode"), DEFAULT_MODE),
                                allocatable=allocatable, node_name=node_name)
    projected = volume.get("projected") or {}
    default_mode = _mode(projected.get("defaultMode"), DEFAULT_MODE)
    out: Payload = {}
    ref_iter = iter(refs)
    for i, source in enumerate(projected.get("sources") or []):
        if "configMap" in source or "secret" in source:
            ref = next(ref_iter)
            src = source.get("configMap") or source.get("secret") or {}
            out.update(_object_payload(ref, objects.get(ref), items=src.get("items"), default_mode=default_mode))
        elif "downwardAPI" in source:
            out.update(downward_payload(pod, (source.get("downwardAPI") or {}).get("items") or [],
                                        default_mode=default_mode, allocatable=allocatable, node_name=node_name))
        elif "serviceAccountToken" in source:
            tok = source.get("serviceAccountToken") or {}
            if i not in tokens:
                raise SourceError("failed to fetch token: no token for this source")
            out[str(tok.get("path") or "token")] = File(tokens[i].encode(), default_mode)
    return out


__all__ = ["CONFIGMAPS", "DEFAULT_MODE", "SECRETS", "File", "Payload", "Ref", "TokenRef", "downward_payload",
           "keyed_payload", "object_data", "references", "token_refs", "volume_payload"]

"""``POST serviceaccounts/{name}/token``: the TokenRequest subresource (authentication.k8s.io/v1).

After pkg/registry/core/serviceaccount/storage/token.go. Data flow: the TokenRequest body (JSON,
or protobuf as kubectl's typed client sends it) -> defaults (``expirationSeconds`` 3600, the
apiserver's audience when none is asked) -> validation (Kubernetes' 10-minute minimum and 2^32 s
maximum, 422 Invalid) -> the ServiceAccount must exist (404) and so must a bound object (Pod,
Secret or Node; its uid filled in, a different uid is a 409) -> a JWT with Kubernetes' claims
(``iss``, ``sub: system:serviceaccount:<ns>:<name>``, ``aud``, ``exp``, ``iat``, ``nbf``,
``jti``, ``kubernetes.io: {namespace, serviceaccount, pod | secret | node}``) -> 201 with the
TokenRequest, its ``status.token`` and ``status.expirationTimestamp``.

Signing: RS256 (``apiserver/auth/jws.py``) with ``--service-account-signing-key-file``; without
one (in-process tests, dev mode) with an RSA key kept in etcd under ``SIGNING_KEY`` (created with
the storage's create-if-absent by the first apiserver that needs it, read by every other one), so
all apiservers of a cluster issue and verify tokens with one key. ``ServiceAccountKeys`` also holds
the keys that verify tokens (``--service-account-key-file``, else the signing key), which
``apiserver/auth/serviceaccount.py`` checks and ``/openid/v1/jwks`` publishes (``jwks``,
``openid_configuration``: Kubernetes' ServiceAccount issuer discovery documents).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from datetime import datetime, timezone
from typing import Any, Mapping

import orjson

from machinery import errors
from machinery.errors import StatusCause

from .auth import jws
from .protobuf import ProtobufError, _envelope, _wire_fields
from .registry import Registry
from .resources import Resource
from .storage import KeyExistsError, KeyNotFoundError, Storage

Obj = dict[str, Any]

SIGNING_KEY = b"/registry/minik8s.io/serviceaccountkey-rs256"  # PKCS#8 PEM of the dev-mode RSA key
ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 1 << 32
GROUP, VERSION, KIND = "authentication.k8s.io", "v1", "TokenRequest"
BOUND_KINDS = {"Pod": ("v1", "pods", True), "Secret": ("v1", "secrets", True), "Node": ("v1", "nodes", False)}


class ServiceAccountKeys:
    """The keys that sign and verify ServiceAccount tokens, the issuer and the API audiences.

    Key files are read at construction (a bad file is a start-up error); the etcd key is read (or
    made once) on first use and then kept in memory.
    """

    def __init__(self, storage: Storage, *, signing_key_file: str = "", key_file: str = "",
                 issuer: str = ISSUER, api_audiences: tuple[str, ...] = ()) -> None:
        self.storage = storage
        self.issuer = issuer or ISSUER
        self.api_audiences = tuple(api_audiences) or (self.issuer,)
        self._private: jws.PrivateKey | None = None
        self._public: list[jws.PublicKey] = []
        if signing_key_file:
            self._private = jws.load_private_key(Path(signing_key_file).read_bytes())
        if key_file:
            self._public = jws.load_public_keys(Path(key_file).read_bytes())
        elif self._private is not None:
            self._public = [self._private.public_key()]
        self._lock = asyncio.Lock()

    async def signing_key(self) -> jws.PrivateKey:
        if self._private is None:
            async with self._lock:
                if self._private is None:
                    self._private = await self._stored_key()
                    if not self._public:
                        self._public = [self._private.public_key()]
        return self._private

    async def public_keys(self) -> list[jws.PublicKey]:
        if not self._public:
            await self.signing_key()
        return list(self._public)

    async def _stored_key(self) -> jws.PrivateKey:
        for _ in range(3):
            try:
                return jws.load_private_key((await self.storage.get(SIGNING_KEY)).value)
            except KeyNotFoundError:
                try:
                    await self.storage.create(SIGNING_KEY, jws.private_key_pem(jws.new_private_key()))
                except KeyExistsError:
                    pass  # another apiserver made it first: read theirs
        raise errors.InternalError(message="cannot read the service account signing key")

    async def sign(self, claims: Mapping[str, Any]) -> str:
        return jws.sign(claims, await self.signing_key())

    async def jwks(self) -> Obj:
        """/openid/v1/jwks: the public keys that verify ServiceAccount tokens."""
        return {"keys": [jws.jwk(k) for k in await self.public_keys()]}

    def openid_configuration(self) -> Obj:
        """/.well-known/openid-configuration, as kube-apiserver's ServiceAccount issuer discovery."""
        return {"issuer": self.issuer, "jwks_uri": self.issuer.rstrip("/") + "/openid/v1/jwks",
                "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"]}


# ---------------------------------------------------------------------------- pure parts
def claims_of(token: str) -> Obj:
    """The claims of a token (unverified): for tests and tools."""
    return jws.parse(token).claims


def defaulted_spec(spec: Mapping[str, Any], *, audiences: tuple[str, ...] = (ISSUER,)) -> Obj:
    out = dict(spec)
    if out.get("expirationSeconds") in (None, 0):
        out["expirationSeconds"] = DEFAULT_EXPIRATION_SECONDS
    if not out.get("audiences"):
        out["audiences"] = list(audiences)
    return out


def validate(spec: Mapping[str, Any]) -> list[StatusCause]:
    """Kubernetes' ValidateTokenRequest."""
    causes: list[StatusCause] = []
    seconds = spec.get("expirationSeconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        causes.append(StatusCause("FieldValueInvalid", f"Invalid value: {orjson.dumps(seconds).decode()}: "
                                  "must be an integer", "spec.expirationSeconds"))
    elif seconds < MIN_EXPIRATION_SECONDS:
        causes.append(StatusCause("FieldValueInvalid", f"Invalid value: {seconds}: may not specify a duration less "
                                  "than 10 minutes", "spec.expirationSeconds"))
    elif seconds > MAX_EXPIRATION_SECONDS:
        causes.append(StatusCause("FieldValueInvalid", f"Invalid value: {seconds}: may not specify a duration larger "
                                  "than 2^32 seconds", "spec.expirationSeconds"))
    audiences = spec.get("audiences")
    if not isinstance(audiences, list) or not all(isinstance(a, str) and a for a in audiences):
        causes.append(StatusCause("FieldValueInvalid", "Invalid value: audiences must be non-empty strings",
                                  "spec.audiences"))
    ref = spec.get("boundObjectRef")
    if ref is not None and (not isinstance(ref, dict) or ref.get("kind") not in BOUND_KINDS):
        kind = ref.get("kind") if isinstance(ref, dict) else ref
        supported = ", ".join(f'"{k}"' for k in BOUND_KINDS)
        causes.append(StatusCause("FieldValueNotSupported", f"Unsupported value: {orjson.dumps(kind).decode()}: "
                                  f"supported values: {supported}", "spec.boundObjectRef.kind"))
    return causes


def token_claims(*, namespace: str, service_account: Mapping[str, Any], spec: Mapping[str, Any],
                 bound: Mapping[str, Any] | None, now: datetime, issuer: str = ISSUER,
                 node: Mapping[str, Any] | None = None) -> Obj:
    """Kubernetes' claims; a token bound to a scheduled Pod also names the Pod's Node (1.32)."""
    sa_meta = service_account.get("metadata") or {}
    sa_name = str(sa_meta.get("name"))
    k8s: Obj = {"namespace": namespace, "serviceaccount": {"name": sa_name, "uid": str(sa_meta.get("uid") or "")}}
    ref = spec.get("boundObjectRef")
    if ref and bound is not None:
        meta = bound.get("metadata") or {}
        k8s[str(ref["kind"]).lower()] = {"name": str(meta.get("name")), "uid": str(meta.get("uid") or "")}
    if node is not None and "node" not in k8s:
        node_meta = node.get("metadata") or {}
        k8s["node"] = {"name": str(node_meta.get("name")), "uid": str(node_meta.get("uid") or "")}
    issued = int(now.timestamp())
    return {"iss": issuer, "sub": f"system:serviceaccount:{namespace}:{sa_name}", "aud": list(spec["audiences"]),
            "exp": issued + int(spec["expirationSeconds"]), "iat": issued, "nbf": issued, "jti": str(uuid.uuid4()),
            "kubernetes.io": k8s}


def decode_request(body: Any) -> Obj:
    """A TokenRequest body: a JSON object, or kubectl's protobuf envelope (bytes)."""
    if isinstance(body, (bytes, bytearray)):
        return _from_protobuf(bytes(body))
    if not isinstance(body, dict):
        raise errors.BadRequestError(message="the body of the request was in an unknown format: "
                                             "expected a TokenRequest")
    if body.get("kind") not in (None, "", KIND):
        raise errors.BadRequestError(message=f'the kind in the data ({body.get("kind")}) does not match the expected '
                                             f"kind ({KIND})")
    if body.get("apiVersion") not in (None, "", f"{GROUP}/{VERSION}"):
        raise errors.BadRequestError(message=f'the API version in the data ({body.get("apiVersion")}) does not match '
                                             f"the expected API version ({GROUP}/{VERSION})")
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise errors.BadRequestError(message="TokenRequest.spec must be an object")
    return {"metadata": dict(body.get("metadata") or {}), "spec": dict(spec)}


def _from_protobuf(raw: bytes) -> Obj:
    """TokenRequest{metadata 1, spec 2{audiences 1, boundObjectRef 3{kind 1, apiVersion 2, name 3,
    uid 4}, expirationSeconds 4}} from the envelope (only the fields a client sends)."""
    try:
        _api_version, kind, message = _envelope(raw)
        if kind not in ("", KIND):
            raise errors.BadRequestError(message=f"the kind in the data ({kind}) does not match the expected kind "
                                                 f"({KIND})")
        spec: Obj = {}
        for number, _wire, value in _wire_fields(message):
            if number != 2 or not isinstance(value, bytes):
                continue
            for n, _w, v in _wire_fields(value):
                if n == 1 and isinstance(v, bytes):
                    spec.setdefault("audiences", []).append(v.decode())
                elif n == 4 and isinstance(v, int):
                    spec["expirationSeconds"] = v
                elif n == 3 and isinstance(v, bytes):
                    names = {1: "kind", 2: "apiVersion", 3: "name", 4: "uid"}
                    spec["boundObjectRef"] = {names[k]: x.decode() for k, _w2, x in _wire_fields(v)
                                              if k in names and isinstance(x, bytes)}
    except ProtobufError as e:
        raise errors.BadRequestError(message=f"the request body is not a valid protobuf TokenRequest: {e}") from None
    return {"metadata": {}, "spec": spec}


# ---------------------------------------------------------------------------- the handler
async def request_token(registry: Registry, service_accounts: Resource, namespace: str, name: str, body: Any, *,
                        keys: ServiceAccountKeys, now: datetime | None = None) -> Obj:
    request = decode_request(body)
    spec = defaulted_spec(request["spec"], audiences=keys.api_audiences)
    causes = validate(spec)
    if causes:
        raise errors.invalid(KIND, name, causes, group=GROUP)
    await registry.admission.admit_token_request(namespace, name, spec)  # NodeRestriction: a kubelet's own pods
    sa = (await registry.get(service_accounts, namespace, name)).obj
    bound: Obj | None = None
    ref = spec.get("boundObjectRef")
    if ref:
        version, plural, namespaced = BOUND_KINDS[str(ref["kind"])]
        if ref.get("apiVersion") not in (None, "", version):
            raise errors.BadRequestError(message=f"unsupported bound object apiVersion {ref.get('apiVersion')!r} "
                                                 f"for kind {ref['kind']}")
        res = registry.resources.lookup("", version, plural)
        if res is None:
            raise errors.InternalError(message=f"{plural} are not served")
        bound = dict((await registry.get(res, namespace if namespaced else None, str(ref.get("name") or ""))).obj)
        uid = str((bound.get("metadata") or {}).get("uid") or "")
        if ref.get("uid") and ref["uid"] != uid:
            raise errors.ConflictError(message=f'Operation cannot be fulfilled on {ref["kind"]} "{ref.get("name")}": '
                                               f'the UID in the bound object reference ({ref["uid"]}) does not match '
                                               "the UID in record. The object might have been deleted and then "
                                               "recreated", name=str(ref.get("name")), kind=str(ref["kind"]))
        spec["boundObjectRef"] = {**ref, "apiVersion": version, "uid": uid}
    node = await _pod_node(registry, bound) if ref and ref.get("kind") == "Pod" and bound else None
    now = now or datetime.now(timezone.utc)
    claims = token_claims(namespace=namespace, service_account=sa, spec=spec, bound=bound, now=now,
                          issuer=keys.issuer, node=node)
    token = await keys.sign(claims)
    expires = datetime.fromtimestamp(claims["exp"], timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"kind": KIND, "apiVersion": f"{GROUP}/{VERSION}",
            "metadata": {**request["metadata"], "name": name, "namespace": namespace, "creationTimestamp": stamp},
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}}


async def _pod_node(registry: Registry, pod: Mapping[str, Any]) -> Obj | None:
    node_name = str((pod.get("spec") or {}).get("nodeName") or "")
    nodes = registry.resources.lookup("", "v1", "nodes")
    if not node_name or nodes is None:
        return None
    try:
        return dict((await registry.get(nodes, None, node_name)).obj)
    except errors.NotFoundError:
        return None


__all__ = ["ISSUER", "SIGNING_KEY", "ServiceAccountKeys", "claims_of", "decode_request", "defaulted_spec",
           "request_token", "token_claims", "validate"]

"""RS256 JSON Web Signatures: what ServiceAccount tokens are (after go-jose as Kubernetes uses it).

Data flow: claims + an RSA private key -> ``sign`` -> a compact JWS ``header.claims.signature``
(header ``{"alg": "RS256", "kid": ...}``); a token -> ``parse`` (shape, header, claims) ->
``verify`` against public keys. ``key_id`` is Kubernetes' key id (base64url of the SHA-256 of
the public key's PKIX DER), ``jwk`` the key as /openid/v1/jwks publishes it, and the loaders read
PEM files as kube-apiserver's --service-account-key-file and --service-account-signing-key-file.
Pure: no I/O beyond parsing bytes handed in.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

PublicKey = rsa.RSAPublicKey
PrivateKey = rsa.RSAPrivateKey


class JWSError(ValueError):
    """Not a well-formed RS256 JWS, or a key file that holds no usable RSA key."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as e:
        raise JWSError(f"invalid base64url: {e}") from None


def key_id(key: PublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64url(hashlib.sha256(der).digest())


def jwk(key: PublicKey) -> dict[str, str]:
    numbers = key.public_numbers()

    def _uint(n: int) -> str:
        return b64url(n.to_bytes((n.bit_length() + 7) // 8 or 1, "big"))

    return {"use": "sig", "kty": "RSA", "kid": key_id(key), "alg": "RS256", "n": _uint(numbers.n),
            "e": _uint(numbers.e)}


def sign(claims: Mapping[str, Any], key: PrivateKey) -> str:
    head = b64url(orjson.dumps({"alg": "RS256", "kid": key_id(key.public_key())}))
    body = b64url(orjson.dumps(dict(claims)))
    signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{b64url(signature)}"


@dataclass(frozen=True)
class Parsed:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


def parse(token: str) -> Parsed:
    parts = token.split(".")
    if len(parts) != 3:
        raise JWSError("token is not a compact JWS")
    try:
        header = orjson.loads(b64url_decode(parts[0]))
        claims = orjson.loads(b64url_decode(parts[1]))
    except orjson.JSONDecodeError as e:
        raise JWSError(f"token is malformed: {e}") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JWSError("token is malformed: header and claims must be JSON objects")
    return Parsed(header, claims, f"{parts[0]}.{parts[1]}".encode(), b64url_decode(parts[2]))


def verify(parsed: Parsed, keys: list[PublicKey]) -> bool:
    """True when one of ``keys`` (the one named by ``kid`` first) made the RS256 signature."""
    if parsed.header.get("alg") != "RS256":
        return False
    kid = parsed.header.get("kid")
    for key in sorted(keys, key=lambda k: key_id(k) != kid):
        try:
            key.verify(parsed.signature, parsed.signing_input, padding.PKCS1v15(), hashes.SHA256())
            return True
        except InvalidSignature:
            continue
    return False


# ------------------------------------------------------------------------------- key files
def _pem_blocks(data: bytes) -> list[bytes]:
    blocks, rest = [], data
    while b"-----BEGIN " in rest:
        start = rest.index(b"-----BEGIN ")
        end_marker = rest.find(b"-----END ", start)
        if end_marker < 0:
            break
        end = rest.find(b"-----", end_marker + 9)
        if end < 0:
            break
        blocks.append(rest[start:end + 5])
        rest = rest[end + 5:]
    return blocks


def load_private_key(data: bytes) -> PrivateKey:
    for block in _pem_blocks(data):
        if b"PRIVATE KEY" not in block.split(b"\n", 1)[0]:
            continue
        try:
            key = serialization.load_pem_private_key(block, password=None)
        except (ValueError, TypeError) as e:
            raise JWSError(f"cannot read the private key: {e}") from None
        if isinstance(key, rsa.RSAPrivateKey):
            return key
        raise JWSError("only RSA signing keys are supported")
    raise JWSError("no PEM private key found")


def load_public_keys(data: bytes) -> list[PublicKey]:
    """Every RSA public key in a PEM file: public keys, private keys' public halves, certificates."""
    keys: list[PublicKey] = []
    for block in _pem_blocks(data):
        first = block.split(b"\n", 1)[0]
        try:
            if b"PRIVATE KEY" in first:
                private = serialization.load_pem_private_key(block, password=None)
                public: Any = private.public_key()
            elif b"CERTIFICATE" in first:
                public = x509.load_pem_x509_certificate(block).public_key()
            else:
                public = serialization.load_pem_public_key(block)
        except (ValueError, TypeError) as e:
            raise JWSError(f"cannot read a key: {e}") from None
        if isinstance(public, rsa.RSAPublicKey):
            keys.append(public)
    if not keys:
        raise JWSError("no RSA public key found")
    return keys


def new_private_key() -> PrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


__all__ = ["JWSError", "Parsed", "PrivateKey", "PublicKey", "b64url", "jwk", "key_id", "load_private_key",
           "load_public_keys", "looks_like_jwt", "new_private_key", "parse", "private_key_pem", "sign", "verify"]

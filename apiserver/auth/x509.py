"""The X.509 client certificate authenticator (after apiserver's authentication/request/x509).

Data flow: the TLS layer has already verified the chain against ``--client-ca-file`` and hands
the PEM chain (leaf first) in ``scope["extensions"]["tls"]["client_cert_chain"]`` -> the leaf's
subject: CommonName -> user name, every Organization -> a group; extra
``authentication.kubernetes.io/credential-id`` = ``X509SHA256=<hex of the leaf's DER>``. A leaf
without a CommonName is not an identity (no opinion). Pure.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from machinery.userinfo import UserInfo

from .errors import AuthenticationError

CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"


def user_from_chain(chain: Sequence[str | bytes]) -> UserInfo | None:
    if not chain:
        return None
    leaf = chain[0]
    try:
        cert = x509.load_pem_x509_certificate(leaf.encode() if isinstance(leaf, str) else leaf)
    except ValueError as e:
        raise AuthenticationError(f"cannot read the client certificate: {e}") from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(names[0].value) if names else ""
    if not name:
        return None
    groups = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    fingerprint = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return UserInfo(name=name, groups=groups, extra={CREDENTIAL_ID: (f"X509SHA256={fingerprint}",)})


__all__ = ["user_from_chain"]

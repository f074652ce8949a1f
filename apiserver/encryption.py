"""Encryption at rest: Kubernetes' EncryptionConfiguration read into a per-key value transformer.

After k8s.io/apiserver pkg/server/options/encryptionconfig (config.go), pkg/apis/apiserver/validation
(validation_encryption.go) and pkg/storage/value (transformer.go, encrypt/aes, encrypt/identity).

Data flow: ``--encryption-provider-config FILE`` -> ``load_transformer`` parses and validates the
``apiserver.config.k8s.io/v1`` ``EncryptionConfiguration`` (a bad file raises
``EncryptionConfigError`` naming the field, so the API server refuses to start) -> a ``Transformer``
given to ``EtcdStorage``, which calls ``to_storage(key, value)`` on every write and
``from_storage(key, value)`` on every read, list and watch event. The etcd key picks the resource
(``/registry/<group|core>/<plural>/...``) and so its provider chain: the exact resource
(``secrets``, ``deployments.apps``), then its group (``*.apps``, ``*.`` for the core group), then
``*.*``; a resource no rule names is stored as is.

The chain is Kubernetes' prefix transformer: the first provider writes, every provider reads the
values that carry its prefix. ``aesgcm`` stores ``k8s:enc:aesgcm:v1:<key name>:`` + 12-byte nonce +
ciphertext and tag, with the etcd key as additional authenticated data (a value copied to another
key does not decrypt); ``aescbc`` stores ``k8s:enc:aescbc:v1:<key name>:`` + IV + PKCS#7-padded
ciphertext; ``identity`` stores plain JSON and reads anything that is not ``k8s:enc:``-prefixed, so
values written before encryption was turned on stay readable when ``identity`` is listed. A value no
provider reads raises ``DecryptError`` with Kubernetes' reason (``no matching prefix found``,
``cipher: message authentication failed``); the storage reports it for that key only.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

API_VERSION = "apiserver.config.k8s.io/v1"
KIND = "EncryptionConfiguration"
ENCRYPTED_PREFIX = b"k8s:enc:"
AESGCM_PREFIX = b"k8s:enc:aesgcm:v1:"
AESCBC_PREFIX = b"k8s:enc:aescbc:v1:"
AES_KEY_SIZES = (16, 24, 32)
_UNSUPPORTED = ("secretbox", "kms")  # Kubernetes' other providers; not built here
_PROVIDERS = ("aesgcm", "aescbc", "identity") + _UNSUPPORTED


class EncryptionConfigError(ValueError):
    """The encryption provider configuration file is unusable; the message names the problem."""


class DecryptError(Exception):
    """A stored value no configured provider can read."""


class Provider(Protocol):
    def encrypt(self, data: bytes, aad: bytes) -> bytes: ...

    def decrypt(self, data: bytes, aad: bytes) -> bytes: ...


class _GCM:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, data: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data, aad)

    def decrypt(self, data: bytes, aad: bytes) -> bytes:
        if len(data) < 12:
            raise DecryptError("the stored data was shorter than the required size")
        try:
            return self._aead.decrypt(data[:12], data[12:], aad)
        except InvalidTag:
            raise DecryptError("cipher: message authentication failed") from None


class _CBC:
    """AES-CBC with PKCS#7 padding and a random IV; no authenticated data (as Kubernetes')."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encrypt(self, data: bytes, aad: bytes) -> bytes:
        iv = os.urandom(16)
        padder = padding.PKCS7(128).padder()
        enc = Cipher(algorithms.AES(self._key), modes.CBC(iv)).encryptor()
        return iv + enc.update(padder.update(data) + padder.finalize()) + enc.finalize()

    def decrypt(self, data: bytes, aad: bytes) -> bytes:
        if len(data) < 16:
            raise DecryptError("the stored data was shorter than the required size")
        if len(data) % 16:
            raise DecryptError("the stored data is not a multiple of the block size")
        dec = Cipher(algorithms.AES(self._key), modes.CBC(data[:16])).decryptor()
        plain = dec.update(data[16:]) + dec.finalize()
        try:
            unpadder = padding.PKCS7(128).unpadder()
            return unpadder.update(plain) + unpadder.finalize()
        except ValueError:
            raise DecryptError("invalid padding on input") from None


class _Identity:
    def encrypt(self, data: bytes, aad: bytes) -> bytes:
        return data

    def decrypt(self, data: bytes, aad: bytes) -> bytes:
        if data.startswith(ENCRYPTED_PREFIX):
            raise DecryptError("identity transformer tried to read encrypted data")
        return data


@dataclass(frozen=True)
class Chain:
    """One resource's providers, flattened to (prefix, provider); the first one writes."""

    entries: tuple[tuple[bytes, Provider], ...]

    def to_storage(self, data: bytes, aad: bytes) -> bytes:
        prefix, provider = self.entries[0]
        return prefix + provider.encrypt(data, aad)

    def from_storage(self, data: bytes, aad: bytes) -> bytes:
        errors: list[str] = []
        for prefix, provider in self.entries:
            if not data.startswith(prefix):
                continue
            try:
                return provider.decrypt(data[len(prefix):], aad)
            except DecryptError as e:
                if prefix:  # the identity's refusal never hides a later provider's answer
                    errors.append(str(e))
        if errors:
            raise DecryptError(", ".join(dict.fromkeys(errors)))
        if data.startswith(ENCRYPTED_PREFIX):
            name = data[len(ENCRYPTED_PREFIX):].split(b":", 3)
            what = b":".join(name[:3]).decode(errors="replace")
            raise DecryptError(f"no matching prefix found (stored with {what}, which is not configured)")
        raise DecryptError("no matching prefix found (the value is not encrypted and identity is not configured)")


def _resource_of(key: bytes) -> tuple[str, str] | None:
    """``/registry/<group|core>/<plural>/...`` -> (group, plural); the core group is ""."""
    parts = key.split(b"/", 4)
    if len(parts) < 4 or parts[1] != b"registry":
        return None
    group = parts[2].decode()
    return ("" if group == "core" else group), parts[3].decode()


class Transformer:
    """Picks a key's chain by its resource; keys of resources no rule names pass unchanged."""

    def __init__(self, rules: dict[tuple[str, str], Chain]) -> None:
        self.rules = rules  # (group, resource) with "*" wildcards -> chain
        self._by_prefix: dict[tuple[str, str], Chain | None] = {}

    def chain_for(self, key: bytes) -> Chain | None:
        gr = _resource_of(key)
        if gr is None:
            return None
        if gr not in self._by_prefix:
            group, resource = gr
            self._by_prefix[gr] = (self.rules.get((group, resource)) or self.rules.get((group, "*"))
                                   or self.rules.get(("*", "*")))
        return self._by_prefix[gr]

    def to_storage(self, key: bytes, value: bytes) -> bytes:
        chain = self.chain_for(key)
        return value if chain is None else chain.to_storage(value, key)

    def from_storage(self, key: bytes, value: bytes) -> bytes:
        chain = self.chain_for(key)
        return value if chain is None else chain.from_storage(value, key)


def load_transformer(path: str) -> Transformer | None:
    """The transformer of an EncryptionConfiguration file; None when no file is given."""
    if not path:
        return None
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise EncryptionConfigError(f"error opening encryption provider configuration file {path!r}: {e.strerror}") from e
    if not text.strip():
        raise EncryptionConfigError(f"encryption provider configuration file {path!r} is empty")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise EncryptionConfigError(f"error while parsing file {path!r}: {e}") from e
    try:
        return parse_config(doc)
    except EncryptionConfigError as e:
        raise EncryptionConfigError(f"error while parsing file {path!r}: {e}") from e


def parse_config(doc: Any) -> Transformer:
    """An EncryptionConfiguration (parsed YAML/JSON) -> Transformer; every problem in one error."""
    if not isinstance(doc, dict):
        raise EncryptionConfigError("expected an EncryptionConfiguration object")
    if doc.get("kind") != KIND or doc.get("apiVersion") != API_VERSION:
        raise EncryptionConfigError(f'got unexpected config type: apiVersion "{doc.get("apiVersion")}", '
                                    f'kind "{doc.get("kind")}" (want {API_VERSION}, {KIND})')
    problems: list[str] = []
    resources = doc.get("resources")
    if not isinstance(resources, list) or not resources:
        raise EncryptionConfigError("resources: Required value: at least one resources is required")
    grouped: dict[tuple[str, str], list[tuple[bytes, Provider]]] = {}
    for i, conf in enumerate(resources):
        path = f"resources[{i}]"
        if not isinstance(conf, dict):
            problems.append(f"{path}: Invalid value: expected an object")
            continue
        names = conf.get("resources")
        if not isinstance(names, list) or not names:
            problems.append(f"{path}.resources: Required value: at least one {path}.resources is required")
            names = []
        group_resources = _group_resources(names, f"{path}.resources", problems)
        providers = conf.get("providers")
        if not isinstance(providers, list) or not providers:
            problems.append(f"{path}.providers: Required value: at least one {path}.providers is required")
            continue
        entries: list[tuple[bytes, Provider]] = []
        for j, provider in enumerate(providers):
            entries.extend(_provider(provider, f"{path}.providers[{j}]", problems))
        for gr in group_resources:
            grouped.setdefault(gr, []).extend(entries)
    if problems:
        raise EncryptionConfigError("; ".join(problems))
    return Transformer({gr: Chain(tuple(entries)) for gr, entries in grouped.items()})


def _group_resources(names: list[Any], path: str, problems: list[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k, name in enumerate(names):
        if not isinstance(name, str) or not name:
            problems.append(f"{path}[{k}]: Invalid value: a resource name is required")
            continue
        if name.lower() != name:
            problems.append(f'{path}[{k}]: Invalid value: "{name}": resource name should not contain capital letters')
            continue
        if name == "*":
            problems.append(f'{path}[{k}]: Invalid value: "*": use \'*.\' to encrypt all the resources from '
                            "core API group or *.* to encrypt all resources")
            continue
        resource, _, group = name.partition(".")
        if group == "*" and resource != "*":
            problems.append(f'{path}[{k}]: Invalid value: "{name}": encrypting the same resource across groups '
                            "is not supported")
            continue
        if (group, resource) in out:
            problems.append(f"{path}: Invalid value: the same resource cannot be specified multiple times")
            continue
        out.append((group, resource))
    return out


def _provider(provider: Any, path: str, problems: list[str]) -> list[tuple[bytes, Provider]]:
    kinds = [k for k in _PROVIDERS if isinstance(provider, dict) and k in provider]
    if not kinds:
        problems.append(f"{path}: Invalid value: provider does not contain any of the expected providers: "
                        "aesgcm, aescbc, identity")
        return []
    if len(kinds) > 1:
        problems.append(f"{path}: Invalid value: more than one provider specified in a single element, "
                        "should split into different list elements")
        return []
    kind = kinds[0]
    if kind in _UNSUPPORTED:
        problems.append(f"{path}.{kind}: Unsupported value: minik8s supports the aesgcm, aescbc and identity providers")
        return []
    if kind == "identity":
        return [(b"", _Identity())]
    keys = (provider[kind] or {}).get("keys") if isinstance(provider[kind], dict) else None
    if not isinstance(keys, list) or not keys:
        problems.append(f"{path}.{kind}.keys: Required value: at least one keys is required")
        return []
    prefix, make = (AESGCM_PREFIX, _GCM) if kind == "aesgcm" else (AESCBC_PREFIX, _CBC)
    out: list[tuple[bytes, Provider]] = []
    for k, key in enumerate(keys):
        kpath = f"{path}.{kind}.keys[{k}]"
        name = str((key or {}).get("name") or "") if isinstance(key, dict) else ""
        secret = str((key or {}).get("secret") or "") if isinstance(key, dict) else ""
        if not name:
            problems.append(f"{kpath}.name: Required value: name is a mandatory field for a key")
        if not secret:
            problems.append(f"{kpath}.secret: Required value: secret is a mandatory field for a key")
            continue
        try:
            raw = base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError):
            problems.append(f'{kpath}.secret: Invalid value: "REDACTED": secrets must be base64 encoded')
            continue
        if len(raw) not in AES_KEY_SIZES:
            problems.append(f'{kpath}.secret: Invalid value: "REDACTED": secret is not of the expected length, '
                            f"got {len(raw)}, expected one of [16 24 32]")
            continue
        if name:
            out.append((prefix + name.encode() + b":", make(raw)))
    return out

"""Signed control records: who may change the policy set and the silences, checked by the workers.

Broker ACLs decide who may *write* the control topics; a signature decides whose records the
workers *obey*, so a cluster without ACLs (or a leaked producer credential) is still not open.
Each policy or silence record carries an Ed25519 signature in its ``fp-signature`` header over
the topic, the record key and the value; ``fp-signer`` names the key (a short fingerprint of the
public key). Only the people and tools that apply changes hold the private key
(``fleetpulse control keygen``); workers hold the public key and refuse a record that is
unsigned, signed by another key, or altered (``event=policy_refused reason=signature``).

Pure: keys in, bytes in, verdicts out (files are read by the callers).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_HEADER = "fp-signature"
SIGNER_HEADER = "fp-signer"
_DOMAIN = b"fleetpulse-control-v1"

Headers = Sequence[tuple[str, bytes]]


class SigningKeyError(ValueError):
    """A key file that is not an Ed25519 key of the expected kind; the message says which."""


def _message(topic: str, key: bytes, value: bytes | None) -> bytes:
    # Topic and key are signed too: a signed silence cannot be replayed as another id or onto the policy topic.
    parts = [_DOMAIN, topic.encode(), key, b"" if value is None else value]
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    """Signs control records with a private key (held by whoever applies changes)."""

    private: Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        return fingerprint(self.private.public_key())

    def headers(self, topic: str, key: bytes, value: bytes | None) -> list[tuple[str, bytes]]:
        signature = self.private.sign(_message(topic, key, value))
        return [(SIGNATURE_HEADER, base64.b64encode(signature)), (SIGNER_HEADER, self.key_id.encode())]


@dataclass(frozen=True)
class Verifier:
    """Checks control records against the public keys a worker trusts."""

    keys: tuple[Ed25519PublicKey, ...]

    def problem(self, topic: str, key: bytes, value: bytes | None, headers: Headers | None) -> str | None:
        """None when a trusted key signed exactly this record; else why not (for the log)."""
        found = dict(headers or ())
        raw = found.get(SIGNATURE_HEADER)
        if raw is None:
            return "unsigned"
        try:
            signature = base64.b64decode(raw, validate=True)
        except ValueError:
            return "signature unreadable"
        message = _message(topic, key, value)
        for public in self.keys:
            try:
                public.verify(signature, message)
                return None
            except InvalidSignature:
                continue
        signer = found.get(SIGNER_HEADER, b"?").decode(errors="replace")[:32]
        return f"bad signature (signer {signer} not trusted, or the record was altered)"


def new_private_key_pem() -> tuple[bytes, bytes]:
    """A fresh key pair as PEM: (private PKCS#8, public SubjectPublicKeyInfo)."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def signer_from_pem(pem: bytes, where: str) -> Signer:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{where}: not a PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{where}: an Ed25519 private key is needed (fleetpulse control keygen)")
    return Signer(key)


def verifier_from_pems(pems: Iterable[tuple[bytes, str]]) -> Verifier:
    """Public keys (PEM, where each came from); several let a key be rotated without a gap."""
    keys = []
    for pem, where in pems:
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError) as exc:
            raise SigningKeyError(f"{where}: not a PEM public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError(f"{where}: an Ed25519 public key is needed (fleetpulse control keygen)")
        keys.append(key)
    if not keys:
        raise SigningKeyError("no public key given")
    return Verifier(tuple(keys))

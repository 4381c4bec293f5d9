"""Encryption at rest: the AES-256-GCM primitive, and the personal fields of tickets and participants.

- `seal` / `open_sealed`: AES-GCM with a fresh 96-bit nonce and associated data; the chat (chat/crypto.py)
  seals messages and attachments with it under per-consultation data keys.
- `FieldCipher`: a ticket's reason, callback phone and owner name, and a participant's display name, are stored
  as `enc1:<base64>` sealed under a per-tenant key derived (HKDF-SHA256) from the master key
  (`NETTLEGE_CHAT_MASTER_KEY`, never in Redis). The associated data names the tenant and the kind of field, so
  a value copied to another tenant or into another kind of field does not open. A ticket's sealed owner name is
  copied as is into the participant the take-next script creates (same kind, `name`).
  Without a master key (`FieldCipher(None)`, store tests) values stay plaintext; a plaintext value is read as
  it is, so data written before encryption was switched on stays readable until it expires.
"""

from __future__ import annotations

import base64
import os
from dataclasses import replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .models import Participant, Ticket

NONCE_BYTES = 12
SEALED_PREFIX = "enc1:"
UNREADABLE = "(kan ikke leses)"  # shown instead of a field that no longer opens (a rotated master key)


def seal(key: bytes, plaintext: bytes, aad: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext, aad.encode())).decode()


def open_sealed(key: bytes, sealed: str, aad: str) -> bytes:
    raw = base64.b64decode(sealed)
    return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad.encode())


class FieldCipher:
    """Seals and opens personal fields per tenant. `master_key` None: no encryption (tests of the store)."""

    def __init__(self, master_key: bytes | None) -> None:
        if master_key is not None and len(master_key) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._master = master_key
        self._keys: dict[str, bytes] = {}

    @property
    def enabled(self) -> bool:
        return self._master is not None

    def _key(self, tenant: str) -> bytes:
        key = self._keys.get(tenant)
        if key is None:
            assert self._master is not None
            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=f"nettlege-field-key-v1|{tenant}".encode()).derive(self._master)
            self._keys[tenant] = key
        return key

    def seal(self, tenant: str, kind: str, value: str | None) -> str | None:
        if not value or self._master is None:
            return value
        return SEALED_PREFIX + seal(self._key(tenant), value.encode(), f"nettlege-field-v1|{tenant}|{kind}")

    def open(self, tenant: str, kind: str, value: str | None) -> str | None:
        if not value or not value.startswith(SEALED_PREFIX):
            return value
        if self._master is None:
            return UNREADABLE
        try:
            return open_sealed(self._key(tenant), value[len(SEALED_PREFIX):],
                               f"nettlege-field-v1|{tenant}|{kind}").decode()
        except (InvalidTag, ValueError):
            return UNREADABLE

    # --- the records that hold personal fields ------------------------------------------------------
    def sealed_ticket(self, t: Ticket) -> Ticket:
        return replace(t, reason=self.seal(t.tenant, "reason", t.reason) or "",
                       owner_name=self.seal(t.tenant, "name", t.owner_name) or "",
                       callback_phone=self.seal(t.tenant, "phone", t.callback_phone))

    def opened_ticket(self, t: Ticket) -> Ticket:
        return replace(t, reason=self.open(t.tenant, "reason", t.reason) or "",
                       owner_name=self.open(t.tenant, "name", t.owner_name) or "",
                       callback_phone=self.open(t.tenant, "phone", t.callback_phone))

    def participant_json(self, tenant: str, p: Participant) -> str:
        return replace(p, display_name=self.seal(tenant, "name", p.display_name) or "").to_json()

    def participant(self, tenant: str, raw: str) -> Participant:
        p = Participant.from_json(raw)
        return replace(p, display_name=self.open(tenant, "name", p.display_name) or "")

"""The chat's Redis key names, declared the way rooms/keys.py declares the rest: namespaced by tenant with the
same `{tenant}` hash tag, so chat's scripts stay in the tenant's one Redis Cluster slot."""

from __future__ import annotations

from rooms.keys import Keys


class ChatKeys:
    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.prefix = Keys(tenant).prefix  # one place says how a tenant's keys begin

    def data_key(self, cid: str) -> str:
        """The consultation's chat data key, wrapped by the master key. Deleting it shreds the history."""
        return f"{self.prefix}chat:{cid}:key"

    def keyed(self) -> str:
        """Consultations that have a chat data key (for the retention sweep)."""
        return f"{self.prefix}chat:keyed"

    def messages(self, cid: str) -> str:
        return f"{self.prefix}chat:{cid}:messages"

    def client_ids(self, cid: str) -> str:
        """participant id + client_id -> "stream id|ts" of the stored message (idempotent retries)."""
        return f"{self.prefix}chat:{cid}:client_ids"

    def reads(self, cid: str) -> str:
        return f"{self.prefix}chat:{cid}:reads"

    def attachments(self, cid: str) -> str:
        """attachment id -> sealed attachment (a hash, so a shred reaches them all at once)."""
        return f"{self.prefix}chat:{cid}:attachments"

    def bytes(self, cid: str) -> str:
        """Attachment bytes stored in a consultation: `_total` and participant id -> bytes (quotas)."""
        return f"{self.prefix}chat:{cid}:bytes"

    def bytes_total(self) -> str:
        """Attachment bytes the tenant stores (its quota and the global cap)."""
        return f"{self.prefix}chat:bytes"

    def rate(self, participant_id: str, window: int) -> str:
        """A sender's message count in one rate window (rooms' rate key space, bucket `chat`)."""
        return Keys(self.tenant).rate(participant_id, "chat", window)

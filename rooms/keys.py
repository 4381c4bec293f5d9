"""Redis key names. Every key is namespaced by tenant; the `{tenant}` hash tag keeps one
tenant's keys in one Redis Cluster slot so multi-key Lua scripts stay legal there too."""


class Keys:
    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.prefix = f"nl:{{{tenant}}}:"

    def queue(self, service: str) -> str:
        return f"{self.prefix}queue:{service}"

    def queue_owners(self, service: str) -> str:
        """Waiting ticket id -> its owner, beside the queue: take-next learns the keys of the head's tickets (which
        its script must declare) from the script before, without reading each ticket."""
        return f"{self.prefix}queue:{service}:owners"

    def queue_taken_seq(self, service: str) -> str:
        """A counter numbering the service's takes (Ticket.taken_seq)."""
        return f"{self.prefix}queue:{service}:taken_seq"

    def ticket(self, ticket_id: str) -> str:
        return f"{self.prefix}ticket:{ticket_id}"

    def open_ticket(self, owner: str, service: str) -> str:
        """The one waiting ticket an owner may hold per service."""
        return f"{self.prefix}owner:{owner}:ticket:{service}"

    def disconnected(self) -> str:
        return f"{self.prefix}disconnected"

    def clinicians(self, service: str) -> str:
        return f"{self.prefix}clinicians:{service}"

    def service_stats(self, service: str, day: str) -> str:
        """Anonymous counters of one service and Europe/Oslo day (rooms/stats.py); no ids inside."""
        return f"{self.stats_prefix()}{service}:{day}"

    def stats_prefix(self) -> str:
        """Scripts that learn the service inside Lua append `service:day` to this."""
        return f"{self.prefix}stats:"

    def service_settings(self, service: str) -> str:
        """Opening hours and closures an admin set at runtime (JSON); the config file is the default."""
        return f"{self.prefix}settings:{service}"

    def booking(self, cid: str) -> str:
        """A booking system's slot: host, citizen, slot time, who booked it (rooms/bookings.py)."""
        return f"{self.prefix}booking:{cid}"

    def bookings_due(self) -> str:
        """Booked consultations by the time they turn into a no-show if nobody came."""
        return f"{self.prefix}bookings:due"

    def bookings_by_day(self, subject: str, day: str) -> str:
        """A host clinician's booked consultations on one Oslo day (the dashboard's list)."""
        return f"{self.prefix}subject:{subject}:bookings:{day}"

    def booking_webhook_cursor(self, booker: str) -> str:
        """The change time up to which a booking system's webhook has been delivered."""
        return f"{self.prefix}booker:{booker}:webhook:cursor"

    def booking_webhook_lock(self, booker: str) -> str:
        """Held by the one process delivering a booking system's webhook round."""
        return f"{self.prefix}booker:{booker}:webhook:lock"

    def bookings_of(self, booker: str) -> str:
        """A booking system's bookings by slot time (what its polling reads)."""
        return f"{self.prefix}booker:{booker}:bookings"

    def consultation(self, cid: str) -> str:
        return f"{self.prefix}consultation:{cid}"

    def participants(self, cid: str) -> str:
        return f"{self.prefix}consultation:{cid}:participants"

    def subjects(self, cid: str) -> str:
        return f"{self.prefix}consultation:{cid}:subjects"

    def consultation_node(self, cid: str) -> str:
        """The node that holds this consultation's media."""
        return f"{self.prefix}consultation:{cid}:node"

    def consultation_audit(self, cid: str) -> str:
        return f"{self.prefix}consultation:{cid}:audit"

    def my_consultations(self, subject: str) -> str:
        return f"{self.prefix}subject:{subject}:consultations"

    def subject_audit(self, subject: str) -> str:
        """Audit entry ids outside consultations that touched this person's data (ticket reads)."""
        return f"{self.prefix}subject:{subject}:audit"

    def invite(self, digest: str) -> str:
        return f"{self.prefix}invite:{digest}"

    def audit(self) -> str:
        return f"{self.prefix}audit"

    def audit_seen(self, action: str, actor: str, cid: str) -> str:
        return f"{self.prefix}audit:seen:{action}:{actor}:{cid}"

    def audit_macs(self) -> str:
        """audit entry id -> its HMAC chain value (written by the sealer; see rooms/audit_seal.py)."""
        return f"{self.prefix}audit:mac"

    def rate(self, subject: str, bucket: str, window: int) -> str:
        return f"{self.prefix}rate:{bucket}:{subject}:{window}"

    def events(self, topic: str) -> str:
        """A pub/sub channel (rooms/events.py), not a key: Redis Cluster sends PUBLISH to every node whatever its
        name, so a script may publish on a channel whose name ends in an id it learns itself (take-next: the
        taken ticket's topic, `events("ticket:")` + its id)."""
        return f"{self.prefix}events:{topic}"

    # The chat's keys (same prefix, same slot) are declared in chat/keys.py.

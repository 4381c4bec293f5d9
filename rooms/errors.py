"""Domain errors. Each carries a stable machine-readable code and a human message.

The HTTP layer maps them to status codes; the domain knows nothing of HTTP.
"""


class DomainError(Exception):
    code = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class Forbidden(DomainError):
    code = "forbidden"


class Gone(DomainError):
    """A capability that existed but can no longer be used (spent or expired invite)."""

    code = "gone"


class ServiceClosed(Conflict):
    code = "service_closed"


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    """The store cannot take the change right now (a failover, too few replicas); retry after a while."""

    code = "store_unavailable"

    def __init__(self, message: str, retry_after_s: int, code: str | None = None) -> None:
        super().__init__(message, code)
        self.retry_after_s = retry_after_s


class NotReplicated(Unavailable):
    """REDIS_MIN_REPLICAS_ACK replicas did not confirm the change in time: not acked, safe to retry."""

    code = "not_replicated"

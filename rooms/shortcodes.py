"""Short codes for a caller without SMS: the operator reads six digits aloud instead of a 73-character link.

A code stands for one invite token. It is single use (read and deleted in one GETDEL), lives a few minutes,
and is looked up without a tenant (the caller knows only the code), so its key sits outside the tenants'
namespaces. Guessing is bounded by the caller's rate limit (signaling) and by how few codes live at once.
"""

from __future__ import annotations

import secrets

import redis.asyncio as aioredis

from .errors import Unavailable

CODE_TTL_S = 600
CODE_DIGITS = 6


def _key(code: str) -> str:
    return f"nettlege:shortcode:{code}"


def is_code(text: object) -> bool:
    return isinstance(text, str) and len(text) == CODE_DIGITS and text.isascii() and text.isdigit()


class ShortCodes:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._r = redis

    async def create(self, invite_token: str, ttl_s: int = CODE_TTL_S) -> str:
        """A fresh code for the invite (never one that is in use)."""
        for _ in range(20):
            code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
            if await self._r.set(_key(code), invite_token, nx=True, ex=ttl_s):
                return code
        raise Unavailable("Fant ingen ledig kode. Prøv igjen.", retry_after_s=1, code="no_free_code")

    async def redeem(self, code: str) -> str | None:
        """The invite token, once; None for an unknown, used or expired code."""
        if not is_code(code):
            return None
        token = await self._r.getdel(_key(code))
        return token if isinstance(token, str) else (token.decode() if isinstance(token, bytes) else None)

"""Types at the redis-py boundary: what Redis replies are in nettlege (text), and a hash as redis-py takes it.

redis-py types every reply as `bytes | str`, since it cannot know how a client was made. Every client nettlege
makes has decode_responses=True (`rooms.store.connect`), so a reply is always `str`. These functions say so once,
at the library boundary, instead of a cast at each call site; at run time they return their argument unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from typing import TypeAlias, cast

from redis.typing import EncodableT

# What redis-py accepts as a hash's fields and values (`hset(mapping=...)`).
Fields: TypeAlias = Mapping[EncodableT, EncodableT]


def as_hash(mapping: Mapping[str, str]) -> Fields:
    """A str -> str hash for `hset(mapping=...)`. Mapping's key type is invariant, so redis-py's signature
    refuses a dict[str, str] as it stands, though redis-py only reads the items."""
    return cast(Fields, mapping)


def text(reply: bytes | str) -> str:
    """A reply known to be present (a member, a field of a known hash, a script's string answer)."""
    return cast(str, reply)


def text_or_none(reply: bytes | str | None) -> str | None:
    """A reply that is None when the key or field is missing (GET, HGET)."""
    return cast("str | None", reply)


def texts(reply: Iterable[object] | None) -> list[str]:
    """The members of a list reply (ZRANGE without scores, LRANGE, HMGET of present fields)."""
    return cast("list[str]", reply)


def scored(reply: Iterable[object]) -> list[tuple[str, float]]:
    """ZRANGE ... WITHSCORES: (member, score) pairs."""
    return cast("list[tuple[str, float]]", reply)


def optional_texts(reply: Iterable[object] | None) -> list[str | None]:
    """The values of HMGET: None where a field is missing."""
    return cast("list[str | None]", reply)


def text_set(reply: Set[bytes | str]) -> set[str]:
    """The members of SMEMBERS."""
    return cast("set[str]", reply)


def hash_fields(reply: Mapping[bytes | str, bytes | str] | None) -> dict[str, str]:
    """HGETALL (or a stream entry's fields): empty when the key is missing."""
    return cast("dict[str, str]", reply)


def stream_entries(reply: Iterable[object] | None) -> list[tuple[str, dict[str, str]]]:
    """XRANGE / XREVRANGE: (entry id, fields) pairs, oldest first for XRANGE."""
    return cast("list[tuple[str, dict[str, str]]]", reply)

"""Hypothesis strategies for what a client can send: JSON of any shape, odd text, and values close to the
real ones (roles, channels, ids that exist) so examples get past validation into the handlers."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from rooms.models import Channel, Outcome, Priority, Role

NASTY_TEXT = ["", " ", "\u0000", "\ud800", "\udfff", "\u202e", "💥" * 50, "x" * 5000, "../../etc/passwd", "%00",
              "null", "[]", "{}", "1e999", "-0", "<script>", "' OR 1=1 --", "\\", "\r\n", "a\u0301", "nli.oslo.x",
              "nli.oslo." + "a" * 30]
WORDS = [*(r.value for r in Role), *(c.value for c in Channel), *(o.value for o in Outcome),
         *(p.value for p in Priority), "oslo", "bergen", "nettlege", "legevakt", "json", "pdf", "text", "all",
         "from_join", "+47 912 34 567", "2026-11-29"]


def text(extra: list[str] | None = None) -> st.SearchStrategy[str]:
    """Any text, surrogates included, or a word the API knows."""
    return st.one_of(st.text(max_size=60), st.text(st.characters(codec=None, categories=None), max_size=30),
                     st.sampled_from(NASTY_TEXT + WORDS + (extra or [])))


def json_values(extra: list[str] | None = None) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                        st.floats(allow_nan=False, allow_infinity=False), text(extra))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(text(extra), inner, max_size=4)),
                        max_leaves=12)


def objects(fields: list[str], extra: list[str] | None = None,
            values: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object with some of these fields (and now and then one more)."""
    values = values if values is not None else json_values(extra)
    return st.builds(lambda known, unknown: {**known, **unknown},
                     st.dictionaries(st.sampled_from(fields), values, max_size=len(fields)) if fields else st.just({}),
                     st.dictionaries(text(), values, max_size=1))


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


RAW_BODIES = [b"", b"{", b"null", b"[]", b'"x"', b"\xff\xfe\x00", b'{"a": "\\ud800"}', b'{"a": 1e999}',
              b'{"a": NaN}', ('{"a": ' + deep(5000) + "}").encode(), b'{"a":1,"a":2}', b"\x00" * 64]

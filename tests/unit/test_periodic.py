"""signaling.periodic: a failing round is logged and the next one still runs; leaving the block stops the loop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from signaling.periodic import periodic


async def test_a_failing_round_is_logged_and_the_rounds_go_on_until_the_block_ends(caplog) -> None:
    rounds = 0
    third = asyncio.Event()

    async def round_() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 3:
            third.set()
        if rounds == 1:
            raise ConnectionError("redis away")

    with caplog.at_level(logging.WARNING, logger="signaling.periodic"):
        async with periodic("test-round", 0.001, round_):
            await asyncio.wait_for(third.wait(), 10)
    done = rounds
    assert [r.getMessage() for r in caplog.records] == ["test-round failed: ConnectionError"]
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "test-round"]
    await asyncio.sleep(0)  # a loop still running would get a turn here
    assert rounds == done


@pytest.mark.parametrize("at_start", [True, False])
async def test_the_first_round_waits_an_interval_unless_at_start(at_start: bool) -> None:
    rounds = 0

    async def round_() -> None:
        nonlocal rounds
        rounds += 1

    async with periodic("test-first", 3600, round_, at_start=at_start):
        for _ in range(5):
            await asyncio.sleep(0)
    assert rounds == (1 if at_start else 0)

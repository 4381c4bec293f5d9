"""Fixtures for the Redis failure tests: real Sentinel and Cluster topologies (tests/ha/topology.py), apps on them.

Sync topology calls (kill, waiting for a failover) run in a thread so an in-process app keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from signaling.config import Config, load_config
from tests.chat.conftest import ORIGIN, Client
from tests.conftest import close_app

from .topology import SentinelSet, sentinel_set

MASTER_KEY = base64.b64encode(b"m" * 32).decode()  # every process of a deployment shares it


@pytest.fixture(autouse=True)
def _redis_server_needed() -> None:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is missing (make system-deps)")
        pytest.skip("redis-server is not installed")


@pytest.fixture
def sentinels() -> Iterator[SentinelSet]:
    """A primary, two replicas and three Sentinels (down-after 1 s). Two replicas, so that after the primary is
    killed the promoted one still has a replica and REDIS_MIN_REPLICAS_ACK=1 can keep acking."""
    with sentinel_set(replicas=2, down_after_ms=1000) as topology:
        yield topology


@pytest.fixture
def lone_primary() -> Iterator[SentinelSet]:
    """A primary without replicas, watched by three Sentinels: nothing to fail over to."""
    with sentinel_set(replicas=0, down_after_ms=1000) as topology:
        yield topology


def ha_config(config_file: str, env: dict[str, str], **overrides: Any) -> Config:
    environ = {"NETTLEGE_ENV": "test", "NETTLEGE_SECRET_KEY": "test-secret-key-with-enough-length-0123456789",
               "NETTLEGE_CHAT_MASTER_KEY": MASTER_KEY, **env}
    return load_config(config_file, environ=environ, allowed_origins=[ORIGIN], **overrides)


@contextlib.asynccontextmanager
async def running(app: TestClient) -> AsyncIterator[TestClient]:
    try:
        yield app
    finally:
        await close_app(app, 30)


async def in_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


RETRYABLE = ("unavailable", "not_replicated", "store_unavailable")


async def send_until_acked(client: Client, cid: str, text: str, client_id: str, within_s: float = 30) -> dict:
    """What a client does: resend with the same client_id until the server acks (dedup keeps it once)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        try:
            ack = await client.call("message", {"consultation_id": cid, "client_id": client_id, "text": text},
                                    wait_s=10)
        except Exception as exc:  # socketio's TimeoutError: the ack got lost, send again
            ack = {"ok": False, "error": type(exc).__name__}
        if ack.get("ok"):
            return ack
        assert ack["error"] in (*RETRYABLE, "TimeoutError"), ack
        if loop.time() > deadline:
            raise AssertionError(f"message {client_id} never acked; last answer {ack}")
        await asyncio.sleep(0.1)


async def full_history(client: Client, cid: str) -> list[dict]:
    out: list[dict] = []
    after = None
    while True:
        page = await client.call("history", {"consultation_id": cid, "after_id": after})
        assert page["ok"], page
        out += page["messages"]
        if not page["more"] or not page["messages"]:
            return out
        after = page["messages"][-1]["id"]


def new_client_id() -> str:
    return uuid.uuid4().hex


def failovers_seen(metrics_text: str) -> float:
    """nettlege_store_failovers_total from a /metrics page (a primary change seen through Sentinel; a Sentinel
    still naming the old primary for a moment can make one failover count twice)."""
    for line in metrics_text.splitlines():
        if line.startswith("nettlege_store_failovers_total "):
            return float(line.split()[1])
    raise AssertionError("no nettlege_store_failovers_total on /metrics")

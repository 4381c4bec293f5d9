"""python-socketio's cross-process manager for each Redis deployment.

AsyncRedisManager speaks a plain URL and `redis+sentinel://` itself (it asks the Sentinels for the primary
on every reconnect). For a Redis Cluster it connects to one node with a plain client: classic pub/sub
messages are forwarded to every node of a cluster, so a subscription on any node hears every process's
broadcasts (the Socket.IO channel has no slot of its own to shard on).
"""

from __future__ import annotations

import socketio

from rooms.store import RedisSettings

CHANNEL = "nettlege-chat"


def chat_manager(settings: RedisSettings) -> socketio.AsyncManager | None:
    """None for the embedded store: one process, in-memory rooms."""
    if settings.sentinels:
        # Short connect timeout so a dead Sentinel or primary is skipped quickly during a failover.
        return socketio.AsyncRedisManager(settings.socketio_url(), channel=CHANNEL,
                                          redis_options={"socket_connect_timeout": 2})
    url = settings.cluster_url or settings.url
    return socketio.AsyncRedisManager(url, channel=CHANNEL) if url else None

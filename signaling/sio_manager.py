"""python-socketio's cross-process manager for each Redis deployment.

AsyncRedisManager speaks a plain URL and `redis+sentinel://` itself (it asks the Sentinels for the primary
on every reconnect); for a Redis Cluster it gets a RedisCluster client: classic pub/sub messages reach
every node of a cluster, so one subscription on any node hears every process's broadcasts.
"""

from __future__ import annotations

from typing import Any

import socketio
from redis.asyncio.cluster import RedisCluster

from rooms.store import RedisSettings

CHANNEL = "nettlege-chat"


class ClusterRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    def _redis_connect(self) -> None:
        self.redis: Any = RedisCluster.from_url(self.redis_url, **self.redis_options)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.connected = True


def chat_manager(settings: RedisSettings) -> socketio.AsyncManager | None:
    """None for the embedded store: one process, in-memory rooms."""
    if settings.cluster_url:
        return ClusterRedisManager(settings.cluster_url, channel=CHANNEL)
    if settings.sentinels:
        # Short socket timeouts so a dead Sentinel or primary is skipped quickly during a failover.
        return socketio.AsyncRedisManager(settings.socketio_url(), channel=CHANNEL,
                                          redis_options={"socket_connect_timeout": 2})
    if settings.url:
        return socketio.AsyncRedisManager(settings.url, channel=CHANNEL)
    return None

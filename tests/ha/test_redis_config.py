"""The Redis settings: which deployment the environment describes, and what is refused at start."""

from __future__ import annotations

import pytest

from signaling.config import ConfigError, load_config

BASE = {"NETTLEGE_ENV": "test", "NETTLEGE_SECRET_KEY": "test-secret-key-with-enough-length-0123456789"}


def test_sentinel_cluster_and_single_from_the_environment(config_file):  # type: ignore[no-untyped-def]
    s = load_config(config_file, environ={**BASE, "REDIS_SENTINELS": "10.0.0.1:26379, 10.0.0.2:26380",
                                          "REDIS_SENTINEL_MASTER": "nettlege", "REDIS_MIN_REPLICAS_ACK": "1",
                                          "REDIS_WAIT_TIMEOUT_MS": "500", "REDIS_RETRY_S": "8"}).redis_settings()
    assert s.kind == "sentinel" and s.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380))
    assert (s.min_replicas_ack, s.wait_timeout_ms, s.retry_s) == (1, 500, 8.0)
    assert s.socketio_url() == "redis+sentinel://10.0.0.1:26379,10.0.0.2:26380/0/nettlege"
    c = load_config(config_file, environ={**BASE, "REDIS_CLUSTER_URL": "redis://10.0.0.3:7000"}).redis_settings()
    assert c.kind == "cluster" and c.cluster_url == "redis://10.0.0.3:7000"
    u = load_config(config_file, environ={**BASE, "REDIS_URL": "redis+cluster://10.0.0.3:7000/0"}).redis_settings()
    assert u.kind == "cluster" and u.cluster_url == "redis://10.0.0.3:7000/0" and u.url is None
    assert load_config(config_file, environ=BASE).redis_settings().kind == "embedded"


@pytest.mark.parametrize(("env", "words"), [
    ({"REDIS_URL": "redis://a:6379", "REDIS_CLUSTER_URL": "redis://b:7000"}, "only one of"),
    ({"REDIS_SENTINELS": "a:26379"}, "go together"),
    ({"REDIS_SENTINELS": "a", "REDIS_SENTINEL_MASTER": "m"}, "not host:port"),
    ({"REDIS_CLUSTER_URL": "redis://b:7000", "REDIS_MIN_REPLICAS_ACK": "1"}, "not a cluster"),
    ({"REDIS_MIN_REPLICAS_ACK": "1"}, "not the embedded store"),
    ({"REDIS_URL": "redis://a:6379", "REDIS_MIN_REPLICAS_ACK": "-1"}, "redis_min_replicas_ack"),
])
def test_contradictions_stop_the_start(config_file, env, words):  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=words):
        load_config(config_file, environ={**BASE, **env})

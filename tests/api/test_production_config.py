"""Production refuses to start on unsafe settings (issue 12, finding 13); development keeps its defaults."""

from __future__ import annotations

import base64
import secrets

import pytest

from signaling.config import ConfigError, load_config, weak_secret


def _env(redis_url: str, **extra: str) -> dict[str, str]:
    return {"NETTLEGE_ENV": "production", "REDIS_URL": redis_url,
            "NETTLEGE_SECRET_KEY": secrets.token_urlsafe(32),
            "NETTLEGE_CHAT_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "NETTLEGE_AUDIT_KEY": secrets.token_urlsafe(32),
            "NETTLEGE_PUBLIC_URL": "https://video.oslo.test", **extra}


def test_a_complete_production_config_starts_without_localhost_origins(config_file):
    config = load_config(config_file, environ=_env("redis://127.0.0.1:6390/0"))
    assert config.production and config.origins() == ["https://video.oslo.test"]
    dev = load_config(config_file, environ={})
    assert "http://127.0.0.1:8080" in dev.origins()


@pytest.mark.parametrize("secret", ["change-me", "x" * 64, "ab" * 40, "abcdefgh" * 8, secrets.token_hex(16),
                                    "test-secret-key"])
def test_a_weak_secret_key_stops_production(config_file, secret):
    with pytest.raises(ConfigError, match="secret_key is too weak"):
        load_config(config_file, environ=_env("redis://127.0.0.1:6390/0", NETTLEGE_SECRET_KEY=secret))


def test_random_secrets_are_strong():
    assert not any(weak_secret(secrets.token_urlsafe(32)) for _ in range(1000))
    assert not any(weak_secret(secrets.token_hex(32)) for _ in range(1000))


def test_production_needs_redis_of_some_kind(config_file):
    env = _env("")
    del env["REDIS_URL"]
    with pytest.raises(ConfigError, match="production needs Redis"):
        load_config(config_file, environ=env)
    sentinels = {**env, "REDIS_SENTINELS": "127.0.0.1:26379", "REDIS_SENTINEL_MASTER": "nettlege"}
    assert load_config(config_file, environ=sentinels).redis_sentinels
    cluster = {**env, "REDIS_CLUSTER_URL": "redis://127.0.0.1:7000/0"}
    assert load_config(config_file, environ=cluster).redis_cluster_url


@pytest.mark.parametrize("public_url", [None, "http://video.oslo.test"])
def test_production_needs_an_https_public_url(config_file, public_url):
    env = _env("redis://127.0.0.1:6390/0")
    del env["NETTLEGE_PUBLIC_URL"]
    with pytest.raises(ConfigError, match="public_url"):
        load_config(config_file, environ=env, public_url=public_url)

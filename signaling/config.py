"""Configuration: a TOML file plus environment variables, parsed and checked by pydantic.

Environment wins over the file: REDIS_URL (or REDIS_SENTINELS + REDIS_SENTINEL_MASTER, or REDIS_CLUSTER_URL),
REDIS_MIN_REPLICAS_ACK, REDIS_WAIT_TIMEOUT_MS, REDIS_RETRY_S, NETTLEGE_ENV, NETTLEGE_SECRET_KEY,
NETTLEGE_CHAT_MASTER_KEY, NETTLEGE_AUDIT_KEY, NETTLEGE_AUDIT_CHECKPOINTS,
NETTLEGE_HOST, NETTLEGE_PORT, NETTLEGE_PUBLIC_URL, NETTLEGE_ALLOWED_ORIGINS (comma separated),
NETTLEGE_MEDIA_LISTEN_IPS (comma separated), NETTLEGE_MEDIA_ANNOUNCED_IP.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import math
import os
import secrets
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rooms.models import Role
from rooms.store import RedisSettings
from rooms.tenants import Tenant

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """Bad configuration; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IssuerConfig(_Strict):
    """An OIDC issuer whose access tokens nettlege accepts (HelseID, ID-porten/Helsenorge, a booking system)."""

    issuer: str
    name: str | None = None  # for people: "HelseID", "ID-porten"
    jwks_url: str
    audience: str
    algorithms: list[str] = ["RS256", "ES256", "PS256"]
    role: Role | None = None  # fixed role for every token of this issuer, e.g. clinician for HelseID
    role_claim: str = "nettlege_role"
    tenant: str | None = None  # fixed tenant, else read from tenant_claim
    tenant_claim: str = "nettlege_tenant"
    name_claim: str = "name"
    # Browser login (authorization-code flow with PKCE); an issuer without these only has its tokens accepted.
    client_id: str | None = None
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    scope: str = "openid"


class TurnConfig(_Strict):
    """coturn with `use-auth-secret`: time-limited credentials per the TURN REST API."""

    urls: list[str]
    secret: str
    ttl_s: int = Field(default=3600, gt=0, le=86400)


class IceServer(_Strict):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


def _ip(value: str) -> str:
    return str(ipaddress.ip_address(value))  # ValueError names the bad value


class MediaSettings(_Strict):
    """Where the SFU's media sockets listen and what the SDP announces (like mediasoup's listen infos).

    `listen_ips` unset: the `host` the server is bound to if it is a specific address, loopback for a
    loopback host, every non-loopback interface for 0.0.0.0 or a host name. `announced_ip`: the address
    written into candidates instead of the listen address (a server behind 1:1 NAT)."""

    listen_ips: list[str] | None = None
    announced_ip: str | None = None

    @field_validator("listen_ips")
    @classmethod
    def _addresses(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_ip(v) for v in value]

    @field_validator("announced_ip")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else _ip(value)


class Limits(_Strict):
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    max_reason_chars: int = Field(default=200, gt=0)
    writes_per_minute: int = Field(default=60, gt=0)
    max_invite_ttl_s: int = Field(default=7 * 86400, gt=0)


class Config(_Strict):
    env: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None
    node_url: str | None = None  # this process's own base URL when several nodes share Redis
    node_timeout_s: float = Field(default=6.0, gt=0)  # a node silent this long is taken out
    redis_url: str | None = None
    redis_sentinels: list[str] = []  # "host:port" of each Sentinel; with redis_sentinel_master instead of redis_url
    redis_sentinel_master: str | None = None
    redis_cluster_url: str | None = None  # a Redis Cluster instead of redis_url
    redis_min_replicas_ack: int = Field(default=0, ge=0, le=16)  # acks wait for this many replicas (WAIT)
    redis_wait_timeout_ms: int = Field(default=1000, gt=0, le=60_000)
    redis_retry_s: float = Field(default=5.0, ge=0, le=120)  # connection errors retried this long, then 503
    redis_max_connections: int = Field(default=64, ge=4)  # per process; sessions share one event subscription
    secret_key: str | None = None
    chat_master_key: str | None = None  # base64 of 32 bytes
    audit_key: str | None = None  # HMAC key (>= 32 characters) sealing the audit trail; never stored in Redis
    audit_checkpoint_path: str | None = None  # JSON-lines file for signed audit checkpoints (outside Redis)
    audit_seal_interval_s: float = Field(default=10.0, gt=0)
    audit_verify_interval_s: float = Field(default=300.0, gt=0)
    dev_issuer: bool = True
    allowed_origins: list[str] = []
    trusted_proxies: list[str] = []
    queue_grace_s: int = Field(default=120, ge=0)
    booking_no_show_s: int = Field(default=15 * 60, gt=0)  # a booked slot nobody attended ends as no-show
    booking_webhooks: dict[str, str] = {}  # booking system's subject -> URL that gets its bookings' changes
    signal_drop_grace_s: float = Field(default=20.0, ge=0)  # a dropped media connection keeps its place
    signal_answer_timeout_s: float = Field(default=15.0, gt=0)  # a server offer unanswered this long: reconnect
    retention_days: int = Field(default=30, ge=1)
    issuers: list[IssuerConfig] = []
    ice_servers: list[IceServer] = []
    turn: TurnConfig | None = None
    media: MediaSettings = MediaSettings()
    sms_webhook_url: str | None = None
    limits: Limits = Limits()
    tenants: list[Tenant] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_tenants(self) -> Config:
        ids = [t.id for t in self.tenants]
        if len(ids) != len(set(ids)):
            raise ValueError("tenant ids must be unique")
        return self

    @model_validator(mode="after")
    def _one_redis(self) -> Config:
        given = [name for name, v in (("redis_url", self.redis_url), ("redis_sentinels", self.redis_sentinels),
                                      ("redis_cluster_url", self.redis_cluster_url)) if v]
        if len(given) > 1:
            raise ValueError(f"set only one of {', '.join(given)}")
        if bool(self.redis_sentinels) != bool(self.redis_sentinel_master):
            raise ValueError("redis_sentinels and redis_sentinel_master go together")
        for entry in self.redis_sentinels:
            host, _, port = entry.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"redis_sentinels: {entry!r} is not host:port")
        if self.redis_min_replicas_ack and self.redis_settings().kind not in ("single", "sentinel"):
            raise ValueError("redis_min_replicas_ack needs redis_url or redis_sentinels (not the embedded store, "
                             "not a cluster)")
        return self

    def redis_settings(self) -> RedisSettings:
        base = RedisSettings.from_url(self.redis_url)  # a redis+cluster:// URL is a cluster too
        return RedisSettings(
            url=base.url, sentinel_master=self.redis_sentinel_master,
            cluster_url=self.redis_cluster_url or base.cluster_url,
            sentinels=tuple((h, int(p)) for h, _, p in (e.rpartition(":") for e in self.redis_sentinels)),
            min_replicas_ack=self.redis_min_replicas_ack, wait_timeout_ms=self.redis_wait_timeout_ms,
            retry_s=self.redis_retry_s, max_connections=self.redis_max_connections)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def dev_issuer_enabled(self) -> bool:
        return self.dev_issuer and not self.production

    def tenant(self, tenant_id: str) -> Tenant | None:
        return next((t for t in self.tenants if t.id == tenant_id), None)

    def origins(self) -> list[str]:
        """Browser origins allowed on WebSocket and Socket.IO; the server's own by default (in production
        only public_url and allowed_origins: no localhost default)."""
        own = [] if self.production else [f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}"]
        if self.public_url:
            own.append(self.public_url.rstrip("/"))
        return [*own, *self.allowed_origins]

    def audit_key_bytes(self) -> bytes:
        assert self.audit_key is not None
        return self.audit_key.encode()

    def chat_key_bytes(self) -> bytes:
        assert self.chat_master_key is not None
        return base64.b64decode(self.chat_master_key)


_ENV = {
    "REDIS_URL": "redis_url",
    "REDIS_SENTINEL_MASTER": "redis_sentinel_master",
    "REDIS_CLUSTER_URL": "redis_cluster_url",
    "REDIS_MIN_REPLICAS_ACK": "redis_min_replicas_ack",
    "REDIS_WAIT_TIMEOUT_MS": "redis_wait_timeout_ms",
    "REDIS_RETRY_S": "redis_retry_s",
    "REDIS_MAX_CONNECTIONS": "redis_max_connections",
    "NETTLEGE_ENV": "env",
    "NETTLEGE_SECRET_KEY": "secret_key",
    "NETTLEGE_CHAT_MASTER_KEY": "chat_master_key",
    "NETTLEGE_AUDIT_KEY": "audit_key",
    "NETTLEGE_AUDIT_CHECKPOINTS": "audit_checkpoint_path",
    "NETTLEGE_HOST": "host",
    "NETTLEGE_PORT": "port",
    "NETTLEGE_PUBLIC_URL": "public_url",
    "NETTLEGE_NODE_URL": "node_url",
    "NETTLEGE_NODE_TIMEOUT_S": "node_timeout_s",
}


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        key = ".".join(str(x) for x in e["loc"]) or "(root)"
        parts.append(f"{key}: {e['msg']}")
    return "; ".join(parts)


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None,
                **overrides: object) -> Config:
    """Read the TOML file (or the built-in demo), apply environment and overrides, check everything."""
    environ = dict(os.environ if environ is None else environ)
    try:
        if path is None:
            raw = tomllib.loads(resources.files("signaling").joinpath("demo.toml").read_text())
        else:
            raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    for var, key in _ENV.items():
        if environ.get(var):
            raw[key] = environ[var]
    if environ.get("REDIS_SENTINELS"):
        raw["redis_sentinels"] = [h.strip() for h in environ["REDIS_SENTINELS"].split(",") if h.strip()]
    if environ.get("NETTLEGE_ALLOWED_ORIGINS"):
        raw["allowed_origins"] = [o.strip() for o in environ["NETTLEGE_ALLOWED_ORIGINS"].split(",") if o]
    if environ.get("NETTLEGE_MEDIA_LISTEN_IPS"):
        raw.setdefault("media", {})["listen_ips"] = [
            a.strip() for a in environ["NETTLEGE_MEDIA_LISTEN_IPS"].split(",") if a.strip()]
    if environ.get("NETTLEGE_MEDIA_ANNOUNCED_IP"):
        raw.setdefault("media", {})["announced_ip"] = environ["NETTLEGE_MEDIA_ANNOUNCED_IP"]
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {_describe(exc)}") from None
    return _production_checks(_fill_secrets(config))


MIN_SECRET_CHARS = 43  # 32 bytes in base64 (64 in hex)


def weak_secret(secret: str) -> bool:
    """True unless the secret looks like at least 32 random bytes in base64 or hex: long enough, at least 10
    different characters and ≥ 3.2 bits of empirical entropy per character (so no short key and no repeated
    pattern). `secrets.token_urlsafe(32)` and `secrets.token_hex(32)` pass."""
    if len(secret) < MIN_SECRET_CHARS or len(set(secret)) < 10:
        return True
    per_char = -sum(n / len(secret) * math.log2(n / len(secret)) for n in (secret.count(c) for c in set(secret)))
    return per_char < 3.2


def _production_checks(config: Config) -> Config:
    """Production refuses to start on what would be unsafe: a guessable signing key, the embedded
    (one-process, non-durable) store, no public URL for links and origins."""
    if not config.production:
        return config
    if weak_secret(config.secret_key or ""):
        raise ConfigError("secret_key is too weak for production: use at least 32 random bytes, e.g. "
                          "`python -c 'import secrets; print(secrets.token_urlsafe(32))'` (env NETTLEGE_SECRET_KEY)")
    if not (config.redis_url or config.redis_sentinels or config.redis_cluster_url):
        raise ConfigError("production needs Redis: set REDIS_URL, REDIS_SENTINELS (+ REDIS_SENTINEL_MASTER) "
                          "or REDIS_CLUSTER_URL")
    if not config.public_url or not config.public_url.startswith("https://"):
        raise ConfigError("production needs public_url (https://..., env NETTLEGE_PUBLIC_URL): links and "
                          "allowed origins are built from it")
    return config


def _fill_secrets(config: Config) -> Config:
    """Outside production a missing secret gets a generated dev value; in production it stops the start."""
    updates: dict[str, str] = {}
    make: Callable[[], str]
    for key, make in (("secret_key", lambda: secrets.token_urlsafe(32)),
                      ("chat_master_key", lambda: base64.b64encode(secrets.token_bytes(32)).decode()),
                      ("audit_key", lambda: secrets.token_urlsafe(32))):
        if getattr(config, key):
            continue
        if config.production:
            raise ConfigError(f"{key} must be set in production (env NETTLEGE_{key.upper()})")
        log.warning("%s not set: generated a development value (not for production)", key)
        updates[key] = make()
    if config.chat_master_key or "chat_master_key" in updates:
        try:
            master = base64.b64decode(updates.get("chat_master_key") or config.chat_master_key or "", validate=True)
        except ValueError:
            master = b""
        if len(master) != 32:
            raise ConfigError("chat_master_key must be base64 of exactly 32 bytes")
    if len(updates.get("audit_key") or config.audit_key or "") < 32:
        raise ConfigError("audit_key must be at least 32 characters (env NETTLEGE_AUDIT_KEY)")
    return config.model_copy(update=updates)

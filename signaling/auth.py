"""Who is calling: bearer JWTs verified with PyJWT.

Three kinds of token are accepted:
- OIDC access tokens from configured issuers (HelseID, ID-porten/Helsenorge, booking systems), verified
  against the issuer's JWKS (fetched with aiohttp, cached, refreshed on an unknown key id);
- dev tokens from the built-in dev issuer (HS256 with the local secret; never in production);
- session tokens nettlege itself issues to a participant (e.g. after an invite is spent), bound to one
  consultation. They live SESSION_TOKEN_TTL_S and are refreshed over the signaling socket while it is
  connected; `identity.verify` revokes them when the consultation ends or the participant is denied.
  They carry the issuer of the identity they were made for (`idp`), so a guest's never turns into a
  logged-in identity.
`alg=none` and any algorithm not configured for the issuer are refused by PyJWT's `algorithms` list.
Subjects of external issuers are namespaced by issuer (`<issuer>|<sub>`): two IdPs' equal `sub` are two
people. Dev subjects cannot contain `|`, so they cannot pose as an external one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any

import aiohttp
import jwt
from jwt import PyJWKSet

from rooms.models import Principal, Role

from .config import Config, IssuerConfig

log = logging.getLogger(__name__)

DEV_ISSUER = "nettlege-dev"
SESSION_ISSUER = "nettlege-session"
LOCAL_AUDIENCE = "nettlege"
DEV_TOKEN_TTL_S = 12 * 3600
SESSION_TOKEN_TTL_S = 15 * 60
SESSION_REFRESH_S = 5 * 60  # the signaling socket hands out a fresh session token this often
JWKS_TTL_S = 600
JWKS_MIN_REFRESH_S = 30
# A verified token's principal is kept (keyed by the raw token) until the token's `exp`, at most VERIFIED_TTL_S
# (an issuer's withdrawn key stops being honoured within that), for the VERIFIED_MAX most recently used tokens:
# a client sends the same bearer token with every request, and PyJWT's two decodes and signature check were ~10 %
# of a take-next's server CPU (docs/capacity.md, "Queue operations: profile").
VERIFIED_TTL_S = 60.0
VERIFIED_MAX = 4096


class AuthError(Exception):
    def __init__(self, message: str, code: str = "unauthorized") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class _Jwks:
    """One issuer's key set, fetched lazily and refreshed at most every JWKS_MIN_REFRESH_S."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.keys: PyJWKSet | None = None
        self.fetched_at = 0.0
        self.lock = asyncio.Lock()

    async def key(self, kid: str | None, session: aiohttp.ClientSession) -> Any:
        for attempt in range(2):
            if self.keys is None or time.monotonic() - self.fetched_at > JWKS_TTL_S or attempt:
                await self._refresh(session, force=bool(attempt))
            if self.keys is not None:
                for k in self.keys.keys:
                    if kid is None or k.key_id == kid:
                        return k
        raise AuthError("Ukjent signeringsnøkkel.", "unknown_key")

    async def _refresh(self, session: aiohttp.ClientSession, force: bool) -> None:
        async with self.lock:
            if force and time.monotonic() - self.fetched_at < JWKS_MIN_REFRESH_S:
                return
            try:
                async with session.get(self.url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                    resp.raise_for_status()
                    self.keys = PyJWKSet.from_dict(await resp.json(content_type=None))
            except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWKSetError) as exc:
                log.warning("could not fetch JWKS from %s: %s", self.url, type(exc).__name__)
                raise AuthError("Kunne ikke kontrollere innloggingen nå.", "issuer_unavailable") from None
            self.fetched_at = time.monotonic()


class Authenticator:
    def __init__(self, config: Config, session: aiohttp.ClientSession) -> None:
        assert config.secret_key
        self._secret = config.secret_key
        self._dev = config.dev_issuer_enabled
        self._tenants = {t.id for t in config.tenants}
        self._issuers = {i.issuer: i for i in config.issuers}
        self._jwks = {i.issuer: _Jwks(i.jwks_url) for i in config.issuers}
        self._session = session
        # raw token -> (principal, its exp, kept until): only tokens that verified (see VERIFIED_TTL_S)
        self._verified: OrderedDict[str, tuple[Principal, float, float]] = OrderedDict()
        self._clock = time.time  # of the remembered tokens (tests move it); PyJWT reads its own

    def issue_dev_token(self, subject: str, role: Role, tenant: str, name: str) -> str:
        if not self._dev:
            raise AuthError("Utviklerinnlogging er slått av.", "dev_issuer_disabled")
        return self._sign({"iss": DEV_ISSUER, "sub": subject, "role": role.value, "tenant": tenant,
                           "name": name}, DEV_TOKEN_TTL_S)

    def issue_session_token(self, principal: Principal, consultation_id: str, participant_id: str) -> str:
        return self._sign({"iss": SESSION_ISSUER, "sub": principal.subject, "role": principal.role.value,
                           "tenant": principal.tenant, "name": principal.name, "cid": consultation_id,
                           "pid": participant_id, "idp": principal.issuer}, SESSION_TOKEN_TTL_S)

    def _sign(self, claims: dict[str, Any], ttl: int) -> str:
        now = int(time.time())
        return jwt.encode({**claims, "aud": LOCAL_AUDIENCE, "iat": now, "exp": now + ttl}, self._secret,
                          algorithm="HS256")

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token (AuthError otherwise). A token verified in the last VERIFIED_TTL_S is
        answered from memory; its expiry is checked on every use all the same."""
        if not token or len(token) > 4096:
            raise AuthError("Mangler gyldig innlogging.")
        known = self._verified.get(token)
        if known is not None:
            principal, exp, until = known
            now = self._clock()
            if exp <= now:  # as PyJWT decides it (no leeway)
                del self._verified[token]
                raise AuthError("Innloggingen er utløpt. Logg inn på nytt.", "token_expired")
            if now < until:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, exp = await self._verify(token)
        self._verified[token] = (principal, exp, self._clock() + VERIFIED_TTL_S)
        if len(self._verified) > VERIFIED_MAX:
            self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("Innloggingen er ugyldig.", "invalid_token") from None
        iss = unverified.get("iss")
        try:
            if iss in (DEV_ISSUER, SESSION_ISSUER):
                if iss == DEV_ISSUER and not self._dev:
                    raise AuthError("Utviklerinnlogging er slått av.", "dev_issuer_disabled")
                claims = jwt.decode(token, self._secret, algorithms=["HS256"], audience=LOCAL_AUDIENCE,
                                    issuer=iss, options={"require": ["exp", "sub", "iss", "aud"]})
                if iss == SESSION_ISSUER:
                    if not isinstance(claims.get("cid"), str) or not isinstance(claims.get("pid"), str):
                        raise AuthError("Innloggingen er ugyldig.", "invalid_token")
                    claims = {**claims, "iss": str(claims.get("idp") or SESSION_ISSUER)}
                return self._principal(claims, Role(claims["role"]), claims["tenant"], "name"), float(claims["exp"])
            issuer = self._issuers.get(iss) if isinstance(iss, str) else None
            if issuer is None:
                raise AuthError("Innloggingen kommer fra en ukjent utsteder.", "unknown_issuer")
            key = await self._jwks[issuer.issuer].key(header.get("kid"), self._session)
            claims = jwt.decode(token, key, algorithms=issuer.algorithms, audience=issuer.audience,
                                issuer=issuer.issuer, options={"require": ["exp", "sub", "iss", "aud"]})
            return self._external(issuer, claims), float(claims["exp"])
        except jwt.ExpiredSignatureError:
            raise AuthError("Innloggingen er utløpt. Logg inn på nytt.", "token_expired") from None
        except (jwt.PyJWTError, KeyError, ValueError, TypeError):
            raise AuthError("Innloggingen er ugyldig.", "invalid_token") from None

    def _external(self, issuer: IssuerConfig, claims: dict[str, Any]) -> Principal:
        role = issuer.role or Role(claims[issuer.role_claim])
        tenant = issuer.tenant or claims[issuer.tenant_claim]
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub:
            raise AuthError("Innloggingen er ugyldig.", "invalid_token")
        return self._principal({**claims, "sub": f"{issuer.issuer}|{sub}", "iss": issuer.issuer,
                                "cid": None, "pid": None}, role, tenant,
                               issuer.name_claim)

    def _principal(self, claims: dict[str, Any], role: Role, tenant: Any, name_claim: str) -> Principal:
        # A claim of the wrong type (a list, a number) is an invalid token, not a server error.
        if not isinstance(tenant, str) or tenant not in self._tenants:
            raise AuthError("Ukjent kommune i innloggingen.", "unknown_tenant")
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get(name_claim) or "", str):
            raise AuthError("Innloggingen er ugyldig.", "invalid_token")
        return Principal(subject=str(claims["sub"]), role=role, tenant=tenant,
                         name=str(claims.get(name_claim) or ""), issuer=claims["iss"],
                         consultation_id=claims.get("cid"), participant_id=claims.get("pid"))

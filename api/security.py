"""Who is calling: API tokens (stored hashed, shown once) or OIDC JWTs, and their role per tenant.

Roles, each including the ones before it: ``viewer`` (reads), ``responder`` (declares
incidents, sets their status, writes notes), ``approver`` (confirms an incident's cause),
``admin`` (manages tokens, reads the service's own metrics). Every route declares its role
with ``Depends(require(ROLE))``; the tenant comes from the credential, never from the URL, and
Postgres enforces it again by row-level security.

A JWT carries its roles per tenant in the ``opscopilot_roles`` claim (``{"acme": "responder"}``);
with more than one tenant the caller picks one with the ``X-Opscopilot-Tenant`` header.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from api.problems import ApiError
from sinks.postgres_api import ROLES, ApiDatabase, hash_token

__all__ = ["Authenticator", "Principal", "RateLimiter", "ROLE_RANK", "new_token", "require"]

ROLE_RANK = {r: i for i, r in enumerate(ROLES)}
TOKEN_PREFIX = "oc_"
ROLES_CLAIM = "opscopilot_roles"
TENANT_HEADER = "x-opscopilot-tenant"
_TOKEN_CACHE_S = 30.0
# declares the scheme in OpenAPI; the check itself is Authenticator's (problem details, not HTTPBearer's)
_BEARER = HTTPBearer(auto_error=False, description="an API token (oc_...) or an OIDC JWT")
_JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]


def new_token() -> str:
    """A new API token: 256 random bits. Show it once; store :func:`hash_token` of it."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    tenant: str
    role: str
    subject: str  # token name or JWT subject, for the timeline and the logs (never the secret)
    key: str  # what rate limits and idempotency keys are kept per: token id or issuer + subject
    via: str  # "token" | "oidc"

    def can(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


class _Unauthorized(ApiError):
    def __init__(self, detail: str) -> None:
        super().__init__(401, detail, headers={"WWW-Authenticate": 'Bearer realm="opscopilot"'})


class _Jwks:
    """Verifies JWTs against a JWKS given as a URL (fetched and cached) or a file."""

    def __init__(self, source: str, issuer: str, audience: str) -> None:
        self.issuer = issuer or None
        self.audience = audience or None
        if source.startswith(("http://", "https://")):
            self._client: Optional[jwt.PyJWKClient] = jwt.PyJWKClient(source, lifespan=300, timeout=5)
            self._set = None
        else:
            self._client = None
            self._set = jwt.PyJWKSet.from_json(Path(source).read_text())

    def _key(self, token: str) -> Any:
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        kid = jwt.get_unverified_header(token).get("kid")
        for k in self._set.keys:
            if kid is None or k.key_id == kid:
                return k.key
        raise jwt.InvalidTokenError("no key in the JWKS matches the token's kid")

    def claims(self, token: str) -> dict:
        return jwt.decode(token, self._key(token), algorithms=_JWT_ALGORITHMS, audience=self.audience,
                          issuer=self.issuer, options={"require": ["exp", "sub"]}, leeway=30)


class Authenticator:
    """Turns an ``Authorization: Bearer`` header into a :class:`Principal`."""

    def __init__(self, db: ApiDatabase, oidc_jwks: str = "", oidc_issuer: str = "", oidc_audience: str = "") -> None:
        self.db = db
        self._jwks = _Jwks(oidc_jwks, oidc_issuer, oidc_audience) if oidc_jwks else None
        self._cache: dict[bytes, tuple[float, Optional[dict]]] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop cached token lookups (after a token was revoked here)."""
        with self._lock:
            self._cache.clear()

    def _token_row(self, token: str) -> Optional[dict]:
        now = time.monotonic()
        key = hash_token(token)  # not even the cache keeps a secret
        with self._lock:
            hit = self._cache.get(key)
            if hit and hit[0] > now:
                return hit[1]
        row = self.db.lookup_token(token)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + _TOKEN_CACHE_S, row)
        return row

    def authenticate(self, authorization: Optional[str], tenant: Optional[str]) -> Principal:
        if not authorization:
            raise _Unauthorized("missing Authorization: Bearer credential")
        scheme, _, cred = authorization.partition(" ")
        cred = cred.strip()
        if scheme.lower() != "bearer" or not cred:
            raise _Unauthorized("expected Authorization: Bearer <token>")
        if cred.startswith(TOKEN_PREFIX):
            row = self._token_row(cred)
            if row is None:
                raise _Unauthorized("unknown or revoked API token")
            if tenant and tenant != row["tenant_id"]:
                raise ApiError(403, "this token belongs to another tenant")
            return Principal(row["tenant_id"], row["role"], row["name"], "token:" + row["token_id"], "token")
        if self._jwks is None:
            raise _Unauthorized("not an API token, and OIDC is not configured")
        try:
            claims = self._jwks.claims(cred)
        except (jwt.PyJWTError, ValueError) as exc:
            raise _Unauthorized(f"invalid JWT: {exc}") from None
        roles = claims.get(ROLES_CLAIM)
        if not isinstance(roles, dict) or not roles:
            raise ApiError(403, f"the JWT grants no tenant roles (claim {ROLES_CLAIM})")
        if tenant is None:
            if len(roles) != 1:
                raise ApiError(403, f"the JWT grants several tenants: pick one with {TENANT_HEADER}")
            tenant = next(iter(roles))
        role = roles.get(tenant)
        if role not in ROLE_RANK:
            raise ApiError(403, "the JWT grants no known role for this tenant")
        sub = str(claims["sub"])
        return Principal(tenant, role, sub, f"oidc:{claims.get('iss', '')}:{sub}", "oidc")


class RateLimiter:
    """A token bucket per caller: ``rate`` requests/s sustained, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 if the request may go now, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 100_000:  # forget idle callers (a full bucket is the default)
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < self.burst / self.rate}
            return (1.0 - tokens) / self.rate


def require(role: str) -> Callable[[Request], Principal]:
    """The dependency a route declares its role with: authenticates, checks the role, applies
    the caller's rate limit, and returns the :class:`Principal`."""
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")

    def dependency(request: Request, _bearer=Depends(_BEARER)) -> Principal:
        state = request.app.state.api
        principal = state.auth.authenticate(request.headers.get("authorization"),
                                            request.headers.get(TENANT_HEADER))
        wait = state.limiter.take(principal.key)
        if wait > 0:
            state.metrics.rate_limited.inc()
            raise ApiError(429, f"rate limit of {state.limiter.rate:g} requests/s exceeded",
                           headers={"Retry-After": str(max(1, int(wait + 0.999)))})
        if not principal.can(role):
            raise ApiError(403, f"this route needs the {role} role; the caller is {principal.role}")
        request.state.principal = principal
        return principal

    dependency.required_role = role  # type: ignore[attr-defined]
    dependency.__name__ = f"require_{role}"
    return dependency

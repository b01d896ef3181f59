"""The keys that sign Teams' tokens, fetched off the event loop, and a guard in front of the SDK's
token validation.

The Teams SDK checks an inbound token with PyJWT's ``PyJWKClient``, which fetches the signing keys
with blocking ``urllib`` inside the request handler: while Microsoft's key endpoint is slow, the
whole process (every chat, ``/a2a``, ``/healthz``) waits, and a forged token with an unknown key id
makes it fetch again. Here the keys are fetched with the bot's async HTTP client, kept, and
refreshed in the background; the SDK's validator is given a client that answers from what is kept.
A token whose key id is unknown waits for one refresh (at most one per ``refetch_after`` seconds,
shared by all requests), then is refused. Tokens issued by Entra ID (Agent 365) are taken only
from the bot's own tenant: anyone else's ``tid`` would otherwise make the SDK fetch that tenant's
keys, one new fetch (and one kept validator) per made-up tenant.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
import structlog

log = structlog.get_logger(__name__)


class SigningKeys:
    """One JWKS URI's keys, by key id."""

    def __init__(
        self, uri: str, http: httpx.AsyncClient, *, refetch_after: float = 60.0, timeout: float = 10.0
    ) -> None:
        self.uri = uri
        self._http = http
        self._refetch_after = refetch_after
        self._timeout = timeout
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._fetching: asyncio.Task[None] | None = None

    def get(self, kid: str) -> jwt.PyJWK | None:
        return self._keys.get(kid)

    async def ensure(self, kid: str) -> jwt.PyJWK | None:
        """The key, fetching the set again first if it is unknown and a fetch is due."""
        if kid in self._keys:
            return self._keys[kid]
        due = self._fetched_at is None or time.monotonic() - self._fetched_at >= self._refetch_after
        if due or self._fetching is not None:
            await self.refresh()
        return self._keys.get(kid)

    async def refresh(self) -> None:
        """Fetch the key set (one fetch at a time, shared by every waiting request)."""
        if self._fetching is None:
            self._fetching = asyncio.create_task(self._fetch())
        fetching = self._fetching
        try:
            await asyncio.shield(fetching)
        finally:
            if fetching.done() and self._fetching is fetching:
                self._fetching = None

    async def refresh_forever(self, every: float = 3600.0) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(every)

    async def _fetch(self) -> None:
        try:
            response = await self._http.get(self.uri, timeout=self._timeout)
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as error:
            log.warning("teams_signing_keys_unavailable", uri=self.uri, reason=type(error).__name__)
            return
        finally:
            self._fetched_at = time.monotonic()
        self._keys = {key.key_id: key for key in keys.keys if key.key_id}
        log.info("teams_signing_keys_fetched", uri=self.uri, keys=len(self._keys))


class KeptKeysClient:
    """What the SDK's ``TokenValidator`` calls on its ``PyJWKClient``, answered from kept keys only."""

    def __init__(self, keys: SigningKeys) -> None:
        self._keys = keys

    def get_signing_key_from_jwt(self, token: str) -> jwt.PyJWK:
        kid = _kid(token)
        key = self._keys.get(kid) if kid else None
        if key is None:
            raise jwt.PyJWKClientError("the token's signing key is not one of Teams' keys")
        return key


class GuardedTokenValidator:
    """In front of the SDK's ``InboundActivityTokenValidator``: the key is made known (or the token
    refused) before the SDK's synchronous validation runs."""

    def __init__(self, inner: Any, http: httpx.AsyncClient, *, tenant_id: str | None) -> None:
        self._inner = inner
        self._tenant_id = tenant_id
        service = inner._service_validator
        self.service_keys = SigningKeys(service.options.jwks_uri, http)
        service._jwks_client = KeptKeysClient(self.service_keys)
        self._entra_keys: SigningKeys | None = None
        if tenant_id:
            entra = inner._get_entra_validator(tenant_id)
            self._entra_keys = SigningKeys(entra.options.jwks_uri, http)
            entra._jwks_client = KeptKeysClient(self._entra_keys)

    def key_sets(self) -> list[SigningKeys]:
        return [self.service_keys, *([self._entra_keys] if self._entra_keys else [])]

    async def validate_token(self, raw_token: str, service_url: str | None = None) -> dict[str, Any]:
        kid = _kid(raw_token)
        try:
            claims = jwt.decode(raw_token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise jwt.InvalidTokenError("malformed token") from None
        keys = self.service_keys
        if self._inner._is_entra_issuer(claims.get("iss", "")):
            if self._entra_keys is None or claims.get("tid") != self._tenant_id:
                raise jwt.InvalidTokenError("an Entra ID token from another tenant")
            keys = self._entra_keys
        if not kid or await keys.ensure(kid) is None:
            raise jwt.InvalidTokenError("the token's signing key is not one of Teams' keys")
        return dict(await self._inner.validate_token(raw_token, service_url))


def _kid(token: str) -> str | None:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return None
    return kid if isinstance(kid, str) and kid else None


def guard_token_validation(
    app: Any, http: httpx.AsyncClient, *, tenant_id: str | None
) -> GuardedTokenValidator | None:
    """Put the guard in front of the SDK's validator (none when requests are not authenticated)."""
    server = app.server
    inner = getattr(server, "_token_validator", None)
    if inner is None:
        return None
    guard = GuardedTokenValidator(inner, http, tenant_id=tenant_id)
    server._token_validator = guard
    return guard

"""Bearer tokens between peer bots on /a2a.

A caller signs a short-lived JWT per request: ``iss`` is the calling bot, ``aud`` the receiving bot,
``jti`` unique, ``exp`` within ``TOKEN_LIFETIME_SECONDS``. The receiver checks all of that and
remembers the ``jti`` until expiry (``SeenTokens``: in memory for one process, in the shared database
for replicas), so a captured token cannot be replayed, at this replica or another. The key is the shared
``A2A_AUTH_SECRET`` (HS256); ``TokenSigner``/``TokenVerifier`` are the seams where an asymmetric key
or Entra ID tokens would plug in instead.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import jwt
import structlog
from a2a.client.client import ClientCallContext
from a2a.client.interceptors import AfterArgs, BeforeArgs, ClientCallInterceptor
from starlette.authentication import SimpleUser

from a2a_bridge.asgi import ASGIApp, Receive, Scope, Send, header, read_prefix, send_json
from a2a_bridge.limits import jsonrpc_error, request_id_of

log = structlog.get_logger(__name__)

TOKEN_LIFETIME_SECONDS = 60
CLOCK_SKEW_SECONDS = 10
_ALGORITHM = "HS256"
# Outside A2A's own codes (-32001..-32009 name task and protocol errors), in JSON-RPC's range for
# implementation-defined server errors.
UNAUTHENTICATED_CODE = -32099
ID_PREFIX_BYTES = 4096


class TokenSigner(Protocol):
    def token_for(self, audience: str) -> str: ...


@dataclass(frozen=True)
class PeerToken:
    caller: str
    jti: str
    expires_at: float
    """Unix time after which the token is refused anyway (its ``exp`` plus the allowed skew)."""


class TokenVerifier(Protocol):
    def verify(self, token: str) -> PeerToken:
        """The token's caller and id, or ``InvalidPeerToken`` with a loggable reason."""
        ...


class SeenTokens(Protocol):
    async def first_use(self, jti: str, expires_at: float) -> bool:
        """True the first time a token id is presented; False for a replay (until it expires)."""
        ...


class RecentTokens:
    """``SeenTokens`` for one process."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._seen: dict[str, float] = {}

    async def first_use(self, jti: str, expires_at: float) -> bool:
        if len(self._seen) >= 1024:
            now = self._clock()
            for known, expires in list(self._seen.items()):
                if expires < now:
                    del self._seen[known]
        if jti in self._seen:
            return False
        self._seen[jti] = expires_at
        return True


class InvalidPeerToken(Exception):
    """Why a token was refused; safe to log (it never contains the token)."""


@dataclass(frozen=True)
class SharedSecretSigner:
    secret: str
    issuer: str

    def token_for(self, audience: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "iat": now,
            "nbf": now - 1,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.secret, algorithm=_ALGORITHM)


class SharedSecretVerifier:
    def __init__(self, secret: str, audience: str) -> None:
        self._secret = secret
        self._audience = audience

    def verify(self, token: str) -> PeerToken:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=self._audience,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidPeerToken("token expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidPeerToken("token is for another audience") from None
        except jwt.InvalidSignatureError:
            raise InvalidPeerToken("bad signature") from None
        except jwt.MissingRequiredClaimError as error:
            raise InvalidPeerToken(f"missing claim {error.claim}") from None
        except jwt.PyJWTError as error:
            raise InvalidPeerToken(f"malformed token ({type(error).__name__})") from None
        # PyJWT reads a numeric string as a time; this verifier does not: every claim has its type.
        numbers = [claims[name] for name in ("exp", "iat")]
        if any(isinstance(value, bool) or not isinstance(value, int | float) for value in numbers):
            raise InvalidPeerToken("exp and iat must be numbers")
        if not all(isinstance(claims[name], str) and claims[name] for name in ("iss", "jti")):
            raise InvalidPeerToken("iss and jti must be non-empty strings")
        if claims["exp"] - claims["iat"] > TOKEN_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS:
            raise InvalidPeerToken("token lifetime too long")
        return PeerToken(
            caller=str(claims["iss"]),
            jti=str(claims["jti"]),
            expires_at=float(claims["exp"]) + CLOCK_SKEW_SECONDS,
        )


class PeerTokenInterceptor(ClientCallInterceptor):
    """Adds a fresh bearer token, addressed to the receiving bot by its card name, to every call."""

    def __init__(self, signer: TokenSigner) -> None:
        self._signer = signer

    async def before(self, args: BeforeArgs) -> None:
        if args.context is None:
            args.context = ClientCallContext()
        if args.context.service_parameters is None:
            args.context.service_parameters = {}
        token = self._signer.token_for(args.agent_card.name)
        args.context.service_parameters["Authorization"] = f"Bearer {token}"

    async def after(self, args: AfterArgs) -> None:
        return None


class PeerAuthMiddleware:
    """Refuses calls to the A2A endpoint without a valid peer token; the card stays public.

    On success the caller's name is put where a2a-sdk's context builder finds it
    (``scope["user"]``), so the executor can match it against the handoff's ``from``.
    """

    def __init__(
        self, app: ASGIApp, *, verifier: TokenVerifier | None, seen: SeenTokens | None = None
    ) -> None:
        self._app = app
        self._verifier = verifier
        self._seen = seen if seen is not None else RecentTokens()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # GET reads only the public card (served under /a2a too); every call is a POST.
        if scope["type"] != "http" or self._verifier is None or scope.get("method") in ("GET", "HEAD"):
            await self._app(scope, receive, send)
            return
        authorization = header(scope, b"authorization")
        try:
            if not authorization.startswith("Bearer "):
                raise InvalidPeerToken("missing bearer token")
            token = self._verifier.verify(authorization.removeprefix("Bearer ").strip())
        except InvalidPeerToken as refusal:
            await self._unauthorized(scope, receive, send, refusal)
            return
        try:
            first_use = await self._seen.first_use(token.jti, token.expires_at)
        except Exception as error:  # the shared memory of tokens (a database) cannot be read
            log.error("a2a_auth_unavailable", reason=type(error).__name__)
            await _answer(receive, send, 503, -32603, "Peer authentication is unavailable; retry")
            return
        if not first_use:
            await self._unauthorized(scope, receive, send, InvalidPeerToken("token replayed"))
            return
        scope["user"] = SimpleUser(token.caller)
        await self._app(scope, receive, send)

    async def _unauthorized(
        self, scope: Scope, receive: Receive, send: Send, refusal: InvalidPeerToken
    ) -> None:
        client = scope.get("client") or ("?", 0)
        log.warning("a2a_auth_rejected", reason=str(refusal), client=client[0])
        await _answer(
            receive,
            send,
            401,
            UNAUTHENTICATED_CODE,
            f"Unauthorized: {refusal}",
            {"www-authenticate": 'Bearer realm="a2a"'},
        )


async def _answer(
    receive: Receive, send: Send, status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> None:
    """Refused on the headers alone: only the body's first bytes are read, briefly, so the answer
    can carry the request's id."""
    request_id = request_id_of(await read_prefix(receive, ID_PREFIX_BYTES, deadline=1.0))
    await send_json(send, status, jsonrpc_error(code, message, request_id), headers)

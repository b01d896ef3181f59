"""Teams' token-signing keys are fetched off the event loop: a slow key endpoint delays only the
requests that need a key, and a flood of forged tokens costs at most one fetch a minute."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from microsoft_teams.apps.auth import InboundActivityTokenValidator

from bot.teams_keys import GuardedTokenValidator
from tests.conftest import ALICE_DESCRIPTION
from tests.harness import LoopbackServer, message_activity
from tests.processes import BotProcess

APP_ID = "alice-app-id"
TENANT_ID = "tenant-contoso"


class KeyEndpoint:
    """A stand-in for Microsoft's JWKS endpoint, counting its fetches."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "teams-key-1"
        self.fetches = 0
        self.app = FastAPI()
        self.app.add_api_route("/keys", self._keys, methods=["GET"])

    async def _keys(self) -> dict[str, Any]:
        self.fetches += 1
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def token(self, *, kid: str | None = None, key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": "https://api.botframework.com",
            "aud": APP_ID,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        return jwt.encode(
            {**body, **claims}, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid}
        )


@pytest.fixture
async def keys() -> Any:
    endpoint = KeyEndpoint()
    server = LoopbackServer(endpoint.app).start()
    try:
        yield endpoint, server
    finally:
        await server.stop()


async def guarded(
    server: LoopbackServer, http: httpx.AsyncClient, tenant: str | None = None
) -> GuardedTokenValidator:
    inner = InboundActivityTokenValidator(APP_ID)
    inner._service_validator.options.jwks_uri = f"{server.url}/keys"
    return GuardedTokenValidator(inner, http, tenant_id=tenant)


async def test_a_token_signed_with_teams_key_passes_and_a_forged_one_costs_one_fetch(
    keys: tuple[KeyEndpoint, LoopbackServer],
) -> None:
    endpoint, server = keys
    async with httpx.AsyncClient() as http:
        validator = await guarded(server, http)
        claims = await validator.validate_token(endpoint.token())
        assert claims["aud"] == APP_ID
        assert endpoint.fetches == 1
        forged_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = [endpoint.token(kid=f"forged-{n}", key=forged_key) for n in range(50)]
        results = await asyncio.gather(*(validator.validate_token(t) for t in forged), return_exceptions=True)
        assert all(isinstance(result, jwt.InvalidTokenError) for result in results)
        assert endpoint.fetches == 1, "within a minute of the last fetch, unknown key ids fetch nothing"
        validator.service_keys._refetch_after = 0  # as if that minute had passed
        results = await asyncio.gather(*(validator.validate_token(t) for t in forged), return_exceptions=True)
        assert all(isinstance(result, jwt.InvalidTokenError) for result in results)
        assert endpoint.fetches == 2, "fifty unknown key ids at once: one fetch, shared"
        with pytest.raises(jwt.InvalidTokenError):  # the right key id, the wrong key
            await validator.validate_token(endpoint.token(key=forged_key))
        assert (await validator.validate_token(endpoint.token()))["aud"] == APP_ID


async def test_an_entra_token_from_another_tenant_is_refused_without_a_fetch(
    keys: tuple[KeyEndpoint, LoopbackServer],
) -> None:
    endpoint, server = keys
    async with httpx.AsyncClient() as http:
        validator = await guarded(server, http, tenant="tenant-contoso")
        for tenant in (f"made-up-{uuid.uuid4().hex}" for _ in range(20)):
            token = endpoint.token(iss=f"https://login.microsoftonline.com/{tenant}/v2.0", tid=tenant)
            with pytest.raises(jwt.InvalidTokenError, match="another tenant"):
                await validator.validate_token(token)
    assert endpoint.fetches == 0


class StallingProxy:
    """An HTTPS proxy that takes the connection and never answers: a key endpoint that hangs."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        self.connected.set()
        await reader.read()  # until the client gives up

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        self._server.close()


async def test_healthz_answers_at_once_while_a_forged_token_waits_on_a_slow_key_endpoint(
    http: httpx.AsyncClient, tmp_path: Path, service_url: str
) -> None:
    proxy = StallingProxy()
    port = await proxy.start()
    alice = BotProcess(
        "Alice",
        {
            "BOT_DESCRIPTION": ALICE_DESCRIPTION,
            "STATE_URL": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
            "CLIENT_ID": APP_ID,
            "TENANT_ID": TENANT_ID,
            "CLIENT_SECRET": "alice-secret-value",
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS": "false",
            "HTTPS_PROXY": f"http://127.0.0.1:{port}",
            "NO_PROXY": "127.0.0.1,localhost",
        },
        tmp_path,
    )
    await alice.start()
    try:
        await asyncio.wait_for(proxy.connected.wait(), 10)  # the key fetch is hanging now
        forged = jwt.encode(
            {"iss": "https://api.botframework.com", "aud": APP_ID, "exp": int(time.time()) + 300},
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
            headers={"kid": "forged"},
        )
        waiting = asyncio.create_task(
            http.post(
                f"{alice.url}/api/messages",
                json=message_activity("hello", conversation_id="a:x", service_url=service_url),
                headers={"Authorization": f"Bearer {forged}"},
                timeout=60,
            )
        )
        latencies = []
        for _ in range(5):
            started = time.perf_counter()
            assert (await http.get(f"{alice.url}/healthz")).status_code == 200
            latencies.append(time.perf_counter() - started)
        assert not waiting.done(), "the forged token is still waiting on the key endpoint"
        assert max(latencies) < 1.0, latencies
        assert (await waiting).status_code == 401
    finally:
        await proxy.stop()
        assert await alice.stop() == 0

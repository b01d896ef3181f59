"""Who may call /a2a: short-lived peer tokens, checked on every request; the card stays public."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from a2a_bridge.auth import SharedSecretSigner
from tests.conftest import ALICE_DESCRIPTION, BOB_DESCRIPTION
from tests.harness import RunningBot, logged, started_bot, user_says
from tests.standins.connector import StandInConnector
from tests.test_a2a_endpoint import A2A_HEADERS, handoff, outcome_of, send_message

SECRET = "s3cret-shared-between-alice-and-bob-0123456789"


@pytest.fixture
async def bob(state_dir: Path) -> Any:
    async with started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir, a2a_auth_secret=SECRET) as running:
        yield running


def token(**overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": "Alice", "aud": "Bob", "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
    claims.update(overrides)
    key = str(claims.pop("key", SECRET))
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="HS256")


async def test_alice_hands_off_to_bob_with_a_signed_token(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    service_url: str,
    state_dir: Path,
    bob: RunningBot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with started_bot(
        "Alice", ALICE_DESCRIPTION, state_dir=state_dir, peer_urls=[bob.url], a2a_auth_secret=SECRET
    ) as alice:
        await user_says(
            http,
            connector,
            alice.url,
            "My VPN is broken on my laptop",
            conversation_id="a:dana-alice",
            service_url=service_url,
        )
    assert len(connector.created()) == 1
    assert "Bob will message you directly" in connector.sent("a:dana-alice")[0].text
    assert SECRET not in caplog.text
    assert "eyJ" not in caplog.text, "no bearer token may reach the logs"


async def test_card_is_public_and_declares_the_bearer_scheme(
    http: httpx.AsyncClient, bob: RunningBot
) -> None:
    card = (await http.get(f"{bob.url}/.well-known/agent-card.json")).json()
    assert card["securitySchemes"]["peerBearer"]["httpAuthSecurityScheme"]["scheme"] == "bearer"
    assert card["securityRequirements"] == [{"schemes": {"peerBearer": {}}}]
    assert SECRET not in str(card)


# Made when each case runs (a token made at collection would expire before a late case runs).
@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (lambda: None, "missing bearer token"),
        (lambda: "Basic dXNlcjpwYXNz", "missing bearer token"),
        (lambda: "Bearer not-a-jwt", "malformed token"),
        (lambda: f"Bearer {token(key='another-secret-of-sufficient-length-000')}", "bad signature"),
        (lambda: f"Bearer {token(iat=int(time.time()) - 600, exp=int(time.time()) - 300)}", "token expired"),
        (lambda: f"Bearer {token(aud='Carol')}", "another audience"),
        (lambda: f"Bearer {token(jti=None)}", "missing claim jti"),
        (lambda: f"Bearer {token(exp=int(time.time()) + 3600)}", "lifetime too long"),
    ],
    ids=["missing", "basic", "malformed", "wrong-key", "expired", "wrong-audience", "no-jti", "long-lived"],
)
async def test_bad_token_gets_401_with_a_json_rpc_error_and_no_teams_call(
    http: httpx.AsyncClient,
    bob: RunningBot,
    connector: StandInConnector,
    service_url: str,
    caplog: pytest.LogCaptureFixture,
    authorization: Callable[[], str | None],
    reason: str,
) -> None:
    value = authorization()
    headers = {**A2A_HEADERS, **({"Authorization": value} if value else {})}
    response = await http.post(
        f"{bob.url}/a2a", headers=headers, json=send_message({"data": handoff(service_url)})
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="a2a"'
    error = response.json()["error"]
    assert not -32009 <= error["code"] <= -32001, "not one of A2A's own codes (-32001 is TaskNotFound)"
    assert response.json()["id"] == 7, "the request id is answered when it can be read"
    assert reason in error["message"]
    assert connector.calls == []
    assert any(
        reason in str(entry.get("reason", "")) for entry in logged(caplog.records, "a2a_auth_rejected")
    )
    if value:
        assert value.split()[-1] not in caplog.text


async def test_replayed_token_is_refused(
    http: httpx.AsyncClient, bob: RunningBot, connector: StandInConnector, service_url: str
) -> None:
    headers = {**A2A_HEADERS, "Authorization": f"Bearer {token()}"}
    first = await http.post(
        f"{bob.url}/a2a", headers=headers, json=send_message({"data": handoff(service_url)})
    )
    assert outcome_of(first)["status"] == "delivered"
    replay = await http.post(
        f"{bob.url}/a2a", headers=headers, json=send_message({"data": handoff(service_url)})
    )
    assert replay.status_code == 401
    assert "replayed" in replay.json()["error"]["message"]
    assert len(connector.created()) == 1


async def test_caller_must_be_the_bot_named_in_from(
    http: httpx.AsyncClient, bob: RunningBot, connector: StandInConnector, service_url: str
) -> None:
    signer = SharedSecretSigner(SECRET, issuer="Carol")
    headers = {**A2A_HEADERS, "Authorization": f"Bearer {signer.token_for('Bob')}"}
    response = await http.post(
        f"{bob.url}/a2a",
        headers=headers,
        json=send_message({"data": handoff(service_url, **{"from": "Alice"})}),
    )
    assert response.json()["error"]["code"] == -32602
    assert "does not match the authenticated caller" in response.json()["error"]["message"]
    assert connector.calls == []

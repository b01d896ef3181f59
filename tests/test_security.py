"""Secure by default: limits, allowlists, inbound auth, and no secret ever leaves the process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from a2a_bridge.limits import RateLimiter
from tests.conftest import ALICE_DESCRIPTION, BOB_DESCRIPTION
from tests.harness import (
    LoopbackServer,
    RunningBot,
    TeamsUser,
    message_activity,
    started_bot,
    user_says,
    written_logs,
)
from tests.standins.connector import StandInConnector
from tests.standins.openai_server import StandInOpenAI, say, tool_then_say
from tests.test_a2a_endpoint import A2A_HEADERS, handoff, outcome_of, send_message

A2A_SECRET = "another-shared-secret-for-the-security-tests-0001"


@pytest.fixture
async def bob(state_dir: Path) -> Any:
    async with started_bot(
        "Bob", BOB_DESCRIPTION, state_dir=state_dir, max_request_bytes=4096, a2a_rate_limit_per_minute=3
    ) as running:
        yield running


async def test_oversized_bodies_get_413(http: httpx.AsyncClient, bob: Any, service_url: str) -> None:
    big = handoff(service_url, summary="x" * 5000)
    a2a = await http.post(f"{bob.url}/a2a", headers=A2A_HEADERS, json=send_message({"data": big}))
    assert a2a.status_code == 413
    assert a2a.json()["error"]["code"] == -32600
    teams = await http.post(
        f"{bob.url}/api/messages",
        json=message_activity("y" * 5000, conversation_id="a:c", service_url=service_url),
    )
    assert teams.status_code == 413


async def test_summary_over_the_cap_is_invalid_params(
    http: httpx.AsyncClient, state_dir: Path, service_url: str
) -> None:
    async with started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir) as bob:
        response = await http.post(
            f"{bob.url}/a2a",
            headers=A2A_HEADERS,
            json=send_message({"data": handoff(service_url, summary="x" * 4001)}),
        )
    assert response.json()["error"]["code"] == -32602
    assert "summary: String should have at most 4000 characters" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not JSON"),
        (b"[1, 2]", "body is not a JSON object"),
        (b"{}", "bad or missing field(s): type"),
        (b'{"type": "message"}', "conversation, from, id, recipient"),
    ],
)
async def test_malformed_activity_gets_400_and_the_bot_keeps_serving(
    http: httpx.AsyncClient, bob: Any, body: bytes, reason: str
) -> None:
    response = await http.post(
        f"{bob.url}/api/messages", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert (await http.get(f"{bob.url}/healthz")).status_code == 200


async def test_a2a_caller_over_its_rate_gets_429_with_retry_after(
    http: httpx.AsyncClient, bob: Any, service_url: str
) -> None:
    statuses = []
    for _ in range(4):
        response = await http.post(
            f"{bob.url}/a2a", headers=A2A_HEADERS, json=send_message({"data": handoff(service_url, hops=9)})
        )
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 429]
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["message"] == "rate limit exceeded; retry later"


async def test_handoff_to_a_host_off_the_allowlist_sends_nothing_there(
    http: httpx.AsyncClient, state_dir: Path
) -> None:
    attacker = StandInConnector()
    server = LoopbackServer(attacker.app).start()
    try:
        async with started_bot(
            "Bob",
            BOB_DESCRIPTION,
            state_dir=state_dir,
            local_development=False,
            dangerously_allow_unauthenticated_requests=False,
            client_id="bob-app-id",
            tenant_id="tenant-contoso",
            client_secret="bob-app-secret",
            a2a_auth_secret=A2A_SECRET,
        ) as bob:
            from a2a_bridge.auth import SharedSecretSigner

            token = SharedSecretSigner(A2A_SECRET, "Alice").token_for("Bob")
            response = await http.post(
                f"{bob.url}/a2a",
                headers={**A2A_HEADERS, "Authorization": f"Bearer {token}"},
                json=send_message({"data": handoff(f"{server.url}/teams")}),
            )
        outcome = outcome_of(response)
        assert outcome["status"] == "rejected"
        assert "not one Bob is allowed to contact" in outcome["reason"]
        assert attacker.calls == []
    finally:
        await server.stop()


async def test_handoff_for_a_tenant_off_the_allowlist_is_rejected(
    http: httpx.AsyncClient, state_dir: Path, connector: StandInConnector, service_url: str
) -> None:
    async with started_bot(
        "Bob", BOB_DESCRIPTION, state_dir=state_dir, tenant_allowlist=["tenant-contoso"]
    ) as bob:
        other = await http.post(
            f"{bob.url}/a2a",
            headers=A2A_HEADERS,
            json=send_message({"data": handoff(service_url, tenantId="tenant-fabrikam")}),
        )
        ours = await http.post(
            f"{bob.url}/a2a",
            headers=A2A_HEADERS,
            json=send_message({"data": handoff(service_url, tenantId="tenant-contoso")}),
        )
    assert outcome_of(other)["status"] == "rejected"
    assert "not enabled for your organisation" in outcome_of(other)["reason"]
    assert outcome_of(ours)["status"] == "delivered"
    assert len(connector.created()) == 1


async def test_teams_user_from_another_tenant_gets_a_polite_refusal_and_no_model_call(
    http: httpx.AsyncClient,
    state_dir: Path,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
) -> None:
    llm.script("alice-model", lambda request: say("should not be asked"))
    async with started_bot(
        "Alice",
        ALICE_DESCRIPTION,
        state_dir=state_dir,
        openai_model="alice-model",
        tenant_allowlist=["tenant-contoso"],
        **llm_settings,
    ) as alice:
        response = await http.post(
            f"{alice.url}/api/messages",
            json=message_activity(
                "Book me a flight",
                conversation_id="a:eve",
                service_url=service_url,
                user=TeamsUser(name="Eve", tenant_id="tenant-fabrikam"),
            ),
        )
    assert response.status_code == 200
    [reply] = connector.sent("a:eve")
    assert reply.text == "**Alice:** Sorry, Alice is not enabled for your organisation."
    assert llm.requests == []


async def test_inbound_teams_auth_stays_on_when_credentials_are_configured(
    http: httpx.AsyncClient, state_dir: Path, service_url: str
) -> None:
    async with started_bot(
        "Alice",
        ALICE_DESCRIPTION,
        state_dir=state_dir,
        local_development=True,
        dangerously_allow_unauthenticated_requests=False,
        client_id="alice-app-id",
        tenant_id="tenant-contoso",
        client_secret="alice-app-secret",
    ) as alice:
        response = await http.post(
            f"{alice.url}/api/messages",
            json=message_activity("hello", conversation_id="a:dana", service_url=service_url),
        )
    assert response.status_code == 401


async def test_no_secret_or_token_reaches_logs_card_readyz_or_replies(
    http: httpx.AsyncClient,
    state_dir: Path,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    service_url: str,
) -> None:
    """Secrets, and every token that passes through (the peer tokens the bots sign and receive,
    the push tokens, any Bot Framework token on the connector calls): none is in any log record as
    written (structured fields and ``extra=`` included), the cards, /readyz, the A2A answers or the
    messages to Teams."""
    api_key = "sk-live-THIS-MUST-NOT-LEAK-1234567890"
    settings: dict[str, Any] = {
        "openai_base_url": f"{llm_server[1].url}/v1",
        "openai_api_key": api_key,
        "a2a_auth_secret": A2A_SECRET,
    }
    llm.script("alice-model", tool_then_say("handoff_to_peer", "ok", peer="Bob", summary="VPN broken"))
    llm.script("bob-model", lambda request: say("Hi, Bob here."))
    with written_logs() as logs:
        async with (
            started_bot(
                "Bob", BOB_DESCRIPTION, state_dir=state_dir, openai_model="bob-model", **settings
            ) as bob,
            started_bot(
                "Alice",
                ALICE_DESCRIPTION,
                state_dir=state_dir,
                openai_model="alice-model",
                peer_urls=[bob.url],
                **settings,
            ) as alice,
        ):
            await user_says(
                http,
                connector,
                alice.url,
                "My VPN is broken",
                conversation_id="a:dana",
                service_url=service_url,
            )
            exposed = [
                *logs.lines,
                (await http.get(f"{bob.url}/.well-known/agent-card.json")).text,
                (await http.get(f"{alice.url}/.well-known/agent-card.json")).text,
                (await http.get(f"{bob.url}/readyz")).text,
                (await http.get(f"{alice.url}/readyz")).text,
                *(
                    answer.decode(errors="replace")
                    for answer in (*bob.recorder.a2a_answers, *alice.recorder.a2a_answers)
                ),
                *(str(call.body) for call in connector.calls),
            ]
            tokens = [*bob.recorder.credentials, *alice.recorder.credentials]
            tokens += [
                call.authorization.removeprefix("Bearer ") for call in connector.calls if call.authorization
            ]
    assert len(connector.created()) == 1, "the handoff really happened"
    assert bob.recorder.credentials, "Alice's peer token reached Bob"
    assert alice.recorder.credentials, "Bob's push reached Alice with its tokens"
    assert logs.lines, "the records were captured"
    for text in exposed:
        assert api_key not in text
        assert A2A_SECRET not in text
        for token in tokens:
            assert token not in text, text[max(0, text.find(token) - 600) : text.find(token) + 100]


def test_a_flood_of_new_callers_resets_no_callers_limit() -> None:
    """Spraying names or addresses costs the sprayer; the limited caller stays limited."""
    limiter = RateLimiter(3)
    assert [limiter.retry_after("Alice") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.retry_after("Alice") > 0
    for n in range(20_000):
        limiter.retry_after(f"address:10.0.{n // 250}.{n % 250}")
    assert limiter.retry_after("Alice") > 0


def test_a_limited_caller_waits_for_its_oldest_call_to_leave_the_minute_and_idle_ones_are_forgotten() -> None:
    now = [1000.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert limiter.retry_after("Alice") == 0.0
    now[0] += 10
    assert limiter.retry_after("Alice") == 0.0
    now[0] += 5
    assert limiter.retry_after("Alice") == pytest.approx(45.0)  # the first call leaves at 1060
    for n in range(1_000):
        limiter.retry_after(f"address:10.1.{n // 250}.{n % 250}")
    assert len(limiter) == 1_001
    now[0] += 45.5
    assert limiter.retry_after("Alice") == 0.0, "a refused call is not counted"
    assert limiter.retry_after("Alice") == pytest.approx(9.5)
    now[0] += 60
    assert limiter.retry_after("Bob") == 0.0
    assert len(limiter) == 1, "callers with no call in the last minute are forgotten"


async def test_a_sender_name_is_a_metric_label_only_for_a_known_peer(
    http: httpx.AsyncClient, bob: RunningBot, service_url: str
) -> None:
    for sender in ("Mallory-1", "Mallory-2"):
        body = send_message({"data": handoff(service_url, **{"from": sender, "hops": 9})})
        await http.post(f"{bob.url}/a2a", headers=A2A_HEADERS, json=body)
    metrics = (await http.get(f"{bob.url}/metrics")).text
    assert "Mallory" not in metrics
    assert 'handoffs_received_total{from_bot="other",outcome="rejected"} 2.0' in metrics

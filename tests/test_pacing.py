"""A burst of answers into one tenant queues below the rate Teams allows instead of meeting 429s;
another tenant's user is not kept waiting behind it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.harness import TeamsUser, message_activity
from tests.standins.connector import ConnectorCall, StandInConnector
from tests.standins.openai_server import StandInOpenAI
from tests.test_resilience import echo
from tests.test_teams_native import alice_on_the_model

RATE, BURST = 4, 2
USERS = 12


def most_in_one_second(calls: list[ConnectorCall]) -> int:
    times = sorted(call.at for call in calls)
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


async def test_a_burst_into_one_tenant_is_paced_and_every_answer_arrives(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    llm.script("alice-model", echo)
    contoso = [TeamsUser(user_id=f"29:user-{n}", aad_object_id=f"aad-{n}") for n in range(USERS)]
    fabrikam = TeamsUser(user_id="29:finn", aad_object_id="aad-finn", tenant_id="tenant-fabrikam")
    async with alice_on_the_model(
        state_dir, llm_settings, connector_rate_per_tenant=RATE, connector_burst_per_tenant=BURST
    ) as alice:

        async def ask(user: TeamsUser, conversation: str) -> None:
            activity = message_activity(
                "Book me a train", conversation_id=conversation, service_url=service_url, user=user
            )
            assert (await http.post(f"{alice.url}/api/messages", json=activity)).status_code == 200

        await asyncio.gather(*(ask(user, f"a:contoso-{n}") for n, user in enumerate(contoso)))
        await ask(fabrikam, "a:fabrikam")
        await connector.wait_for(
            lambda c: all(c.sent(f"a:contoso-{n}") for n in range(USERS)) and c.sent("a:fabrikam"),
            within=30,
        )

    contoso_calls = [call for call in connector.calls if call.conversation_id != "a:fabrikam"]
    replies = [call for call in contoso_calls if call.body.get("type") == "message"]
    assert len(replies) == USERS, "queued, not dropped: every user is answered once"
    # A leaky bucket lets at most burst + rate calls through in any one second (one more for the
    # moment a call takes to reach the connector); unpaced, all twelve would land at once.
    assert most_in_one_second(contoso_calls) <= BURST + RATE + 1
    [finn] = connector.sent("a:fabrikam")
    assert finn.at < max(call.at for call in replies), "another tenant is not queued behind"

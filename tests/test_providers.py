"""Model providers: Azure OpenAI settings drive the same real tool loop (against the stand-in server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ALICE_DESCRIPTION
from tests.harness import started_bot, user_says
from tests.standins.connector import StandInConnector
from tests.standins.openai_server import StandInOpenAI, say


async def test_azure_openai_settings_reach_the_deployment(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    service_url: str,
    state_dir: Path,
) -> None:
    llm.script("travel-deployment", lambda request: say("Azure says: book the 8:15 train."))
    async with started_bot(
        "Alice",
        ALICE_DESCRIPTION,
        state_dir=state_dir,
        azure_openai_endpoint=llm_server[1].url,
        azure_openai_api_key="azure-key-not-real",
        azure_openai_model="travel-deployment",
    ) as alice:
        assert alice.service.settings.model_provider == "azure"
        [reply] = await user_says(
            http, connector, alice.url, "Which train?", conversation_id="a:dana", service_url=service_url
        )
    assert reply.text == "**Alice:** Azure says: book the 8:15 train."
    [request] = llm.requests_for("travel-deployment")
    assert request["messages"][-1]["content"] == "Which train?"

"""The A2A endpoint behaves as a well-formed A2A 1.0 agent for what its card declares (and refuses
what it does not declare with the spec's error codes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.compat.v0_3 import types as v0_3
from a2a.types import a2a_pb2
from jsonschema import Draft202012Validator

from tests.a2a_schema import json_schema_of
from tests.conftest import BOB_DESCRIPTION
from tests.harness import RunningBot, started_bot
from tests.standins.connector import StandInConnector
from tests.test_a2a_endpoint import A2A_HEADERS, handoff, outcome_of, send_message

TASK_NOT_FOUND = -32001
UNSUPPORTED_OPERATION = -32004
VERSION_NOT_SUPPORTED = -32009
CONTENT_TYPE_NOT_SUPPORTED = -32005


@pytest.fixture
async def bob(state_dir: Path) -> Any:
    async with started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir) as running:
        yield running


def rpc(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": "c-1", "method": method, "params": params}


async def test_card_is_served_at_the_root_with_cache_control_and_an_etag(
    http: httpx.AsyncClient, bob: RunningBot
) -> None:
    response = await http.get(f"{bob.url}/.well-known/agent-card.json")
    assert response.headers["cache-control"] == "public, max-age=300"
    again = await http.get(
        f"{bob.url}/.well-known/agent-card.json", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304
    card = response.json()
    assert card["capabilities"] == {"streaming": False, "pushNotifications": True}
    assert {i["protocolVersion"] for i in card["supportedInterfaces"]} == {"1.0", "0.3"}
    assert card["supportedInterfaces"][0]["url"] == f"{bob.url}/a2a"


CARD_PATHS = ["/.well-known/agent-card.json", "/a2a/.well-known/agent-card.json"]
ZERO_THREE_ONLY = {"url", "protocolVersion", "preferredTransport", "additionalInterfaces", "security"}


@pytest.mark.parametrize("path", CARD_PATHS)
async def test_a_1_0_client_gets_a_card_valid_against_the_specs_agent_card_schema(
    path: str, http: httpx.AsyncClient, state_dir: Path
) -> None:
    schema = json_schema_of(a2a_pb2.AgentCard.DESCRIPTOR)
    async with started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir, a2a_auth_secret="s" * 32) as bob:
        response = await http.get(bob.url + path, headers={"A2A-Version": "1.0"})
    card = response.json()
    errors = [error.message for error in Draft202012Validator(schema).iter_errors(card)]
    assert errors == []
    assert not ZERO_THREE_ONLY & set(card)
    assert "peerBearer" in card["securitySchemes"], "the schema check covered the security scheme too"
    assert response.headers["vary"] == "A2A-Version"


async def test_the_schema_check_would_catch_a_0_3_field_in_a_1_0_card(
    http: httpx.AsyncClient, bob: RunningBot
) -> None:
    schema = json_schema_of(a2a_pb2.AgentCard.DESCRIPTOR)
    card = (await http.get(f"{bob.url}/.well-known/agent-card.json")).json()
    assert "url" in card
    assert any("url" in error.message for error in Draft202012Validator(schema).iter_errors(card))


@pytest.mark.parametrize("version", [None, "0.3", "0.3.0"])
@pytest.mark.parametrize("path", CARD_PATHS)
async def test_a_0_3_client_gets_the_fields_it_needs(
    version: str | None, path: str, http: httpx.AsyncClient, bob: RunningBot
) -> None:
    """The spec reads a request without A2A-Version as 0.3; a2a-sdk 0.3's resolver validates the card
    with its 0.3 AgentCard model and calls the top-level ``url``."""
    headers = {"A2A-Version": version} if version else {}
    card = (await http.get(bob.url + path, headers=headers)).json()
    legacy = v0_3.AgentCard.model_validate(card)
    assert legacy.url == f"{bob.url}/a2a"
    assert (legacy.protocol_version or "").startswith("0.3")
    assert legacy.preferred_transport == "JSONRPC"
    assert {skill.id for skill in legacy.skills} == {"handoff", "consult"}


async def test_each_card_shape_has_its_own_etag(http: httpx.AsyncClient, bob: RunningBot) -> None:
    current = await http.get(f"{bob.url}/.well-known/agent-card.json", headers={"A2A-Version": "1.0"})
    legacy = await http.get(f"{bob.url}/.well-known/agent-card.json")
    assert current.headers["etag"] != legacy.headers["etag"]
    stale = await http.get(
        f"{bob.url}/.well-known/agent-card.json", headers={"If-None-Match": current.headers["etag"]}
    )
    assert stale.status_code == 200 and "url" in stale.json()


async def test_a_caller_that_waits_gets_the_handoffs_ended_task(
    http: httpx.AsyncClient, bob: RunningBot, service_url: str
) -> None:
    """Without ``returnImmediately`` a SendMessage blocks until the task ends (A2A 1.0, 3.1.2)."""
    response = await http.post(
        f"{bob.url}/a2a", headers=A2A_HEADERS, json=send_message({"data": handoff(service_url)})
    )
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] == 7
    task = body["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["status"]["message"]["role"] == "ROLE_AGENT"
    assert outcome_of(response)["status"] == "delivered"


@pytest.mark.parametrize(
    ("method", "params", "code"),
    [
        (
            "SendStreamingMessage",
            {"message": {"role": "ROLE_USER", "messageId": "m", "parts": [{"text": "x"}]}},
            UNSUPPORTED_OPERATION,
        ),
        ("SubscribeToTask", {"id": "no-such-task"}, UNSUPPORTED_OPERATION),
        ("GetTask", {"id": "no-such-task"}, TASK_NOT_FOUND),
        ("CancelTask", {"id": "no-such-task"}, TASK_NOT_FOUND),
        # Push notifications are declared: a config for a task that does not exist is TaskNotFound.
        (
            "CreateTaskPushNotificationConfig",
            {"taskId": "no-such-task", "url": "https://example.com/hook"},
            TASK_NOT_FOUND,
        ),
    ],
)
async def test_undeclared_operations_get_the_specs_error_codes(
    http: httpx.AsyncClient, bob: RunningBot, method: str, params: dict[str, Any], code: int
) -> None:
    response = await http.post(f"{bob.url}/a2a", headers=A2A_HEADERS, json=rpc(method, params))
    assert response.json()["error"]["code"] == code, response.text


async def test_a_request_for_an_unknown_protocol_version_is_refused(
    http: httpx.AsyncClient, bob: RunningBot, service_url: str
) -> None:
    response = await http.post(
        f"{bob.url}/a2a", json=send_message({"data": handoff(service_url)}), headers={"A2A-Version": "9.9"}
    )
    assert response.json()["error"]["code"] == VERSION_NOT_SUPPORTED


@pytest.mark.parametrize("path", ["/a2a", "/a2a/"])
async def test_the_a2a_endpoint_answers_with_or_without_the_trailing_slash_and_no_redirect(
    http: httpx.AsyncClient, bob: RunningBot, service_url: str, path: str
) -> None:
    response = await http.post(
        f"{bob.url}{path}", headers=A2A_HEADERS, json=send_message({"data": handoff(service_url)})
    )
    assert response.status_code == 200, "answered in place, not redirected"
    assert outcome_of(response)["status"] == "delivered"


async def test_a_part_type_this_agent_does_not_read_gets_content_type_not_supported(
    http: httpx.AsyncClient, bob: RunningBot, connector: StandInConnector
) -> None:
    file_part = {"url": "https://example.test/receipt.pdf", "mediaType": "application/pdf"}
    response = await http.post(f"{bob.url}/a2a", headers=A2A_HEADERS, json=send_message(file_part))
    assert response.json()["error"]["code"] == CONTENT_TYPE_NOT_SUPPORTED
    assert "url" in response.json()["error"]["message"]
    assert connector.calls == []


async def test_a_body_not_sent_as_json_gets_415_with_content_type_not_supported(
    http: httpx.AsyncClient, bob: RunningBot
) -> None:
    body = json.dumps(send_message({"text": "hi"}))
    response = await http.post(
        f"{bob.url}/a2a", headers={**A2A_HEADERS, "content-type": "text/plain"}, content=body
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == CONTENT_TYPE_NOT_SUPPORTED

"""What once crashed a handler, and what was accepted wrongly, now gets a 4xx or the spec's JSON-RPC
error in our own words: never a 5xx, never -32603, never an exception's text."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from a2a_bridge.handoff import HandoffMessage
from a2a_bridge.policy import HandoffPolicy
from tests.conftest import ALICE_DESCRIPTION, BOB_DESCRIPTION
from tests.harness import RunningBot, message_activity, outcome_in, started_bot
from tests.processes import BotProcess
from tests.standins.connector import StandInConnector
from tests.test_a2a_auth import SECRET, token
from tests.test_a2a_endpoint import A2A_HEADERS, handoff, send_message

DEEP = b"[" * 2000 + b"]" * 2000  # deeper than Python's recursion limit
HUGE_NUMBER = b"9" * 5000


@pytest.fixture
async def bob(state_dir: Path) -> Any:
    async with started_bot(
        "Bob",
        BOB_DESCRIPTION,
        state_dir=state_dir,
        a2a_auth_secret=SECRET,
        local_development=False,
        client_id="bob-app-id",
        tenant_id="tenant-contoso",
        client_secret="bob-secret-value",
        dangerously_allow_unauthenticated_requests=False,
        service_url_allowlist=["smba.trafficmanager.net"],
    ) as running:
        yield running


@pytest.fixture
async def alice(state_dir: Path) -> Any:
    async with started_bot("Alice", ALICE_DESCRIPTION, state_dir=state_dir) as running:
        yield running


async def raw_connection(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain TCP connection to a bot, for requests no HTTP client would send."""
    host, port = url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


def signed() -> dict[str, str]:
    return {**A2A_HEADERS, "Authorization": f"Bearer {token()}", "Content-Type": "application/json"}


def assert_our_words(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text and "Error(" not in response.text
    if response.headers.get("content-type", "").startswith("application/json"):
        error = response.json().get("error") if isinstance(response.json(), dict) else None
        if isinstance(error, dict):
            assert error.get("code") != -32603, response.text


@pytest.mark.parametrize(
    "claims",
    [{"exp": str(int(time.time()) + 60)}, {"iat": str(int(time.time()))}, {"jti": 12}, {"jti": ["x"]}],
    ids=["exp-string", "iat-string", "jti-number", "jti-list"],
)
async def test_a_validly_signed_token_with_a_claim_of_the_wrong_type_gets_401(
    http: httpx.AsyncClient, bob: RunningBot, claims: dict[str, Any]
) -> None:
    headers = {**A2A_HEADERS, "Authorization": f"Bearer {token(**claims)}"}
    response = await http.post(f"{bob.url}/a2a", headers=headers, json=send_message({"text": "hi"}))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == -32099


@pytest.mark.parametrize(
    "service_url",
    [
        "https://[smba.trafficmanager.net]/teams",  # brackets around a name
        "https://smba.trafficmanager.net\uff0fevil.example/teams",  # NFKC turns it into another host
        "https://\uff53mba.trafficmanager.net/teams",  # a full-width look-alike of the allowed host
        "https://user:pw@smba.trafficmanager.net/teams",  # user info
        "https://smba.trafficmanager.net:8443/teams",  # an odd port
        "https://smba.trafficmanager.net.evil.example/teams",
    ],
)
async def test_a_suspicious_service_url_is_a_rejected_outcome_and_no_call(
    http: httpx.AsyncClient, bob: RunningBot, connector: StandInConnector, service_url: str
) -> None:
    body = send_message({"data": handoff(service_url)})
    response = await http.post(f"{bob.url}/a2a", headers=signed(), json=body)
    assert_our_words(response)
    outcome = outcome_in(response.json())
    assert outcome["status"] == "rejected" and outcome["reasonCode"] == "policy_rejected"
    assert connector.calls == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (DEEP, "nested deeper than 32 levels"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": ' + DEEP + b"}", "nested deeper"),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": ' + HUGE_NUMBER + b"}}",
            "digits",
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "\xff\xfe"}}',
            "not valid UTF-8",
        ),
    ],
    ids=["deep", "deep-params", "huge-number", "bad-utf8"],
)
async def test_a2a_refuses_unparseable_json_with_a_parse_error(
    http: httpx.AsyncClient, bob: RunningBot, body: bytes, reason: str
) -> None:
    response = await http.post(f"{bob.url}/a2a", headers=signed(), content=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == -32700 and reason in error["message"]


async def test_a_data_part_nested_thousands_deep_is_refused_before_parsing(
    http: httpx.AsyncClient, bob: RunningBot, service_url: str
) -> None:
    part = json.dumps({"data": {**handoff(service_url), "extra": "PLACEHOLDER"}}).encode()
    body = json.dumps(send_message({"text": "x"})).encode().replace(b'{"text": "x"}', part)
    body = body.replace(b'"PLACEHOLDER"', DEEP)
    response = await http.post(f"{bob.url}/a2a", headers=signed(), content=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == -32700


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda raw: raw.replace(b'"textFormat": "plain"', b'"textFormat": "plain", "x": ' + DEEP), "nested"),
        (
            lambda raw: raw.replace(b'"textFormat": "plain"', b'"textFormat": "plain", "x": ' + HUGE_NUMBER),
            "digits",
        ),
        (lambda raw: raw.replace(b'"text": "hello"', b'"text": "\xc3\x28"'), "UTF-8"),
        (lambda raw: raw.replace(b"http://127.0.0.1", b"https://[teams.example]"), "serviceUrl"),
    ],
    ids=["deep", "huge-number", "bad-utf8", "bracketed-service-url"],
)
async def test_api_messages_refuses_hostile_activities_with_400(
    http: httpx.AsyncClient, alice: RunningBot, service_url: str, mutate: Any, reason: str
) -> None:
    raw = json.dumps(message_activity("hello", conversation_id="a:x", service_url=service_url)).encode()
    response = await http.post(
        f"{alice.url}/api/messages", content=mutate(raw), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]


async def test_a_bad_token_is_refused_before_a_stalled_body_arrives(bob: RunningBot) -> None:
    """The token is read off the headers: a caller that declares a megabyte and sends none of it
    gets its 401 within the short wait for the request id, not after a body deadline."""
    reader, writer = await raw_connection(bob.url)
    writer.write(
        b"POST /a2a HTTP/1.1\r\nHost: bob\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer forged\r\nContent-Length: 1048576\r\n\r\n"
        b'{"jsonrpc": "2.0", "id": 42, "method": "SendMessage", "params": {'
    )
    await writer.drain()
    started = time.perf_counter()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    head_and_body = await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 401")
    assert b'"id":42' in head_and_body.replace(b" ", b"")
    assert time.perf_counter() - started < 3


def test_the_service_url_check_is_on_the_normalised_host() -> None:
    policy = HandoffPolicy(receiver_name="Bob")
    ok = handoff("https://smba.trafficmanager.net/teams")
    assert policy.refusal(HandoffMessage.model_validate(ok)) is None
    upper = HandoffMessage.model_validate({**ok, "serviceUrl": "https://SMBA.trafficmanager.NET:443/teams"})
    assert policy.refusal(upper) is None


async def raw_request(url: str, head: bytes, chunk: int = 16 * 1024) -> tuple[bytes, int]:
    """Send a request head as a client would, chunk by chunk, reading any answer between chunks:
    what the server answered (b"" if it only closed the connection) and how many bytes went out
    before it did."""
    reader, writer = await raw_connection(url)
    sent = 0
    try:
        for start in range(0, len(head), chunk):
            writer.write(head[start : start + chunk])
            await writer.drain()
            sent += len(head[start : start + chunk])
            try:
                answer = await asyncio.wait_for(reader.read(4096), 0.001)
            except TimeoutError:
                continue
            return answer, sent
        return await asyncio.wait_for(reader.read(4096), 10), sent
    except ConnectionError:
        return b"", sent
    finally:
        writer.close()


async def test_the_server_refuses_an_oversized_request_head_while_reading_it(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    settings = {"BOT_DESCRIPTION": BOB_DESCRIPTION, "STATE_URL": f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"}
    bob = await BotProcess("Bob", settings, tmp_path).start()
    try:
        huge = b"POST /a2a HTTP/1.1\r\nHost: bob\r\nX-Filler: " + b"a" * (8 * 1024 * 1024) + b"\r\n\r\n"
        answer, sent = await raw_request(bob.url, huge)
        assert answer.startswith(b"HTTP/1.1 431") or answer == b"", answer[:100]
        assert sent < 1024 * 1024, "refused long before the 8 MB were read"
        many = (
            b"GET /healthz HTTP/1.1\r\nHost: bob\r\n"
            + b"".join(b"X-%d: 1\r\n" % i for i in range(150))
            + b"\r\n"
        )
        answer, _ = await raw_request(bob.url, many)
        assert answer.startswith(b"HTTP/1.1 431") and b"more than 100 header fields" in answer
        assert (await http.get(f"{bob.url}/healthz")).status_code == 200, "and it still serves"
        assert bob.rss_mb() < 400
    finally:
        assert await bob.stop() == 0


@pytest.mark.parametrize("method", ["tasks/get", "message/send", "GetTask", "SendMessage"])
async def test_a_malformed_request_is_answered_without_the_validators_words(
    http: httpx.AsyncClient, bob: RunningBot, method: str
) -> None:
    body = {"jsonrpc": "2.0", "id": None, "method": method, "params": {"message": {"parts": [{"x": 1}]}}}
    response = await http.post(f"{bob.url}/a2a", headers=signed(), json=body)
    assert_our_words(response)
    error = response.json()["error"]
    assert "data" not in error
    assert "validation error" not in response.text and "input_value" not in response.text


async def test_a_method_of_the_other_protocol_version_is_an_invalid_request_not_an_internal_error(
    http: httpx.AsyncClient, bob: RunningBot, service_url: str
) -> None:
    body = {
        "jsonrpc": "2.0",
        "id": "v",
        "method": "message/send",
        "params": {"message": {"role": "user", "messageId": "m", "parts": [{"kind": "text", "text": "hi"}]}},
    }
    response = await http.post(f"{bob.url}/a2a", headers=signed(), json=body)  # A2A-Version: 1.0
    error = response.json()["error"]
    assert error["code"] == -32600 and "another A2A version" in error["message"]


@pytest.mark.parametrize("path", ["/a2a", "/api/messages"])
async def test_a_body_that_stalls_gets_408_after_the_deadline(
    alice: RunningBot, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    monkeypatch.setattr("a2a_bridge.asgi.BODY_DEADLINE_SECONDS", 0.5)
    reader, writer = await raw_connection(alice.url)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: alice\r\nContent-Type: application/json\r\n"
        "Content-Length: 4096\r\n\r\n{".encode()
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 408"), status_line

"""Property-based: whatever arrives at /a2a or /api/messages, the answer is never a 5xx and the
process keeps serving. Hypothesis generates the inputs; the bot is a real server on loopback."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import BOB_DESCRIPTION
from tests.harness import FUZZ_COUNTS, RunningBot, start_bot

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
HANDOFF_FIELDS = [
    "kind",
    "handoffId",
    "from",
    "userName",
    "aadObjectId",
    "tenantId",
    "serviceUrl",
    "summary",
    "hops",
]
plausible = {
    "kind": st.just("handoff"),
    "handoffId": st.text(min_size=1, max_size=120),
    "from": st.sampled_from(["Alice", "Carol", ""]) | st.text(max_size=120),
    "userName": st.text(max_size=250),
    "aadObjectId": st.text(max_size=120),
    "tenantId": st.text(max_size=120),
    "serviceUrl": st.sampled_from(
        ["https://smba.trafficmanager.net/teams", "http://127.0.0.1:9/x", "ftp://x", ""]
    ),
    "summary": st.text(max_size=300),
    "hops": st.integers(min_value=-3, max_value=5) | st.floats(allow_nan=False, allow_infinity=False),
}
handoff_variants = st.fixed_dictionaries(
    {}, optional={name: plausible[name] | json_values for name in HANDOFF_FIELDS}
)
parts = st.lists(
    st.one_of(
        st.builds(lambda data: {"data": data}, handoff_variants),
        st.builds(lambda text: {"text": text}, st.text(max_size=50)),
        st.builds(lambda data: {"kind": "data", "data": data}, handoff_variants),
        json_values,
    ),
    max_size=3,
)
methods = st.sampled_from(
    ["SendMessage", "message/send", "GetTask", "CancelTask", "SendStreamingMessage", "tasks/get", "NoSuch"]
) | st.text(max_size=20)
jsonrpc_bodies = st.one_of(
    st.builds(
        lambda method, parts, role, ident: {
            "jsonrpc": "2.0",
            "id": ident,
            "method": method,
            "params": {"message": {"role": role, "messageId": "m-1", "parts": parts}},
        },
        methods,
        parts,
        st.sampled_from(["ROLE_USER", "user", "agent", 7]),
        json_values,
    ),
    st.dictionaries(st.sampled_from(["jsonrpc", "id", "method", "params"]), json_values),
    json_values,
)
activities = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["message", "conversationUpdate", "typing", "invoke", "bogus"])},
        optional={
            "id": st.text(max_size=10),
            "text": st.text(max_size=80),
            "channelId": st.sampled_from(["msteams", "webchat"]),
            "serviceUrl": st.sampled_from(["http://127.0.0.1:9/emea", "not a url", ""]),
            "from": st.fixed_dictionaries(
                {"id": st.text(max_size=10)}, optional={"aadObjectId": st.text(max_size=10)}
            ),
            "recipient": st.fixed_dictionaries({"id": st.text(max_size=10)}),
            "conversation": st.fixed_dictionaries(
                {"id": st.text(max_size=10)}, optional={"tenantId": st.text(max_size=10)}
            ),
            "channelData": json_values,
        },
    ),
    json_values,
)


@pytest.fixture(scope="module")
def fuzz_bob(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    """Bob on his own event loop in a thread, so Hypothesis can drive him from synchronous tests."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    state_dir = tmp_path_factory.mktemp("fuzz")
    bot = asyncio.run_coroutine_threadsafe(
        start_bot(
            "Bob",
            BOB_DESCRIPTION,
            state_dir=state_dir,
            a2a_rate_limit_per_minute=100_000,
            connector_timeout_seconds=2,
        ),
        loop,
    ).result(60)
    try:
        yield bot
    finally:
        asyncio.run_coroutine_threadsafe(bot.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def post(bot: RunningBot, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(timeout=30) as client:
        return client.post(
            f"{bot.url}{path}",
            content=json.dumps(body).encode(),
            headers={"content-type": "application/json", **(headers or {})},
        )


FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def assert_still_serves(bot: RunningBot) -> None:
    with httpx.Client() as client:
        assert client.get(f"{bot.url}/healthz").status_code == 200
        assert client.get(f"{bot.url}/.well-known/agent-card.json").json()["name"] == "Bob"


def count(target: str) -> None:
    FUZZ_COUNTS[target] = FUZZ_COUNTS.get(target, 0) + 1


def test_fuzzed_json_rpc_never_gets_a_5xx_and_bob_still_serves(fuzz_bob: RunningBot) -> None:
    @FUZZ
    @given(body=jsonrpc_bodies)
    def case(body: Any) -> None:
        count("/a2a JSON-RPC bodies")
        response = post(fuzz_bob, "/a2a", body, {"A2A-Version": "1.0"})
        assert response.status_code < 500, response.text

    case()
    assert_still_serves(fuzz_bob)


def test_fuzzed_handoff_messages_never_get_a_5xx_and_bob_still_serves(fuzz_bob: RunningBot) -> None:
    @FUZZ
    @given(handoff=handoff_variants)
    def case(handoff: dict[str, Any]) -> None:
        count("/a2a HandoffMessage variants")
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "SendMessage",
            "params": {"message": {"role": "ROLE_USER", "messageId": "fuzz", "parts": [{"data": handoff}]}},
        }
        response = post(fuzz_bob, "/a2a", body, {"A2A-Version": "1.0"})
        assert response.status_code < 500, response.text
        reply = response.json()
        assert ("result" in reply) != ("error" in reply)

    case()
    assert_still_serves(fuzz_bob)


def test_fuzzed_activities_never_get_a_5xx_and_bob_still_serves(fuzz_bob: RunningBot) -> None:
    @FUZZ
    @given(activity=activities)
    def case(activity: Any) -> None:
        count("/api/messages activities")
        response = post(fuzz_bob, "/api/messages", activity)
        assert response.status_code < 500, response.text

    case()
    assert_still_serves(fuzz_bob)


async def test_the_fuzz_script_in_its_short_form_finds_no_crash() -> None:
    """CI's run of ``scripts/fuzz.py`` (10,000 cases per endpoint by default, a few hundred here)."""
    from scripts.bot_process import ROOT

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.fuzz",
        "--cases",
        "300",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 600)
    report = out.decode()
    assert process.returncode == 0, report
    rows = [line for line in report.splitlines() if line.startswith(("/a2a", "/api"))]
    assert len(rows) == 5, report
    for row in rows:
        assert row.split()[-2:] == ["0", "0"], row  # 5xx, crashes
    assert "RSS before" in report

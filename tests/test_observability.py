"""What operators see from outside: one trace across both bots, metrics, correlated logs, readiness."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from bot.logs import json_formatter
from bot.observability import instrument_outbound_http
from tests.conftest import ALICE_DESCRIPTION, BOB_DESCRIPTION
from tests.harness import alice_and_bob, started_bot, user_says
from tests.standins.connector import StandInConnector

VPN = "My laptop can't connect to the VPN"


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """An SDK tracer provider for this process, as OTEL_TRACES_EXPORTER would install one."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    instrument_outbound_http()
    return exporter


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(json_formatter("test"))
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield sink
    root.removeHandler(handler)
    root.setLevel(level)


def lines(sink: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in sink.getvalue().splitlines() if line.startswith("{")]


def named(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    return next(span for span in spans if span.name == name)


async def test_one_trace_covers_alices_turn_and_bobs_greeting(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    service_url: str,
    state_dir: Path,
    spans: InMemorySpanExporter,
) -> None:
    spans.clear()
    tracing: dict[str, Any] = {"otel_traces_exporter": "console"}  # the test's provider records spans
    async with (
        started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir, **tracing) as bob,
        started_bot("Alice", ALICE_DESCRIPTION, state_dir=state_dir, peer_urls=[bob.url], **tracing) as alice,
    ):
        await user_says(http, connector, alice.url, VPN, conversation_id="a:dana", service_url=service_url)
    finished = list(spans.get_finished_spans())
    turn = named(finished, "teams.turn")
    send = named(finished, "a2a.send_handoff")
    receive = named(finished, "a2a.receive")
    greeting = named(finished, "handoff.receive")
    assert send.context.trace_id == turn.context.trace_id
    assert receive.context.trace_id == send.context.trace_id, "the trace crossed the A2A hop"
    assert greeting.context.trace_id == send.context.trace_id
    assert receive.parent is not None
    [server] = [span for span in finished if span.context.span_id == receive.parent.span_id]
    assert server.kind == trace.SpanKind.SERVER and send.kind == trace.SpanKind.CLIENT
    assert server.parent is not None and server.parent.trace_id == send.context.trace_id
    framework = [
        span
        for span in finished
        if span.context.trace_id == turn.context.trace_id
        and span.name.startswith(("invoke_agent", "chat", "execute_tool"))
    ]
    assert framework, "agent-framework's own spans are part of the same trace"


async def test_metrics_count_handoffs_calls_and_state(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path
) -> None:
    async with alice_and_bob(state_dir) as (alice, bob):
        await user_says(http, connector, alice.url, VPN, conversation_id="a:dana", service_url=service_url)
        alice_metrics = (await http.get(f"{alice.url}/metrics")).text
        bob_metrics = (await http.get(f"{bob.url}/metrics")).text

    def sample(text: str, name: str, **labels: str) -> float:
        for family in text_string_to_metric_families(text):
            for found in family.samples:
                if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                    return float(found.value)
        raise AssertionError(f"no sample {name} {labels}")

    assert sample(alice_metrics, "handoffs_sent_total", peer="Bob", outcome="delivered", reason="none") == 1
    assert sample(alice_metrics, "a2a_call_duration_seconds_count", peer="Bob", result="ok") == 1
    # One model call: the turn ends at the handoff tool (the user gets the outcome template, not model text).
    assert sample(alice_metrics, "model_call_duration_seconds_count", provider="offline", result="ok") == 1
    # The notice: posted at once ("Connecting you to Bob…"), then edited to the outcome.
    assert (
        sample(alice_metrics, "connector_call_duration_seconds_count", call="send_notice", status="2xx") == 1
    )
    assert (
        sample(alice_metrics, "connector_call_duration_seconds_count", call="update_notice", status="2xx")
        == 1
    )
    assert sample(alice_metrics, "turns_in_flight") == 0
    assert sample(alice_metrics, "peer_circuit_breaker_state", peer="Bob") == 0
    # Bob is not configured with Alice as a peer: a sender's name is a label only for known peers.
    assert sample(bob_metrics, "handoffs_received_total", from_bot="other", outcome="delivered") == 1
    assert (
        sample(bob_metrics, "connector_call_duration_seconds_count", call="create_conversation", status="2xx")
        == 1
    )
    assert (
        sample(bob_metrics, "connector_call_duration_seconds_count", call="send_greeting", status="2xx") == 1
    )


async def test_log_lines_carry_the_turns_correlation_fields_and_no_message_text(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    service_url: str,
    state_dir: Path,
    json_log: io.StringIO,
    spans: InMemorySpanExporter,
) -> None:
    async with alice_and_bob(state_dir) as (alice, _bob):
        await user_says(
            http,
            connector,
            alice.url,
            VPN,
            conversation_id="a:dana",
            service_url=service_url,
            activity_id="act-7",
        )
    logged = lines(json_log)
    events = {line["event"]: line for line in logged}
    for name in (
        "handoff_requested",
        "a2a_send_start",
        "a2a_send_complete",
        "handoff_received",
        "conversation_created",
        "greeting_sent",
        "turn_complete",
    ):
        assert name in events, f"missing event {name}"
    requested = events["handoff_requested"]
    assert requested["conversation_id"] == "a:dana" and requested["activity_id"] == "act-7"
    handoff_id = requested["handoff_id"]
    for name in ("a2a_send_complete", "handoff_received", "conversation_created", "greeting_sent"):
        assert events[name]["handoff_id"] == handoff_id
        assert events[name]["trace_id"] == requested["trace_id"]
    assert "a2a_message_id" in events["a2a_send_start"]
    assert "a2a_task_id" in events["handoff_received"]
    for name in ("a2a_send_complete", "conversation_created", "greeting_sent", "turn_complete"):
        assert isinstance(events[name]["duration_ms"], int)
    assert VPN not in json_log.getvalue(), "no message text at INFO without LOG_CONTENT"


async def test_readyz_says_which_peer_cards_are_fresh(
    http: httpx.AsyncClient, state_dir: Path, service_url: str, connector: StandInConnector
) -> None:
    async with (
        started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir) as bob,
        started_bot(
            "Alice", ALICE_DESCRIPTION, state_dir=state_dir, peer_urls=[bob.url, "http://127.0.0.1:9"]
        ) as alice,
    ):
        await alice.service.peers.refresh()
        ready = (await http.get(f"{alice.url}/readyz")).json()
    assert ready["ready"] is True and ready["store"] == "ok" and ready["model"] == "offline"
    by_url = {peer["url"]: peer for peer in ready["peers"]}
    assert by_url[bob.url]["name"] == "Bob" and by_url[bob.url]["stale"] is False
    assert by_url["http://127.0.0.1:9"]["name"] is None


def test_json_lines_carry_no_terminal_colour_codes_from_uvicorn(json_log: io.StringIO) -> None:
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on %s", "http://127.0.0.1:3978", extra={"color_message": "\x1b[1m%s\x1b[0m"}
    )
    [line] = [entry for entry in lines(json_log) if str(entry["event"]).startswith("Uvicorn running")]
    assert "\\u001b" not in json_log.getvalue() and "color_message" not in line
    assert line["event"] == "Uvicorn running on http://127.0.0.1:3978"


def test_tracing_off_switches_the_sdks_instrumentation_off() -> None:
    """With no exporter, agent-framework records no spans or histograms, OpenTelemetry's providers
    are the no-op ones rather than looked up in the environment on every call, and FastAPI's own
    request telemetry is left off."""
    probe = """
from opentelemetry import metrics, trace
from agent_framework.observability import OBSERVABILITY_SETTINGS
from bot.config import Settings
from bot.observability import configure_tracing, tracing_is_on
assert OBSERVABILITY_SETTINGS.ENABLED and tracing_is_on()
configure_tracing(Settings(_env_file=None, BOT_NAME="Alice", BOT_DESCRIPTION="x", LOCAL_DEVELOPMENT=True, BOT_SELF_URL="http://127.0.0.1:3978"))
assert not OBSERVABILITY_SETTINGS.ENABLED
assert isinstance(trace.get_tracer_provider(), trace.NoOpTracerProvider)
assert isinstance(metrics.get_meter_provider(), metrics.NoOpMeterProvider)
assert not tracing_is_on()  # so FastAPI is built without its own request spans
print("off")
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "off"

"""Metrics (Prometheus, at /metrics) and traces (OpenTelemetry, exporter chosen by OTEL_* settings)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from agent_framework import ChatContext, chat_middleware
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from a2a_bridge.telemetry import A2AMetrics, Stopwatch
from bot.config import Settings

log = structlog.get_logger(__name__)

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class BotMetrics:
    """One registry per bot instance (not the process-global one), so instances never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.a2a = A2AMetrics(self.registry)
        self.model_call_seconds = Histogram(
            "model_call_duration_seconds",
            "Duration of calls to the model provider",
            ["provider", "result"],
            registry=self.registry,
            buckets=_SECONDS,
        )
        self.connector_call_seconds = Histogram(
            "connector_call_duration_seconds",
            "Duration of Bot Connector calls, by call and HTTP status",
            ["call", "status"],
            registry=self.registry,
            buckets=_SECONDS,
        )
        self.turns_in_flight = Gauge("turns_in_flight", "Teams turns being worked on", registry=self.registry)
        self.token_failures = Counter(
            "bot_token_failures_total",
            "Times no Bot Framework token could be had, by reason (Entra's error code)",
            ["reason"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def model_timer(self, provider: str) -> Callable[..., Awaitable[None]]:
        histogram = self.model_call_seconds

        @chat_middleware
        async def time_model_call(context: ChatContext, call_next: Callable[[], Awaitable[None]]) -> None:
            watch = Stopwatch()
            result = "error"
            try:
                await call_next()
                result = "ok"
            finally:
                histogram.labels(provider, result).observe(watch.seconds)

        return time_model_call

    def observe_connector(self, call: str, status: str, seconds: float) -> None:
        self.connector_call_seconds.labels(call, status).observe(seconds)


def configure_tracing(settings: Settings) -> Any:
    """Install an SDK tracer provider when an exporter is configured; tracing is off by default.

    Off means off for the SDKs too: OpenTelemetry's no-op providers are installed explicitly (left
    unset, every ``get_tracer``/``get_meter`` call in a2a-sdk's and the Teams SDK's per-call
    wrappers looks the provider up in the process environment again), and agent-framework's own
    instrumentation, on by default, which records GenAI spans and histograms for every agent run
    and model call, is switched off through its supported ``disable_instrumentation``."""
    if settings.otel_traces_exporter == "none":
        from agent_framework.observability import disable_instrumentation
        from opentelemetry import metrics

        trace.set_tracer_provider(trace.NoOpTracerProvider())
        metrics.set_meter_provider(metrics.NoOpMeterProvider())
        disable_instrumentation()
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if settings.otel_traces_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # reads OTEL_EXPORTER_OTLP_* itself
    else:
        exporter = ConsoleSpanExporter()
    name = settings.otel_service_name or f"teams-handoff-{settings.bot_name.lower()}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    instrument_outbound_http()
    log.info("tracing_on", exporter=settings.otel_traces_exporter, service_name=name)
    return provider


def tracing_is_on() -> bool:
    """False once ``configure_tracing`` has switched tracing off for this process. FastAPI counts
    any provider but OpenTelemetry's unset placeholder as configured, the no-op one included."""
    return not isinstance(trace.get_tracer_provider(), trace.NoOpTracerProvider)


def instrument_outbound_http() -> None:
    """OpenTelemetry's own httpx instrumentation: a client span for every Bot Connector, model and
    peer call, and the ``traceparent`` header that lets the receiving peer continue the trace."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()

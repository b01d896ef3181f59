"""What the A2A side reports: Prometheus metrics and W3C trace context across the A2A hop.

The sender injects ``traceparent`` into the A2A request's headers; the receiver continues that
trace, so one trace covers Alice's turn and Bob's greeting. Both work with the OpenTelemetry API
alone: without an SDK tracer provider (tracing off) they cost next to nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

from a2a.client.client import ClientCallContext
from a2a.client.interceptors import AfterArgs, BeforeArgs, ClientCallInterceptor
from opentelemetry import propagate, trace
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

tracer = trace.get_tracer("a2a_bridge")

BREAKER_STATE_VALUE = {"closed": 0, "half_open": 1, "open": 2}


class A2AMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.handoffs_sent = Counter(
            "handoffs_sent",
            "Handoffs this bot sent, by peer and outcome",
            ["peer", "outcome"],
            registry=registry,
        )
        self.handoffs_received = Counter(
            "handoffs_received",
            "Handoffs this bot received, by sender and outcome",
            ["from_bot", "outcome"],
            registry=registry,
        )
        self.a2a_call_seconds = Histogram(
            "a2a_call_duration_seconds",
            "Duration of A2A calls to peers",
            ["peer", "result"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self._registry = registry

    def watch_breakers(self, states: Callable[[], dict[str, str]]) -> None:
        self._registry.register(_BreakerCollector(states))


class _BreakerCollector(Collector):
    def __init__(self, states: Callable[[], dict[str, str]]) -> None:
        self._states = states

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "peer_circuit_breaker_state",
            "Circuit breaker per peer: 0 closed, 1 half-open, 2 open",
            labels=["peer"],
        )
        for peer, state in self._states().items():
            family.add_metric([peer], BREAKER_STATE_VALUE.get(state, -1))
        yield family


class Stopwatch:
    def __init__(self) -> None:
        self._started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._started


class TraceContextInterceptor(ClientCallInterceptor):
    """Puts the current trace context (``traceparent``, ``tracestate``) on every A2A request."""

    async def before(self, args: BeforeArgs) -> None:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if not carrier:
            return
        if args.context is None:
            args.context = ClientCallContext()
        if args.context.service_parameters is None:
            args.context.service_parameters = {}
        args.context.service_parameters.update(carrier)

    async def after(self, args: AfterArgs) -> None:
        return None


Scope = MutableMapping[str, Any]


class TraceContextMiddleware:
    """Continues the caller's trace for requests to the A2A endpoint (a server span per request)."""

    def __init__(self, app: Callable[..., Any], *, path: str = "/a2a") -> None:
        self._app = app
        self._path = path

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path", "").rstrip("/") != self._path:
            await self._app(scope, receive, send)
            return
        carrier = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        with tracer.start_as_current_span(
            "a2a.receive", context=propagate.extract(carrier), kind=trace.SpanKind.SERVER
        ):
            await self._app(scope, receive, send)


def trace_ids() -> Iterator[tuple[str, str]]:
    """The current trace and span id as hex, if a span is recording."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        yield format(context.trace_id, "032x"), format(context.span_id, "016x")

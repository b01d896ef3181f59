"""What the A2A side reports: Prometheus metrics, and the tracer its spans come from.

Trace context crosses the A2A hop through OpenTelemetry's own httpx (sender) and ASGI (receiver)
instrumentation, installed by the process when tracing is on; nothing here handles headers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

tracer = trace.get_tracer("a2a_bridge")

BREAKER_STATE_VALUE = {"closed": 0, "half_open": 1, "open": 2}
OTHER_PEER = "other"


class A2AMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.handoffs_sent = Counter(
            "handoffs_sent",
            "Handoffs this bot sent, by peer, how they ended, and why",
            ["peer", "outcome", "reason"],
            registry=registry,
        )
        self.handoffs_received = Counter(
            "handoffs_received",
            "Handoffs this bot received, by sender and how they ended",
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
        self._known_peers: Callable[[], Iterable[str]] = lambda: ()

    def know_peers(self, names: Callable[[], Iterable[str]]) -> None:
        """The peers this bot is configured with: the only names a metric label may carry."""
        self._known_peers = names

    def peer_label(self, name: str) -> str:
        """``name`` if it is a configured peer's, else ``other``: a caller cannot mint label values."""
        return name if name in set(self._known_peers()) else OTHER_PEER

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

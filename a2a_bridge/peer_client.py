"""Peers: their cards, cached and refreshed, and sending a handoff to one of them.

Every peer shares the process's one pooled ``httpx.AsyncClient``. A card is fetched once and cached;
it is fetched again when it is older than ``max_age`` or when a call to that peer fails. A peer whose
card cannot be fetched is simply absent from ``available()`` (and so from the model's instructions
and the tool's enum) until a later refresh succeeds; nothing waits for peers at start-up. After a
failed fetch the next turn tries again at once (the peer may just have come up); further failures
back off (0.5 s, 1 s, 2 s... up to ``retry_after``) so a peer that stays down costs turns little.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from a2a.client import A2ACardResolver, A2AClientError, A2AClientTimeoutError, Client, ClientConfig
from a2a.client import create_client as create_a2a_client
from a2a.client.interceptors import ClientCallInterceptor
from a2a.helpers import get_data_parts, get_text_parts, new_data_part, new_text_part
from a2a.types import AgentCard, Message, Role, SendMessageRequest, StreamResponse
from a2a.utils.errors import A2AError
from a2a.utils.signing import SignatureVerificationError
from opentelemetry import trace
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from a2a_bridge.auth import PeerTokenInterceptor, TokenSigner
from a2a_bridge.breaker import BreakerState, CircuitBreaker
from a2a_bridge.card_signing import CardKeyError
from a2a_bridge.handoff import OUTCOME_KIND, HandoffMessage, HandoffOutcome, HandoffStatus
from a2a_bridge.log_context import bind_log_fields
from a2a_bridge.telemetry import A2AMetrics, Stopwatch, TraceContextInterceptor, tracer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeerProfile:
    """What the model is told about a peer, read off its live card."""

    name: str
    description: str
    skills: tuple[tuple[str, str], ...]
    base_url: str


@dataclass(frozen=True)
class PeerAnswer:
    ok: bool
    text: str


@dataclass
class _Peer:
    base_url: str
    card: AgentCard | None = None
    client: Client | None = None
    fetched_at: float = 0.0
    last_attempt_at: float | None = None
    failures: int = 0
    stale: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)

    def profile(self) -> PeerProfile | None:
        if self.card is None:
            return None
        return PeerProfile(
            name=self.card.name,
            description=self.card.description,
            skills=tuple((skill.name, skill.description) for skill in self.card.skills),
            base_url=self.base_url,
        )


class PeerDirectory:
    def __init__(
        self,
        base_urls: list[str],
        http: httpx.AsyncClient,
        *,
        self_name: str,
        signer: TokenSigner | None,
        card_max_age: float,
        retry_after: float,
        call_timeout: float,
        card_timeout: float = 3.0,
        card_verifier: Callable[[AgentCard], None] | None = None,
        attempts: int = 3,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 30.0,
        metrics: A2AMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._card_verifier = card_verifier
        self._attempts = attempts
        self._peers = [
            _Peer(
                base_url=url,
                breaker=CircuitBreaker(threshold=breaker_threshold, cooldown=breaker_cooldown, clock=clock),
            )
            for url in base_urls
        ]
        self._http = http
        self._self_name = self_name
        self._interceptors: list[ClientCallInterceptor] = [TraceContextInterceptor()]
        if signer is not None:
            self._interceptors.append(PeerTokenInterceptor(signer))
        self._card_max_age = card_max_age
        self._retry_after = retry_after
        self._call_timeout = call_timeout
        self._card_timeout = card_timeout
        self._clock = clock

    async def refresh(self) -> None:
        """Fetch every card that is missing or stale, concurrently; failures only log."""
        await asyncio.gather(*(self._refresh(peer) for peer in self._peers if self._due(peer)))

    def available(self) -> list[PeerProfile]:
        profiles = [peer.profile() for peer in self._peers]
        seen: set[str] = set()
        unique = []
        for profile in profiles:
            if profile is None or profile.name in seen or profile.name == self._self_name:
                continue
            seen.add(profile.name)
            unique.append(profile)
        return unique

    def breaker_states(self) -> dict[str, str]:
        return {_name(peer): peer.breaker.state.value for peer in self._peers}

    def freshness(self) -> list[dict[str, object]]:
        """Each configured peer: its name if known, and how old its card is (None: not fetched)."""
        now = self._clock()
        return [
            {
                "url": peer.base_url,
                "name": peer.card.name if peer.card else None,
                "card_age_s": round(now - peer.fetched_at, 1) if peer.card else None,
                "stale": peer.stale
                or (peer.card is not None and now - peer.fetched_at >= self._card_max_age),
                "breaker": peer.breaker.state.value,
            }
            for peer in self._peers
        ]

    async def ask(self, peer_name: str, question: str) -> PeerAnswer:
        """Consult a peer: a plain-text A2A message, answered by the peer's agent. Never raises."""
        peer = self._by_name(peer_name)
        if peer is None or peer.client is None or not peer.breaker.allow():
            return PeerAnswer(ok=False, text=f"{peer_name} is not reachable right now.")
        request = SendMessageRequest(
            message=Message(role=Role.ROLE_USER, message_id=uuid.uuid4().hex, parts=[new_text_part(question)])
        )
        with tracer.start_as_current_span(
            "a2a.ask_peer", kind=trace.SpanKind.CLIENT, attributes={"a2a.peer": peer_name}
        ):
            try:
                async with asyncio.timeout(self._call_timeout):
                    response = await self._send_with_retries(
                        peer.client, request, {"peer": peer_name}, attempts=self._attempts
                    )
            except (TimeoutError, A2AError) as error:
                if not isinstance(error, A2AError) or isinstance(error, A2AClientError):
                    peer.breaker.record_failure()
                    peer.stale = True
                logger.warning(
                    "a2a_ask_failure",
                    extra={"event": "a2a_ask_failure", "peer": peer_name, "reason": type(error).__name__},
                )
                return PeerAnswer(ok=False, text=f"{peer_name} could not be asked just now.")
        peer.breaker.record_success()
        message = response.message if response is not None and response.HasField("message") else None
        answer = " ".join(get_text_parts(list(message.parts))).strip() if message is not None else ""
        if not answer:
            return PeerAnswer(ok=False, text=f"{peer_name} gave no answer.")
        return PeerAnswer(ok=True, text=answer)

    async def send_handoff(self, peer_name: str, handoff: HandoffMessage) -> HandoffOutcome:
        watch = Stopwatch()
        with (
            bind_log_fields(handoff_id=handoff.handoff_id, a2a_message_id=handoff.a2a_message_id()),
            tracer.start_as_current_span(
                "a2a.send_handoff",
                kind=trace.SpanKind.CLIENT,
                attributes={"a2a.peer": peer_name, "handoff.id": handoff.handoff_id},
            ) as span,
        ):
            outcome = await self._send_handoff(peer_name, handoff)
            span.set_attribute("handoff.outcome", outcome.status.value)
        if self._metrics is not None:
            self._metrics.handoffs_sent.labels(peer_name, outcome.status.value).inc()
            self._metrics.a2a_call_seconds.labels(peer_name, outcome.status.value).observe(watch.seconds)
        return outcome

    async def _send_handoff(self, peer_name: str, handoff: HandoffMessage) -> HandoffOutcome:
        peer = self._by_name(peer_name)
        if peer is None or peer.client is None:
            return _failed(handoff, peer_name, f"{peer_name} is not reachable right now.")
        probing = peer.breaker.state is BreakerState.HALF_OPEN
        if not peer.breaker.allow():
            logger.warning(
                "a2a_send_failure",
                extra={
                    "event": "a2a_send_failure",
                    "peer": peer_name,
                    "handoff_id": handoff.handoff_id,
                    "reason": "circuit open",
                },
            )
            return _failed(
                handoff,
                peer_name,
                f"{peer_name} is not reachable right now (several recent "
                "attempts failed). Please try again in a minute.",
            )
        request = SendMessageRequest(
            message=Message(
                role=Role.ROLE_USER,
                message_id=handoff.a2a_message_id(),
                parts=[new_data_part(handoff.to_wire())],
            )
        )
        started = time.perf_counter()
        log = {"peer": peer_name, "handoff_id": handoff.handoff_id}
        logger.info("a2a_send_start", extra={"event": "a2a_send_start", **log})
        try:
            async with asyncio.timeout(self._call_timeout):
                response = await self._send_with_retries(
                    peer.client, request, log, attempts=1 if probing else self._attempts
                )
        except (TimeoutError, A2AClientTimeoutError):
            return self._transport_failure(
                peer, handoff, "timeout", started, f"{peer_name} took too long to answer."
            )
        except A2AClientError as error:
            status = _http_status(error)
            reason = f"transport ({status or type(error.__cause__).__name__})"
            if status in (401, 403):
                return self._transport_failure(
                    peer,
                    handoff,
                    reason,
                    started,
                    f"{peer_name} did not accept this bot's credentials; "
                    "an administrator needs to check the A2A settings of both bots.",
                )
            return self._transport_failure(
                peer, handoff, reason, started, f"{peer_name} is not reachable right now."
            )
        except A2AError as error:
            peer.breaker.record_success()  # the peer is up and answered; it refused this request
            logger.warning(
                "a2a_send_failure",
                extra={
                    "event": "a2a_send_failure",
                    **log,
                    "reason": f"{type(error).__name__}: {error.message}",
                    "duration_ms": _ms(started),
                },
            )
            return _failed(handoff, peer_name, f"{peer_name} could not accept the handoff.")
        peer.breaker.record_success()
        outcome = self._read_outcome(response, handoff, peer_name)
        logger.info(
            "a2a_send_complete",
            extra={
                "event": "a2a_send_complete",
                **log,
                "status": outcome.status.value,
                "duration_ms": _ms(started),
            },
        )
        return outcome

    async def _send_with_retries(
        self, client: Client, request: SendMessageRequest, log: dict[str, str], *, attempts: int
    ) -> StreamResponse | None:
        """Safe to repeat: the message id is derived from the handoff id and the receiver dedupes."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_transient_a2a),
            wait=wait_exponential_jitter(initial=0.2, max=2.0, jitter=0.2),
            stop=stop_after_attempt(attempts),
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    logger.info(
                        "a2a_send_retry",
                        extra={
                            "event": "a2a_send_retry",
                            **log,
                            "attempt": attempt.retry_state.attempt_number,
                        },
                    )
                async for response in client.send_message(request):
                    return response
                return None
        return None

    def _transport_failure(
        self, peer: _Peer, handoff: HandoffMessage, reason: str, started: float, user_reason: str
    ) -> HandoffOutcome:
        peer.stale = True
        peer.breaker.record_failure()
        logger.warning(
            "a2a_send_failure",
            extra={
                "event": "a2a_send_failure",
                "peer": _name(peer),
                "handoff_id": handoff.handoff_id,
                "reason": reason,
                "breaker": peer.breaker.state.value,
                "duration_ms": _ms(started),
            },
        )
        return _failed(handoff, _name(peer), user_reason)

    def _read_outcome(
        self, response: StreamResponse | None, handoff: HandoffMessage, peer_name: str
    ) -> HandoffOutcome:
        message = response.message if response is not None and response.HasField("message") else None
        if (
            message is None
            and response is not None
            and response.HasField("task")
            and response.task.status.HasField("message")
        ):
            message = response.task.status.message
        for data in get_data_parts(list(message.parts)) if message is not None else []:
            if isinstance(data, dict) and data.get("kind") == OUTCOME_KIND:
                try:
                    outcome = HandoffOutcome.model_validate(data)
                except ValidationError:
                    break
                if outcome.handoff_id == handoff.handoff_id:
                    return outcome.model_copy(update={"peer": peer_name})
        logger.warning(
            "a2a_send_failure",
            extra={
                "event": "a2a_send_failure",
                "peer": peer_name,
                "handoff_id": handoff.handoff_id,
                "reason": "answer carried no handoff outcome",
            },
        )
        return _failed(handoff, peer_name, f"{peer_name} gave an answer this bot could not understand.")

    def _by_name(self, name: str) -> _Peer | None:
        for peer in self._peers:
            if peer.card is not None and peer.card.name == name:
                return peer
        return None

    def _due(self, peer: _Peer) -> bool:
        now = self._clock()
        if peer.card is not None and not peer.stale and now - peer.fetched_at < self._card_max_age:
            return False
        if peer.card is None and peer.last_attempt_at is not None:
            backoff = 0.0 if peer.failures <= 1 else min(self._retry_after, 0.5 * 2 ** (peer.failures - 2))
            return now - peer.last_attempt_at >= backoff
        return True

    async def _refresh(self, peer: _Peer) -> None:
        if peer.lock.locked():
            return
        async with peer.lock:
            peer.last_attempt_at = self._clock()
            resolver = A2ACardResolver(self._http, peer.base_url)
            try:
                async with asyncio.timeout(self._card_timeout):
                    card = await resolver.get_agent_card(signature_verifier=self._card_verifier)
                client = await create_a2a_client(
                    card,
                    client_config=ClientConfig(streaming=False, httpx_client=self._http),
                    interceptors=list(self._interceptors),
                )
            except (
                TimeoutError,
                A2AError,
                httpx.HTTPError,
                ValueError,
                SignatureVerificationError,
                CardKeyError,
            ) as error:
                logger.warning(
                    "peer_card_unavailable",
                    extra={
                        "event": "peer_card_unavailable",
                        "peer_url": peer.base_url,
                        "reason": type(error).__name__,
                    },
                )
                peer.card, peer.client = None, None
                peer.failures += 1
                return
            is_new = peer.card is None or peer.card.name != card.name
            peer.card, peer.client = card, client
            peer.fetched_at, peer.stale, peer.failures = self._clock(), False, 0
            if is_new:
                logger.info(
                    "peer_card_resolved",
                    extra={"event": "peer_card_resolved", "peer": card.name, "peer_url": peer.base_url},
                )


def _failed(handoff: HandoffMessage, peer: str, reason: str) -> HandoffOutcome:
    return HandoffOutcome(
        handoff_id=handoff.handoff_id, status=HandoffStatus.FAILED, peer=peer, reason=reason
    )


def _transient_a2a(error: BaseException) -> bool:
    if not isinstance(error, A2AClientError) or isinstance(error, A2AClientTimeoutError):
        return False
    status = _http_status(error)
    if status is not None:
        return status in (429, 502, 503, 504)
    return isinstance(error.__cause__, httpx.ConnectError | httpx.RemoteProtocolError)


def _name(peer: _Peer) -> str:
    return peer.card.name if peer.card is not None else peer.base_url


def _http_status(error: BaseException) -> int | None:
    cause = error.__cause__
    if isinstance(cause, httpx.HTTPStatusError):
        return cause.response.status_code
    return None


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)

"""Calling a peer: one path for every A2A call, and a typed result for every way it can end.

``_call`` owns the timeout, the retries, the circuit breaker (a guard records an outcome on every
exit, errors nobody expected included), the metric and the log lines. ``send_handoff`` and ``ask``
only build the request and read the answer. Nothing here raises to the caller.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import httpx
import structlog
from a2a.client import A2AClientError, A2AClientTimeoutError, Client
from a2a.helpers import get_text_parts, new_data_part, new_text_part
from a2a.types import (
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    TaskPushNotificationConfig,
)
from a2a.utils.errors import A2AError
from opentelemetry import trace
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from a2a_bridge.answers import (
    REASON_OF_FAILURE,
    CallFailure,
    FailureKind,
    InProgress,
    failed_outcome,
    failure_reason,
    outcome_from_answer,
)
from a2a_bridge.breaker import BreakerState, CircuitBreaker
from a2a_bridge.card_cache import PeerCards, PeerProfile
from a2a_bridge.handoff import HandoffMessage, HandoffOutcome, HandoffStatus, ReasonCode
from a2a_bridge.push import PushTarget
from a2a_bridge.telemetry import A2AMetrics, Stopwatch, tracer

log = structlog.get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class CallPolicy:
    timeout: float = 30.0
    attempts: int = 3
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0


@dataclass(frozen=True)
class PeerAnswer:
    ok: bool
    text: str


class PeerClient:
    def __init__(
        self,
        cards: PeerCards,
        *,
        policy: CallPolicy,
        metrics: A2AMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cards = cards
        self._policy = policy
        self._metrics = metrics
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    # The card cache, for the agent's instructions and readiness ----------------------------------

    async def refresh(self, *, wait_for_old: bool = True) -> None:
        await self.cards.refresh(wait_for_old=wait_for_old)

    def available(self) -> list[PeerProfile]:
        return self.cards.available()

    def breaker_states(self) -> dict[str, str]:
        return {peer.name: self._breaker(peer.name).state.value for peer in self.cards.configured}

    def freshness(self) -> list[dict[str, object]]:
        """Each configured peer: its name if known, how old its card is, and its breaker."""
        return [
            {
                "url": peer.base_url,
                "name": peer.card.name if peer.card else None,
                "card_age_s": self.cards.card_age(peer),
                "stale": peer.card is not None and not self.cards.is_fresh(peer),
                "breaker": self._breaker(peer.name).state.value,
            }
            for peer in self.cards.configured
        ]

    # The two calls ----------------------------------------------------------------------------------

    def urls_of(self, peer_name: str) -> list[str]:
        """Where ``peer_name`` lives: its configured URL and its card's interface URLs."""
        peer = self.cards.find(peer_name)
        if peer is None or peer.card is None:
            return []
        return [peer.base_url, *(interface.url for interface in peer.card.supported_interfaces)]

    def takes_push(self, peer_name: str) -> bool:
        """Whether the peer's card says it can tell this bot when a task ends."""
        peer = self.cards.find(peer_name)
        return peer is not None and peer.card is not None and peer.card.capabilities.push_notifications

    async def send_handoff(
        self, peer_name: str, handoff: HandoffMessage, push: PushTarget | None = None
    ) -> HandoffOutcome | InProgress:
        """Send ``handoff``. With ``push`` the peer is asked to answer at once with a task and to
        post its end to ``push.url``; without, the answer is the outcome (peers that answer
        synchronously) or a task to poll."""
        request = _request(handoff.a2a_message_id(), [new_data_part(handoff.to_wire())])
        if push is not None:
            request.configuration.CopyFrom(
                SendMessageConfiguration(
                    return_immediately=True,
                    task_push_notification_config=TaskPushNotificationConfig(
                        id=handoff.handoff_id, url=push.url, token=push.token
                    ),
                )
            )
        with structlog.contextvars.bound_contextvars(
            handoff_id=handoff.handoff_id, a2a_message_id=handoff.a2a_message_id()
        ):
            result = await self._call(
                peer_name,
                request,
                _handoff_reader(handoff, peer_name),
                operation="send",
                span_name="a2a.send_handoff",
                attributes={"handoff.id": handoff.handoff_id},
                answer_attribute="handoff.outcome",
            )
        if isinstance(result, CallFailure):
            if result.kind is FailureKind.TIMEOUT:
                # The peer may have taken it and be greeting the user right now: not a failure.
                return HandoffOutcome(
                    handoff_id=handoff.handoff_id,
                    status=HandoffStatus.UNCONFIRMED,
                    peer=peer_name,
                    reason=failure_reason(peer_name, result),
                    reason_code=ReasonCode.PEER_TIMEOUT,
                )
            return failed_outcome(
                handoff, peer_name, failure_reason(peer_name, result), REASON_OF_FAILURE[result.kind]
            )
        return result

    async def task_state(
        self, peer_name: str, task_id: str, handoff: HandoffMessage
    ) -> HandoffOutcome | InProgress | CallFailure:
        """Where the peer's task for ``handoff`` stands (``GetTask``): for when no push arrives."""
        with structlog.contextvars.bound_contextvars(handoff_id=handoff.handoff_id, a2a_task_id=task_id):
            return await self._call(
                peer_name,
                GetTaskRequest(id=task_id),
                _handoff_reader(handoff, peer_name),
                operation="get_task",
                span_name="a2a.get_task",
                attributes={"handoff.id": handoff.handoff_id},
                answer_attribute="handoff.outcome",
                attempts=1,
                guarded=False,
            )

    async def ask(self, peer_name: str, question: str) -> PeerAnswer:
        """Consult a peer: a plain-text A2A message, answered by the peer's agent."""
        request = _request(uuid.uuid4().hex, [new_text_part(question)])
        result = await self._call(peer_name, request, _answer_text, operation="ask", span_name="a2a.ask_peer")
        if isinstance(result, CallFailure):
            if result.kind in (FailureKind.UNAVAILABLE, FailureKind.CIRCUIT_OPEN):
                return PeerAnswer(ok=False, text=f"{peer_name} is not reachable right now.")
            return PeerAnswer(ok=False, text=f"{peer_name} could not be asked just now.")
        if not result:
            return PeerAnswer(ok=False, text=f"{peer_name} gave no answer.")
        return PeerAnswer(ok=True, text=result)

    # The one call path ------------------------------------------------------------------------------

    async def _call(
        self,
        peer_name: str,
        request: SendMessageRequest | GetTaskRequest,
        read: Callable[[StreamResponse | None], tuple[T, str]],
        *,
        operation: str,
        span_name: str,
        attributes: dict[str, str] | None = None,
        answer_attribute: str = "a2a.answer",
        attempts: int | None = None,
        guarded: bool = True,
    ) -> T | CallFailure:
        """Send ``request``; ``read`` turns the answer into the caller's value and a status word
        (logged with ``a2a_<operation>_complete`` and set on the span). An unguarded call (reading
        a task the peer already took) neither waits on the peer's circuit breaker nor trips it:
        polling a peer that is restarting must not keep new handoffs from it once it is back."""
        peer = self.cards.find(peer_name)
        if peer is None or peer.client is None:
            return CallFailure(FailureKind.UNAVAILABLE, "no card")
        breaker = self._breaker(peer_name)
        probing = guarded and breaker.state is BreakerState.HALF_OPEN
        if guarded and not breaker.allow():
            log.warning(f"a2a_{operation}_failure", peer=peer_name, reason="circuit open")
            return CallFailure(FailureKind.CIRCUIT_OPEN, "circuit open")
        watch = Stopwatch()
        log.info(f"a2a_{operation}_start", peer=peer_name)
        with (
            tracer.start_as_current_span(
                span_name,
                kind=trace.SpanKind.CLIENT,
                attributes={"a2a.peer": peer_name, **(attributes or {})},
            ) as span,
            breaker.guard(records=guarded) as guard,
        ):
            failure: CallFailure | None = None
            response: StreamResponse | None = None
            try:
                async with asyncio.timeout(self._policy.timeout):
                    response = await self._send_with_retries(
                        peer.client,
                        request,
                        peer_name,
                        operation,
                        attempts=1 if probing else (attempts or self._policy.attempts),
                    )
            except (TimeoutError, A2AClientTimeoutError):
                failure = CallFailure(FailureKind.TIMEOUT, "timeout")
            except A2AClientError as error:
                status = _http_status(error)
                kind = FailureKind.UNAUTHORIZED if status in (401, 403) else FailureKind.UNREACHABLE
                failure = CallFailure(kind, f"transport ({status or type(error.__cause__).__name__})")
            except A2AError as error:
                guard.succeeded()  # the peer is up and answered; it refused this request
                failure = CallFailure(FailureKind.REFUSED, f"{type(error).__name__}: {error.message}")
            except Exception as error:  # an SDK or a peer we did not foresee: a failure, never a crash
                log.exception(f"a2a_{operation}_unexpected", peer=peer_name)
                failure = CallFailure(FailureKind.UNEXPECTED, type(error).__name__)
            if failure is None:
                guard.succeeded()
                value, answer = read(response)
                span.set_attribute(answer_attribute, answer)
            else:
                guard.failed()  # a no-op after a refusal: the guard already recorded the peer as up
                if failure.kind is not FailureKind.REFUSED:
                    peer.stale = True
            result = failure.kind.value if failure else "ok"
            span.set_attribute("a2a.result", result)
        duration_ms = round(watch.seconds * 1000)
        if self._metrics is not None:
            self._metrics.a2a_call_seconds.labels(peer_name, result).observe(watch.seconds)
        if failure is not None:
            log.warning(
                f"a2a_{operation}_failure",
                peer=peer_name,
                reason=failure.detail,
                breaker=breaker.state.value,
                duration_ms=duration_ms,
            )
            return failure
        log.info(f"a2a_{operation}_complete", peer=peer_name, status=answer, duration_ms=duration_ms)
        return value

    async def _send_with_retries(
        self,
        client: Client,
        request: SendMessageRequest | GetTaskRequest,
        peer: str,
        operation: str,
        *,
        attempts: int,
    ) -> StreamResponse | None:
        """Safe to repeat: a handoff's message id is derived from its id and the receiver dedupes;
        reading a task changes nothing."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_transient_a2a),
            wait=wait_exponential_jitter(initial=0.2, max=2.0, jitter=0.2),
            stop=stop_after_attempt(attempts),
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    log.info(f"a2a_{operation}_retry", peer=peer, attempt=attempt.retry_state.attempt_number)
                if isinstance(request, GetTaskRequest):
                    return StreamResponse(task=await client.get_task(request))
                async for response in client.send_message(request):
                    return response
                return None
        return None

    def _breaker(self, peer_name: str) -> CircuitBreaker:
        breaker = self._breakers.get(peer_name)
        if breaker is None:
            breaker = self._breakers[peer_name] = CircuitBreaker(
                threshold=self._policy.breaker_threshold,
                cooldown=self._policy.breaker_cooldown,
                clock=self._clock,
            )
        return breaker


def _handoff_reader(
    handoff: HandoffMessage, peer_name: str
) -> Callable[[StreamResponse | None], tuple[HandoffOutcome | InProgress, str]]:
    """Reads a peer's answer (to a send, or to GetTask) about ``handoff``, with its status word."""

    def read(response: StreamResponse | None) -> tuple[HandoffOutcome | InProgress, str]:
        answer = outcome_from_answer(response, handoff, peer_name)
        return answer, "working" if isinstance(answer, InProgress) else answer.status.value

    return read


def _answer_text(response: StreamResponse | None) -> tuple[str, str]:
    message = response.message if response is not None and response.HasField("message") else None
    text = " ".join(get_text_parts(list(message.parts))).strip() if message is not None else ""
    return text, "answered" if text else "empty"


def _request(message_id: str, parts: Sequence[Part]) -> SendMessageRequest:
    return SendMessageRequest(message=Message(role=Role.ROLE_USER, message_id=message_id, parts=list(parts)))


def _transient_a2a(error: BaseException) -> bool:
    if not isinstance(error, A2AClientError) or isinstance(error, A2AClientTimeoutError):
        return False
    status = _http_status(error)
    if status is not None:
        return status in (429, 502, 503, 504)
    return isinstance(error.__cause__, httpx.ConnectError | httpx.RemoteProtocolError)


def _http_status(error: BaseException) -> int | None:
    cause = error.__cause__
    if isinstance(cause, httpx.HTTPStatusError):
        return cause.response.status_code
    return None

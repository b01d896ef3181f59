"""The receiving side of a handoff: validate it, let the bot greet the user, answer with the outcome.

The executor answers every well-formed handoff with exactly one A2A ``Message`` that carries a
``handoffOutcome`` data part (and a text part for humans reading logs). A payload that is not a
valid handoff gets JSON-RPC -32602 naming the field. A valid handoff that policy refuses (hop limit,
service URL or tenant not allowed) gets a ``rejected`` outcome with the reason, and no outbound call.
A handoff id seen before gets the first outcome again: a retried send greets nobody twice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Protocol

import structlog
from a2a.helpers import new_data_part, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.types import Message, Role
from a2a.utils.errors import InvalidParamsError, UnsupportedOperationError

from a2a_bridge.handoff import HandoffMessage, HandoffOutcome, HandoffStatus, Question, request_from_message
from a2a_bridge.policy import HandoffPolicy
from a2a_bridge.telemetry import A2AMetrics, tracer

log = structlog.get_logger(__name__)


class GreetingDelivery(Protocol):
    """What the bot does for a handoff: open a 1:1 with the user, run its agent, send the greeting.

    It returns an outcome rather than raising: a failure's ``reason`` is shown to the user.
    """

    async def deliver(self, handoff: HandoffMessage) -> HandoffOutcome: ...


class HandoffLedger(Protocol):
    """Durable memory of handoffs received, so a retried send returns the first outcome."""

    async def claim(self, handoff: HandoffMessage) -> HandoffOutcome | None:
        """None when the caller now owns the handoff; else the outcome it already had."""
        ...

    async def record_outcome(self, handoff: HandoffMessage, outcome: HandoffOutcome) -> None: ...


class PeerConsultant(Protocol):
    """What the bot does for a question from a peer: answer it with its agent, once."""

    async def answer(self, question: str, *, asker: str | None) -> str: ...


class HandoffAgentExecutor(AgentExecutor):
    def __init__(
        self,
        *,
        policy: HandoffPolicy,
        delivery: GreetingDelivery,
        ledger: HandoffLedger,
        consultant: PeerConsultant | None = None,
        metrics: A2AMetrics | None = None,
    ) -> None:
        self._consultant = consultant
        self._metrics = metrics
        self._policy = policy
        self._delivery = delivery
        self._ledger = ledger
        self._in_flight: dict[str, asyncio.Future[HandoffOutcome]] = {}

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        caller = context.call_context.user
        request = request_from_message(context.message, caller.user_name if caller.is_authenticated else None)
        if isinstance(request, Question):
            await self._consult(request, context, event_queue)
            return
        handoff = request
        with (
            structlog.contextvars.bound_contextvars(
                handoff_id=handoff.handoff_id,
                **{
                    key: value
                    for key, value in (
                        ("a2a_task_id", context.task_id),
                        ("a2a_message_id", context.message.message_id if context.message else None),
                    )
                    if value
                },
            ),
            tracer.start_as_current_span(
                "handoff.receive",
                attributes={"handoff.id": handoff.handoff_id, "handoff.from": handoff.from_},
            ),
        ):
            await self._execute(handoff, context, event_queue)

    async def _execute(
        self, handoff: HandoffMessage, context: RequestContext, event_queue: EventQueue
    ) -> None:
        caller = context.call_context.user
        if caller.is_authenticated and caller.user_name != handoff.from_:
            log.warning(
                "handoff_rejected",
                handoff_id=handoff.handoff_id,
                reason="from does not match the authenticated caller",
            )
            raise InvalidParamsError(message="invalid handoff: from: does not match the authenticated caller")
        outcome = await self._outcome_once(handoff)
        await event_queue.enqueue_event(_outcome_message(outcome, context))

    async def _consult(self, question: Question, context: RequestContext, event_queue: EventQueue) -> None:
        if self._consultant is None:
            raise UnsupportedOperationError(message="this agent does not answer questions")
        caller = context.call_context.user
        asker = caller.user_name if caller.is_authenticated else None
        with tracer.start_as_current_span("consultation.answer"):
            log.info("consultation_received", asker=asker)
            try:
                answer = await self._consultant.answer(question.text, asker=asker)
            except Exception:
                log.exception("consultation_failure")
                answer = f"{self._policy.receiver_name} could not answer just now; please try again later."
        await event_queue.enqueue_event(
            Message(
                role=Role.ROLE_AGENT,
                message_id=str(uuid.uuid4()),
                context_id=context.context_id or "",
                parts=[new_text_part(answer)],
            )
        )

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise UnsupportedOperationError(message="a handoff cannot be cancelled")

    async def _outcome_once(self, handoff: HandoffMessage) -> HandoffOutcome:
        pending = self._in_flight.get(handoff.handoff_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[HandoffOutcome] = asyncio.get_running_loop().create_future()
        self._in_flight[handoff.handoff_id] = future
        try:
            outcome = await self._decide(handoff)
            future.set_result(outcome)
            return outcome
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: a waiter may not exist
            raise
        finally:
            del self._in_flight[handoff.handoff_id]

    async def _decide(self, handoff: HandoffMessage) -> HandoffOutcome:
        earlier = await self._ledger.claim(handoff)
        if earlier is not None:
            log.info("handoff_duplicate", handoff_id=handoff.handoff_id, status=earlier.status.value)
            return earlier
        log.info("handoff_received", handoff_id=handoff.handoff_id, from_bot=handoff.from_, hops=handoff.hops)
        refusal = self._policy.refusal(handoff)
        if refusal is not None:
            log.warning("handoff_rejected", handoff_id=handoff.handoff_id, reason=refusal)
            outcome = HandoffOutcome(
                handoff_id=handoff.handoff_id,
                status=HandoffStatus.REJECTED,
                peer=self._policy.receiver_name,
                reason=refusal,
            )
        else:
            started = time.perf_counter()
            name = self._policy.receiver_name
            try:
                outcome = await self._delivery.deliver(handoff)
            except Exception:
                log.exception("greeting_failure", handoff_id=handoff.handoff_id)
                outcome = HandoffOutcome(
                    handoff_id=handoff.handoff_id,
                    status=HandoffStatus.FAILED,
                    peer=self._policy.receiver_name,
                    reason=f"{name} ran into an internal problem; please try again later.",
                )
            log.info(
                "handoff_done",
                handoff_id=handoff.handoff_id,
                status=outcome.status.value,
                duration_ms=round((time.perf_counter() - started) * 1000),
            )
        await self._ledger.record_outcome(handoff, outcome)
        if self._metrics is not None:
            self._metrics.handoffs_received.labels(handoff.from_, outcome.status.value).inc()
        return outcome


def _outcome_message(outcome: HandoffOutcome, context: RequestContext) -> Message:
    if outcome.delivered:
        text = f"{outcome.peer} has greeted the user in a 1:1 chat."
    else:
        text = f"Handoff {outcome.status.value}: {outcome.reason}"
    return Message(
        role=Role.ROLE_AGENT,
        message_id=str(uuid.uuid4()),
        context_id=context.context_id or "",
        parts=[new_data_part(outcome.to_wire()), new_text_part(text)],
    )

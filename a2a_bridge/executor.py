"""The receiving side of a handoff: validate it, accept it as a task, let a job greet the user.

A payload that is not a valid handoff gets JSON-RPC -32602 naming the field (before any task
exists). A valid handoff that policy refuses (hop limit, service URL or tenant not allowed) gets one
``Message`` with a ``rejected`` outcome and its reason code, no task and no outbound call. An
accepted handoff is answered at once with a Task in state ``working``; the job (``jobs.py``) opens
the chat, greets, and ends the task. A caller that asked to wait (``returnImmediately`` false, as
0.3 clients and the sample do) gets the ended task instead. A handoff seen before gets its task as
it stands: a retried send greets nobody twice.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Protocol

import structlog
from a2a.helpers import new_data_part, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.types import Message, Role, TaskStatusUpdateEvent
from a2a.utils.errors import InvalidParamsError, UnsupportedOperationError

from a2a_bridge.handoff import (
    HandoffMessage,
    HandoffOutcome,
    HandoffStatus,
    Question,
    ReasonCode,
    request_from_message,
)
from a2a_bridge.jobs import Claimed, Finished, HandoffJob, HandoffJobs, HandoffLedger
from a2a_bridge.policy import HandoffPolicy
from a2a_bridge.tasks import final_status, outcome_text, task_of, working_status
from a2a_bridge.telemetry import A2AMetrics, tracer

log = structlog.get_logger(__name__)


class PeerConsultant(Protocol):
    """What the bot does for a question from a peer: answer it with its agent, once."""

    async def answer(self, question: str, *, asker: str | None) -> str: ...


class HandoffAgentExecutor(AgentExecutor):
    def __init__(
        self,
        *,
        policy: HandoffPolicy,
        jobs: HandoffJobs,
        ledger: HandoffLedger,
        consultant: PeerConsultant | None = None,
        metrics: A2AMetrics | None = None,
    ) -> None:
        self._consultant = consultant
        self._metrics = metrics
        self._policy = policy
        self._jobs = jobs
        self._ledger = ledger

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
            log.warning("handoff_rejected", reason="from does not match the authenticated caller")
            raise InvalidParamsError(message="invalid handoff: from: does not match the authenticated caller")
        refusal = self._policy.refusal(handoff)
        if refusal is not None:
            log.warning("handoff_rejected", reason=refusal)
            outcome = HandoffOutcome(
                handoff_id=handoff.handoff_id,
                status=HandoffStatus.REJECTED,
                peer=self._policy.receiver_name,
                reason=refusal,
                reason_code=ReasonCode.POLICY_REJECTED,
            )
            if self._metrics is not None:
                self._metrics.handoffs_received.labels(handoff.from_, outcome.status.value).inc()
            await event_queue.enqueue_event(_outcome_message(outcome, context))
            return
        job = HandoffJob(
            handoff=handoff,
            caller=caller.user_name if caller.is_authenticated else "",
            task_id=context.task_id or "",
            context_id=context.context_id or "",
        )
        claim = await self._ledger.claim(job)
        if isinstance(claim, Finished):
            log.info("handoff_duplicate", status=claim.outcome.status.value)
            await event_queue.enqueue_event(
                task_of(job.ref, final_status(claim.outcome, job.task_id, job.context_id), context.message)
            )
            return
        receiver = self._policy.receiver_name
        if isinstance(claim, Claimed):
            log.info("handoff_received", from_bot=handoff.from_, hops=handoff.hops)
            running: asyncio.Task[HandoffOutcome] | None = self._jobs.start(job)
        else:
            log.info("handoff_duplicate", status="working")
            running = None
        await event_queue.enqueue_event(
            task_of(job.ref, working_status(receiver, job.task_id, job.context_id), context.message)
        )
        configuration = context.configuration
        if running is not None and not (configuration is not None and configuration.return_immediately):
            outcome = await asyncio.shield(running)
            await event_queue.enqueue_event(
                TaskStatusUpdateEvent(
                    task_id=job.task_id,
                    context_id=job.context_id,
                    status=final_status(outcome, job.task_id, job.context_id),
                )
            )

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


def _outcome_message(outcome: HandoffOutcome, context: RequestContext) -> Message:
    return Message(
        role=Role.ROLE_AGENT,
        message_id=str(uuid.uuid4()),
        context_id=context.context_id or "",
        parts=[new_data_part(outcome.to_wire()), new_text_part(outcome_text(outcome))],
    )

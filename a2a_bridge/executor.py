"""What a2a-sdk's own path runs: questions from peers, and handoffs that name an existing task.

A new handoff never gets here: the request handler (``server.py``) admits it, starts its job and
answers it itself. A handoff message that names a task (a peer continuing one) takes the SDK's
path: it is admitted here the same way and, when it claims the handoff, answered with a Task in
state ``working`` while the job (``jobs.py``) opens the chat, greets, and ends the task. A caller
that asked to wait (``returnImmediately`` false, as 0.3 clients and the sample do) gets the ended
task instead. Questions from peers (text only) are answered by the bot's agent.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Protocol

import structlog
from a2a.helpers import new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.types import Message, Role, TaskStatusUpdateEvent
from a2a.utils.errors import UnsupportedOperationError

from a2a_bridge.admission import Admission, HandoffAdmission, Refused
from a2a_bridge.handoff import Question, request_from_message
from a2a_bridge.jobs import Claimed, Finished, HandoffJob, HandoffJobs
from a2a_bridge.tasks import ended_task, final_status, outcome_message, working_task
from a2a_bridge.telemetry import tracer

log = structlog.get_logger(__name__)


class PeerConsultant(Protocol):
    """What the bot does for a question from a peer: answer it with its agent, once."""

    async def answer(self, question: str, *, asker: str | None) -> str: ...


class HandoffAgentExecutor(AgentExecutor):
    def __init__(
        self,
        *,
        admission: HandoffAdmission,
        jobs: HandoffJobs,
        consultant: PeerConsultant | None = None,
    ) -> None:
        self._consultant = consultant
        self._admission = admission
        self._jobs = jobs

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        caller = context.call_context.user
        request = request_from_message(context.message, caller.user_name if caller.is_authenticated else None)
        if isinstance(request, Question):
            await self._consult(request, context, event_queue)
            return
        job = HandoffJob(
            handoff=request,
            caller=caller.user_name if caller.is_authenticated else "",
            task_id=context.task_id or "",
            context_id=context.context_id or "",
        )
        verdict = await self._admission.admit(job, authenticated=caller.is_authenticated)
        await self._carry_out(job, verdict, context, event_queue)

    async def _carry_out(
        self, job: HandoffJob, verdict: Admission, context: RequestContext, event_queue: EventQueue
    ) -> None:
        if isinstance(verdict, Refused):
            await event_queue.enqueue_event(outcome_message(verdict.outcome, job.context_id))
            return
        if isinstance(verdict, Finished):
            await event_queue.enqueue_event(ended_task(verdict.outcome, job.ref, context.message))
            return
        running = self._jobs.start(job) if isinstance(verdict, Claimed) else None
        await event_queue.enqueue_event(working_task(self._admission.receiver, job.ref, context.message))
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
                answer = f"{self._admission.receiver} could not answer just now; please try again later."
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

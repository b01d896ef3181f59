"""The A2A surface as one sub-app: JSON-RPC at ``/a2a`` (and ``/a2a/``), behind its own door.

The sub-app carries everything that is A2A's alone: trace propagation (when tracing is on), the
body cap, peer authentication and the per-caller rate limit, in that order, in front of a2a-sdk's
JSON-RPC route. The card is public: at the root well-known path as the spec says, and again under
``/a2a`` where clients built on Microsoft's sample look for it; each client gets it in the shape of
the protocol version it asks for (``card_route``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from a2a.server.agent_execution import AgentExecutor
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import DefaultServerCallContextBuilder, create_jsonrpc_routes
from a2a.server.tasks import PushNotificationConfigStore
from a2a.types import AgentCard, Message, SendMessageRequest, Task
from a2a.utils.task import apply_history_length, validate_history_length
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute

from a2a_bridge.admission import HandoffAdmission, Refused
from a2a_bridge.asgi import ExactMount
from a2a_bridge.auth import PeerAuthMiddleware, SeenTokens, TokenVerifier
from a2a_bridge.card_route import card_route
from a2a_bridge.error_answers import OwnWordsForErrors
from a2a_bridge.handoff import HandoffMessage, request_from_message
from a2a_bridge.jobs import Busy, Finished, HandoffJob, HandoffJobs
from a2a_bridge.limits import A2ABodyLimit, CallerRateLimit, RateLimiter
from a2a_bridge.push import PushTarget
from a2a_bridge.push_inbox import PushReceiver, push_route
from a2a_bridge.tasks import HandoffTaskStore, ended_task, outcome_message, task_id_for, working_task
from a2a_bridge.telemetry import tracer

A2A_PATH = "/a2a"
log = structlog.get_logger(__name__)

CARD_CACHE_CONTROL = "public, max-age=300"


@dataclass(frozen=True)
class A2ADoor:
    """What stands in front of the JSON-RPC route."""

    max_body_bytes: int
    verifier: TokenVerifier | None
    limiter: RateLimiter
    seen_tokens: SeenTokens | None = None
    """Where used peer-token ids are remembered: the shared database for replicas; None: this process."""
    trace_requests: bool = False
    """Continue callers' traces (OpenTelemetry's ASGI instrumentation); on when tracing is."""


class CredentialFreeContextBuilder(DefaultServerCallContextBuilder):
    """The SDK keeps the request headers in the call context and logs that context at DEBUG;
    the caller's bearer token must not travel with it."""

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        headers = context.state.get("headers")
        if isinstance(headers, dict):
            context.state["headers"] = {
                name: value
                for name, value in headers.items()
                if name.lower() not in ("authorization", "cookie")
            }
        return context


class HandoffRequestHandler(DefaultRequestHandler):
    """Admits a handoff (``admission.py``) and answers it, before a2a-sdk does any work for it.

    A refused handoff, and a repeat of one already claimed, are answered with how it stands; one
    this request has just claimed gets its job started and is answered with its ``working`` task,
    written first so that ``GetTask`` finds it (or, for a caller that waits, as 0.3 clients and the
    sample do, with the ended task). The SDK's task machinery (an active task, its event queue and
    consumer, and their reads of the task) would add nothing to that but CPU: the job writes the
    ended task itself. A handoff's task id derives from the caller and the handoff id, so a retried
    send is answered with that task as it stands and starts nothing. The push target the caller
    names is kept with the claim; the SDK's copy (for the A2A push-configuration methods) is written
    after the job has started. Everything else (questions, messages to an existing task) takes the
    SDK's own path to the executor."""

    def __init__(
        self,
        *,
        agent_executor: AgentExecutor,
        admission: HandoffAdmission,
        jobs: HandoffJobs,
        handoff_tasks: HandoffTaskStore,
        **kwargs: Any,
    ) -> None:
        super().__init__(agent_executor=agent_executor, task_store=handoff_tasks, **kwargs)
        self._admission = admission
        self._jobs = jobs
        self._handoff_tasks = handoff_tasks

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Message | Task:
        caller = context.user
        name = caller.user_name if caller.is_authenticated else ""
        request = request_from_message(params.message, name or None)
        if not isinstance(request, HandoffMessage) or params.message.task_id:
            return await super().on_message_send(params, context)
        validate_history_length(params.configuration)
        task_id = task_id_for(name, request.handoff_id)
        job = HandoffJob(
            handoff=request,
            caller=name,
            task_id=task_id,
            context_id=params.message.context_id or task_id,
            push=_push_target(params),
        )
        with (
            structlog.contextvars.bound_contextvars(
                handoff_id=request.handoff_id, a2a_task_id=task_id, a2a_message_id=params.message.message_id
            ),
            tracer.start_as_current_span(
                "handoff.receive",
                attributes={"handoff.id": request.handoff_id, "handoff.from": request.from_},
            ),
        ):
            verdict = await self._admission.admit(job, authenticated=caller.is_authenticated)
            if isinstance(verdict, Refused):
                return outcome_message(verdict.outcome, job.context_id)
            if isinstance(verdict, Finished):
                log.info("handoff_duplicate", status=verdict.outcome.status.value)
                return ended_task(verdict.outcome, job.ref, params.message)
            if isinstance(verdict, Busy):
                log.info("handoff_duplicate", status="working")
                running = self._jobs.running(job.task_id)
                if running is not None and not params.configuration.return_immediately:
                    # A caller that waits gets the end, as the first request's caller does.
                    return ended_task(await asyncio.shield(running), job.ref, params.message)
                return working_task(self._admission.receiver, job.ref, params.message)
            log.info("handoff_received", from_bot=request.from_, hops=request.hops)
            running = self._jobs.start(job)
            working = working_task(self._admission.receiver, job.ref, params.message)
            # The ended task, if the job writes it first, is kept: the store never leaves an ended state.
            try:
                await self._handoff_tasks.save(working, context)
            except Exception:
                # The job holds the claim and will write the ended task; an error answer now would
                # have the caller tell the user it failed while the greeting goes out.
                log.exception("handoff_task_not_saved")
            if job.push is not None and self._push_config_store is not None:
                await self._keep_push_config(task_id, params, context)
            if params.configuration.return_immediately:
                return apply_history_length(working, params.configuration)
            ended = ended_task(await asyncio.shield(running), job.ref, params.message)
            return apply_history_length(ended, params.configuration)

    async def _keep_push_config(
        self, task_id: str, params: SendMessageRequest, context: ServerCallContext
    ) -> None:
        assert self._push_config_store is not None
        try:
            await self._push_config_store.set_info(
                task_id, params.configuration.task_push_notification_config, context
            )
        except Exception:  # the job pushes to the target kept with the claim regardless
            log.exception("push_config_not_kept")


def _push_target(params: SendMessageRequest) -> PushTarget | None:
    if not params.configuration.HasField("task_push_notification_config"):
        return None
    config = params.configuration.task_push_notification_config
    return PushTarget(url=config.url, token=config.token) if config.url else None


def _receive_span(scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "a2a.receive", {}


def a2a_routes(
    *,
    card: Callable[[], AgentCard],
    executor: AgentExecutor,
    admission: HandoffAdmission,
    jobs: HandoffJobs,
    door: A2ADoor,
    task_store: HandoffTaskStore,
    push_configs: PushNotificationConfigStore | None = None,
    push_receiver: PushReceiver | None = None,
) -> list[BaseRoute]:
    """The card route (root well-known path) and the mounted A2A sub-app, for the main app's router.

    ``task_store`` keeps handoff tasks (durable, so ``GetTask`` survives a restart); with
    ``push_configs`` callers may ask to be told when a task ends; with ``push_receiver`` this bot
    takes such notices for the handoffs it sent, at ``/a2a/push/{handoffId}``. ``card`` gives the
    card in force (it changes when the persona is reloaded; its capabilities do not)."""
    handler = HandoffRequestHandler(
        agent_executor=executor,
        handoff_tasks=task_store,
        agent_card=card(),
        push_config_store=push_configs,
        admission=admission,
        jobs=jobs,
    )
    # Who calls, then how often, decided on the headers; only then is the body read (and capped).
    middleware = [
        Middleware(PeerAuthMiddleware, verifier=door.verifier, seen=door.seen_tokens),
        Middleware(CallerRateLimit, limiter=door.limiter),
        Middleware(A2ABodyLimit, max_bytes=door.max_body_bytes),
        Middleware(OwnWordsForErrors),
    ]
    if door.trace_requests:
        # Imported only with tracing on: the instrumentation costs memory and CPU per request.
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        middleware.insert(
            0,
            Middleware(
                OpenTelemetryMiddleware,
                default_span_details=_receive_span,
                exclude_spans=["receive", "send"],
            ),
        )
    sub_app = Starlette(
        routes=[
            *create_jsonrpc_routes(
                handler,
                rpc_url="/",
                context_builder=CredentialFreeContextBuilder(),
                enable_v0_3_compat=True,
            ),
            # Where bots built on Microsoft's sample look for a peer's card.
            card_route(card, cache_control=CARD_CACHE_CONTROL),
            *([push_route(push_receiver)] if push_receiver is not None else []),
        ],
        middleware=middleware,
    )
    return [card_route(card, cache_control=CARD_CACHE_CONTROL), ExactMount(A2A_PATH, sub_app)]

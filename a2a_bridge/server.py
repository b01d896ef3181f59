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
from a2a.server.agent_execution import AgentExecutor, RequestContext, SimpleRequestContextBuilder
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import DefaultServerCallContextBuilder, create_jsonrpc_routes
from a2a.server.tasks import PushNotificationConfigStore, TaskStore
from a2a.types import AgentCard, Message, SendMessageRequest, Task
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute

from a2a_bridge.admission import HandoffAdmission, Refused, admit, admitted
from a2a_bridge.asgi import ExactMount
from a2a_bridge.auth import PeerAuthMiddleware, SeenTokens, TokenVerifier
from a2a_bridge.card_route import card_route
from a2a_bridge.error_answers import OwnWordsForErrors
from a2a_bridge.handoff import HandoffMessage, request_from_message
from a2a_bridge.jobs import Busy, Finished, HandoffJob, HandoffJobs
from a2a_bridge.limits import A2ABodyLimit, CallerRateLimit, RateLimiter
from a2a_bridge.push import PushTarget
from a2a_bridge.push_inbox import PushReceiver, push_route
from a2a_bridge.tasks import final_status, mark_new, outcome_message, task_id_for, task_of, working_status
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
    """Admits a handoff (``admission.py``) before a2a-sdk does any work for it.

    A refused handoff, and a repeat of one already claimed, are answered here: no task is created or
    read for them. Only a handoff this request has just claimed goes on to the SDK's task machinery
    and the executor, which starts its job. A handoff's task id derives from the caller and the
    handoff id, so a retried send is answered with that task as it stands and starts nothing. The
    push target the caller names is kept with the claim; the SDK's copy (for the A2A
    push-configuration methods) is written after the job has started, off the greeting's path."""

    def __init__(self, *args: Any, admission: HandoffAdmission, jobs: HandoffJobs, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._admission = admission
        self._jobs = jobs

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Message | Task:
        caller = context.user
        name = caller.user_name if caller.is_authenticated else ""
        request = request_from_message(params.message, name or None)
        if not isinstance(request, HandoffMessage) or params.message.task_id:
            return await super().on_message_send(params, context)
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
                status = final_status(verdict.outcome, job.task_id, job.context_id)
                return task_of(job.ref, status, params.message)
            if isinstance(verdict, Busy):
                log.info("handoff_duplicate", status="working")
                running = self._jobs.running(job.task_id)
                if running is not None and not params.configuration.return_immediately:
                    # A caller that waits gets the end, as the first request's caller does.
                    outcome = await asyncio.shield(running)
                    return task_of(
                        job.ref, final_status(outcome, job.task_id, job.context_id), params.message
                    )
                status = working_status(self._admission.receiver, job.task_id, job.context_id)
                return task_of(job.ref, status, params.message)
            log.info("handoff_received", from_bot=request.from_, hops=request.hops)
            admit(context, job)
            mark_new(context, task_id)
            result = await super().on_message_send(_without_push(params) if job.push else params, context)
            if job.push is not None and self._push_config_store is not None:
                await self._keep_push_config(task_id, params, context)
            return result

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


def _without_push(params: SendMessageRequest) -> SendMessageRequest:
    stripped = SendMessageRequest()
    stripped.CopyFrom(params)
    stripped.configuration.ClearField("task_push_notification_config")
    return stripped


class HandoffContextBuilder(SimpleRequestContextBuilder):
    async def build(
        self,
        context: ServerCallContext,
        params: SendMessageRequest | None = None,
        task_id: str | None = None,
        context_id: str | None = None,
        task: Task | None = None,
    ) -> RequestContext:
        job = admitted(context)
        if job is not None and task_id is None:
            task_id, context_id = job.task_id, context_id or job.context_id
        return await super().build(context, params, task_id, context_id, task)


def _receive_span(scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "a2a.receive", {}


def a2a_routes(
    *,
    card: Callable[[], AgentCard],
    executor: AgentExecutor,
    admission: HandoffAdmission,
    jobs: HandoffJobs,
    door: A2ADoor,
    task_store: TaskStore,
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
        task_store=task_store,
        agent_card=card(),
        push_config_store=push_configs,
        request_context_builder=HandoffContextBuilder(task_store=task_store),
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

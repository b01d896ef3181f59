"""The A2A surface as one sub-app: JSON-RPC at ``/a2a`` (and ``/a2a/``), behind its own door.

The sub-app carries everything that is A2A's alone: trace propagation (when tracing is on), the
body cap, peer authentication and the per-caller rate limit, in that order, in front of a2a-sdk's
JSON-RPC route. The card is public: at the root well-known path as the spec says, and again under
``/a2a`` where clients built on Microsoft's sample look for it; each client gets it in the shape of
the protocol version it asks for (``card_route``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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

from a2a_bridge.asgi import ExactMount
from a2a_bridge.auth import PeerAuthMiddleware, TokenVerifier
from a2a_bridge.card_route import card_route
from a2a_bridge.handoff import HandoffMessage, request_from_message
from a2a_bridge.limits import A2ABodyLimit, CallerRateLimit, RateLimiter
from a2a_bridge.push_inbox import PushReceiver, push_route
from a2a_bridge.tasks import task_id_for

A2A_PATH = "/a2a"
CARD_CACHE_CONTROL = "public, max-age=300"


@dataclass(frozen=True)
class A2ADoor:
    """What stands in front of the JSON-RPC route."""

    max_body_bytes: int
    verifier: TokenVerifier | None
    limiter: RateLimiter
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


_HANDOFF_TASK_ID = "handoff_task_id"


class HandoffRequestHandler(DefaultRequestHandler):
    """Refuses a message that is neither a valid handoff nor a question before any task exists for
    it, so a bad request is a plain -32602 answer rather than a failed task and an executor trace.

    A handoff's task id derives from the caller and the handoff id: a retried send is answered with
    that task as it stands (working or ended) and starts nothing."""

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Message | Task:
        caller = context.user
        name = caller.user_name if caller.is_authenticated else ""
        request = request_from_message(params.message, name or None)
        if isinstance(request, HandoffMessage) and not params.message.task_id:
            task_id = task_id_for(name, request.handoff_id)
            existing = await self.task_store.get(task_id, context)
            if isinstance(existing, Task):
                return existing
            context.state[_HANDOFF_TASK_ID] = task_id
        return await super().on_message_send(params, context)


class HandoffContextBuilder(SimpleRequestContextBuilder):
    async def build(
        self,
        context: ServerCallContext,
        params: SendMessageRequest | None = None,
        task_id: str | None = None,
        context_id: str | None = None,
        task: Task | None = None,
    ) -> RequestContext:
        derived = context.state.get(_HANDOFF_TASK_ID)
        if isinstance(derived, str) and task_id is None:
            task_id, context_id = derived, context_id or derived
        return await super().build(context, params, task_id, context_id, task)


def _receive_span(scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "a2a.receive", {}


def a2a_routes(
    *,
    card: Callable[[], AgentCard],
    executor: AgentExecutor,
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
    )
    middleware = [
        Middleware(A2ABodyLimit, max_bytes=door.max_body_bytes),
        Middleware(PeerAuthMiddleware, verifier=door.verifier),
        Middleware(CallerRateLimit, limiter=door.limiter),
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

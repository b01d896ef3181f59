"""Mounts the A2A surface on the process's one FastAPI app: the card at the root, JSON-RPC at /a2a."""

from __future__ import annotations

from a2a.server.agent_execution import AgentExecutor
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import (
    DefaultServerCallContextBuilder,
    create_agent_card_routes,
    create_jsonrpc_routes,
)
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import AgentCard, Message, SendMessageRequest, Task
from starlette.requests import Request
from starlette.routing import Router

from a2a_bridge.executor import request_from_message

A2A_PATH = "/a2a"
CARD_CACHE_CONTROL = "public, max-age=300"


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
    """Refuses a message that is neither a valid handoff nor a question before any task exists for
    it, so a bad request is a plain -32602 answer rather than a failed task and an executor trace."""

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Message | Task:
        request_from_message(params.message)
        return await super().on_message_send(params, context)


def add_a2a_routes(router: Router, *, card: AgentCard, executor: AgentExecutor) -> DefaultRequestHandler:
    """Handoffs answer with one Message, never a long-lived task, so tasks need no durable store."""
    handler = HandoffRequestHandler(agent_executor=executor, task_store=InMemoryTaskStore(), agent_card=card)
    router.routes.extend(create_agent_card_routes(card, cache_control=CARD_CACHE_CONTROL))
    router.routes.extend(
        create_jsonrpc_routes(
            handler,
            rpc_url=A2A_PATH,
            context_builder=CredentialFreeContextBuilder(),
            enable_v0_3_compat=True,
        )
    )
    return handler

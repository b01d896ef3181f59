"""The floor: a bare a2a-sdk JSON-RPC server whose executor answers every message at once.

    python -m bench.floor_server FD     # serves on the inherited listening socket FD

The benchmark times a SendMessage round trip with the handoff's data part against it; nothing a
handoff does can be faster than that on the same machine.
"""

from __future__ import annotations

import socket
import sys
import uuid

import uvicorn
from a2a.helpers import new_data_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import Message, Role
from starlette.applications import Starlette

from a2a_bridge.agent_card import build_agent_card


class EchoExecutor(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        await event_queue.enqueue_event(
            Message(
                role=Role.ROLE_AGENT,
                message_id=str(uuid.uuid4()),
                context_id=context.context_id or "",
                parts=[new_data_part({"kind": "handoffOutcome", "status": "delivered"})],
            )
        )

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        return None


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    port = sock.getsockname()[1]
    card = build_agent_card(
        name="Floor", description="floor", a2a_url=f"http://127.0.0.1:{port}/a2a", requires_bearer_token=False
    )
    handler = DefaultRequestHandler(
        agent_executor=EchoExecutor(), task_store=InMemoryTaskStore(), agent_card=card
    )
    app = Starlette(
        routes=[
            *create_agent_card_routes(card),
            *create_jsonrpc_routes(handler, rpc_url="/a2a", enable_v0_3_compat=True),
        ]
    )
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


if __name__ == "__main__":
    main()

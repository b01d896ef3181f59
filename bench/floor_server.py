"""The floor: a bare a2a-sdk JSON-RPC server whose executor answers every message at once.

    python -m bench.floor_server PORT

The benchmark times a SendMessage round trip with the handoff's data part against it; nothing a
handoff does can be faster than that on the same machine.
"""

from __future__ import annotations

import sys
import uuid

import uvicorn
from a2a.helpers import new_data_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.types import Message, Role
from starlette.applications import Starlette

from a2a_bridge.agent_card import build_agent_card
from a2a_bridge.server import add_a2a_routes


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
    port = int(sys.argv[1])
    app = Starlette()
    card = build_agent_card(
        name="Floor", description="floor", a2a_url=f"http://127.0.0.1:{port}/a2a", requires_bearer_token=False
    )
    add_a2a_routes(app.router, card=card, executor=EchoExecutor())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

"""The model's two tools, as thin adapters: validated input in, the sender's typed result out.

Both are built per turn, so the ``peer`` enum holds exactly the peers reachable now. What the turn
decided travels in a ``TurnState`` handed to the tool loop (``function_invocation_kwargs``), not in
the text the model sees; the middleware below ends the loop once a handoff has been decided.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Protocol

import structlog
from agent_framework import (
    FunctionInvocationContext,
    FunctionTool,
    MiddlewareTermination,
    function_middleware,
)
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from a2a_bridge.peer_client import PeerAnswer
from bot.handoffs import AwaitingConsent, Declined, HandedOff, HandoffDecision
from bot.identity import TurnIdentity

log = structlog.get_logger(__name__)

HANDOFF_TOOL_NAME = "handoff_to_peer"
ASK_TOOL_NAME = "ask_peer"
TURN_KEY = "turn"
MAX_QUESTION_CHARS = 4000


class HandoffRequests(Protocol):
    """What the handoff tool asks of the sender (bot.handoffs.HandoffSender, or the routing check's
    recorder, which carries nothing out)."""

    bot_name: str

    async def request(self, identity: TurnIdentity, peer: str, summary: str) -> HandoffDecision: ...

    def tool_result(self, decision: HandedOff) -> str: ...


class PeerQuestions(Protocol):
    async def ask(self, peer_name: str, question: str) -> PeerAnswer: ...


@dataclass
class TurnState:
    """One user turn: who it is for, and what the handoff tool decided (at most once)."""

    identity: TurnIdentity
    decision: HandoffDecision | None = None
    deciding: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Models may call tools in parallel: two handoff calls in one answer hand off once."""

    @property
    def ends_turn(self) -> bool:
        """After a handoff or a consent question the user is told a template, not model text."""
        return isinstance(self.decision, HandedOff | AwaitingConsent)


def turn_of(ctx: FunctionInvocationContext) -> TurnState:
    turn = ctx.kwargs.get(TURN_KEY)
    if not isinstance(turn, TurnState):
        raise RuntimeError(f"{ctx.function.name} runs only inside a user turn")
    return turn


def _peer_input(name: str, field: str, field_description: str, peers: Sequence[str]) -> type[BaseModel]:
    """``peer`` is one of ``peers``: validated here, and an ``enum`` in the schema the model sees."""
    known = tuple(peers)

    def one_of_the_peers(value: str) -> str:
        if value not in known:
            raise ValueError(f"not one of {', '.join(known)}")
        return value

    peer_field = Field(description="The colleague, by name.", json_schema_extra={"enum": list(known)})
    return create_model(
        name,
        __config__=ConfigDict(extra="forbid"),
        peer=(Annotated[str, AfterValidator(one_of_the_peers)], peer_field),
        **{field: (str, Field(description=field_description))},  # type: ignore[call-overload]
    )


def handoff_tool(sender: HandoffRequests, description: str, peers: Sequence[str]) -> FunctionTool:
    async def handoff_to_peer(peer: str, summary: str, ctx: FunctionInvocationContext) -> str:
        turn = turn_of(ctx)
        async with turn.deciding:
            if turn.decision is not None and not isinstance(turn.decision, Declined):
                return "The user has already been handed over in this turn; do not hand off again."
            turn.decision = await sender.request(turn.identity, peer, summary)
        if isinstance(turn.decision, HandedOff):
            return sender.tool_result(turn.decision)
        if isinstance(turn.decision, AwaitingConsent):
            return f"Asked the user whether to connect them to {peer}."
        return f"The user chose to stay with {sender.bot_name}: do not hand off; answer yourself."

    return FunctionTool(
        name=HANDOFF_TOOL_NAME,
        description=description,
        func=handoff_to_peer,
        input_model=_peer_input(
            "HandoffInput", "summary", "What the user needs, self-contained, for the colleague.", peers
        ),
    )


def ask_tool(peers: PeerQuestions, description: str, peer_names: Sequence[str]) -> FunctionTool:
    async def ask_peer(peer: str, question: str) -> str:
        log.info("ask_peer", peer=peer)
        answer = await peers.ask(peer, question.strip()[:MAX_QUESTION_CHARS])
        return f"{peer} answered: {answer.text}" if answer.ok else f"Could not ask {peer}: {answer.text}"

    return FunctionTool(
        name=ASK_TOOL_NAME,
        description=description,
        func=ask_peer,
        input_model=_peer_input("AskInput", "question", "The question, self-contained.", peer_names),
    )


@function_middleware
async def end_turn_after_handoff(
    context: FunctionInvocationContext, call_next: Callable[[], Awaitable[None]]
) -> None:
    """The model's next word after a handoff would be wasted: end the tool loop, save a model call."""
    await call_next()
    turn = context.kwargs.get(TURN_KEY)
    if isinstance(turn, TurnState) and turn.ends_turn:
        raise MiddlewareTermination("handoff decided", result=context.result)

"""The bot's LLM agent: instructions from prompts and live peer cards, one session per conversation.

Three kinds of run: a user's turn (which may hand off), a peer's question (no tools, no history),
and the greeting turn of a handoff received (the new conversation's first turn).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agent_framework import Agent, AgentSession, FunctionTool, Message, SupportsChatGetResponse

from a2a_bridge.card_cache import PeerProfile
from a2a_bridge.handoff import HandoffMessage, HandoffOutcome
from bot.handoffs import AwaitingConsent, HandedOff
from bot.history import StoreHistoryProvider
from bot.identity import TurnIdentity
from bot.persona import Persona
from bot.store.history import HistoryStore
from bot.tools import (
    TURN_KEY,
    HandoffRequests,
    PeerQuestions,
    TurnState,
    ask_tool,
    end_turn_after_handoff,
    handoff_tool,
)

# Marks on a run's input message saying what kind of run it is (read by the offline model).
HANDOFF_CONTEXT_KEY = "handoff_context"
CONSULT_CONTEXT_KEY = "consult_context"


@dataclass(frozen=True)
class TurnResult:
    reply: str | None
    """None when the turn's message has been posted already (a handoff's notice)."""
    handoff: HandoffOutcome | None = None
    consent_peer: str | None = None
    """Set when the reply is a question to the user: may I connect you to this peer?"""


class PeerDirectory(PeerQuestions, Protocol):
    """The peers a turn may name: their live cards, and a way to ask them (a2a_bridge's PeerClient;
    the routing check's recorder)."""

    async def refresh(self, *, wait_for_old: bool = True) -> None: ...

    def available(self) -> list[PeerProfile]: ...


class HandoffDesk(HandoffRequests, Protocol):
    def consent_question(self, peer: str) -> str: ...


class BotAgent:
    def __init__(
        self,
        *,
        persona: Persona,
        client: SupportsChatGetResponse,
        peers: PeerDirectory,
        history: HistoryStore,
        sender: HandoffDesk,
        middleware: Sequence[Any] = (),
    ) -> None:
        self._bot_name = persona.bot_name
        self._persona = persona
        self._peers = peers
        self._sender = sender
        self._tool_sets: dict[tuple[tuple[str, ...], bool, str, str], list[FunctionTool]] = {}
        self._agent = Agent(
            client=client,
            name=persona.bot_name,
            context_providers=[StoreHistoryProvider(history)],
            middleware=[*middleware, end_turn_after_handoff],
        )

    async def run_user_turn(
        self, identity: TurnIdentity, text: str, *, on_text: Callable[[str], None] | None = None
    ) -> TurnResult:
        """``on_text``: told each piece of the answer as the model writes it (streaming)."""
        await self._peers.refresh(wait_for_old=False)
        peers = self._peers.available()
        tools = self._tools(tuple(p.name for p in peers), identity.can_be_handed_off)
        turn = TurnState(identity)
        run: dict[str, Any] = {
            "session": AgentSession(session_id=identity.conversation_id),
            "tools": tools,
            "options": {"instructions": self._instructions(peers)},
            "function_invocation_kwargs": {TURN_KEY: turn},
        }
        if on_text is None:
            response = await self._agent.run(Message("user", [text]), **run)
        else:
            stream = self._agent.run(Message("user", [text]), stream=True, **run)
            async for update in stream:
                if update.text:
                    on_text(update.text)
            response = await stream.get_final_response()
        if isinstance(turn.decision, HandedOff):
            return TurnResult(reply=None, handoff=turn.decision.outcome)
        if isinstance(turn.decision, AwaitingConsent):
            peer = turn.decision.peer
            return TurnResult(reply=self._sender.consent_question(peer), consent_peer=peer)
        return TurnResult(
            reply=response.text.strip() or self._persona.render("turn_failed", bot_name=self._bot_name)
        )

    async def answer(self, question: str, *, asker: str | None) -> str:
        """A peer's question (a2a_bridge.executor.PeerConsultant): one run, no tools, no history kept."""
        prompt = self._persona.render("consult_turn", asker=asker or "A colleague", question=question)
        response = await self._agent.run(
            Message("user", [prompt], additional_properties={CONSULT_CONTEXT_KEY: {"asker": asker or ""}}),
            session=AgentSession(),
            options={"instructions": self._instructions([])},
        )
        return response.text.strip()

    async def run_greeting_turn(self, conversation_id: str, handoff: HandoffMessage) -> str:
        """The handoff's first turn: part of the new conversation's history, and it cannot hand off."""
        await self._peers.refresh(wait_for_old=False)
        context = {
            "from_bot": handoff.from_,
            "user_name": handoff.user_name or "there",
            "summary": handoff.summary,
        }
        prompt = self._persona.render("greeting_turn", bot_name=self._bot_name, **context)
        response = await self._agent.run(
            Message("user", [prompt], additional_properties={HANDOFF_CONTEXT_KEY: context}),
            session=AgentSession(session_id=conversation_id),
            options={"instructions": self._instructions(self._peers.available())},
        )
        return response.text.strip()

    def _tools(self, peer_names: tuple[str, ...], can_hand_off: bool) -> list[FunctionTool]:
        """The tools for the peers reachable now. They hold no turn state (that travels in the
        TurnState), so one set per set of peers (and tool texts) serves every turn: building their
        schemas is not free."""
        ask_text, handoff_text = self._persona.render("ask_tool"), self._persona.render("handoff_tool")
        key = (peer_names, can_hand_off, ask_text, handoff_text)
        tools = self._tool_sets.get(key)
        if tools is None:
            tools = [ask_tool(self._peers, ask_text, peer_names)] if peer_names else []
            if peer_names and can_hand_off:
                tools.append(handoff_tool(self._sender, handoff_text, peer_names))
            if len(self._tool_sets) >= 32:  # peers come and go; keep the recent sets only
                self._tool_sets.clear()
            self._tool_sets[key] = tools
        return tools

    def _instructions(self, peers: list[PeerProfile]) -> str:
        return self._persona.instructions(peers)

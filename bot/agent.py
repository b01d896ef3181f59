"""The bot's LLM agent: instructions from prompts and live peer cards, one session per conversation,
and the ``handoff_to_peer`` tool whose identity fields come from the turn, never from the model."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agent_framework import (
    Agent,
    AgentSession,
    FunctionInvocationContext,
    FunctionTool,
    Message,
    MiddlewareTermination,
    SupportsChatGetResponse,
    function_middleware,
)

from a2a_bridge.handoff import MAX_SUMMARY_CHARS, HandoffMessage, HandoffOutcome
from a2a_bridge.peer_client import PeerDirectory
from bot.history import StoreHistoryProvider
from bot.logs import content_level
from bot.manifest import short_description
from bot.offline_model import ASK_TOOL_NAME, CONSULT_CONTEXT_KEY, HANDOFF_CONTEXT_KEY, HANDOFF_TOOL_NAME
from bot.prompts import Prompts
from bot.store import Store

logger = logging.getLogger(__name__)

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def clean_user_name(name: str | None) -> str:
    return _CONTROL_CHARS.sub(" ", name or "").strip()[:100]


@function_middleware
async def _end_turn_after_handoff(
    context: FunctionInvocationContext, call_next: Callable[[], Awaitable[None]]
) -> None:
    """After a handoff the user is told the outcome verbatim (a template, not model text), so the
    model's next word would be wasted: end the tool loop there and save a model call."""
    await call_next()
    if context.function.name == HANDOFF_TOOL_NAME and not _result_text(context.result).startswith(STAY_NOTE):
        raise MiddlewareTermination("handoff done", result=context.result)


# The one handoff tool result after which the model goes on: the user declined handoffs.
STAY_NOTE = "The user chose to stay"


def _result_text(result: Any) -> str:
    items = result if isinstance(result, list) else [result]
    return "".join(str(getattr(item, "text", None) or item) for item in items if item is not None)


@dataclass(frozen=True)
class TurnIdentity:
    """Who the user is and where to reach them, read off the inbound Teams activity."""

    conversation_id: str
    user_name: str
    aad_object_id: str
    tenant_id: str
    service_url: str
    hops: int = 0


@dataclass(frozen=True)
class TurnResult:
    reply: str
    handoff: HandoffOutcome | None = None
    consent_peer: str | None = None
    """Set when the reply is a question to the user: may I connect you to this peer?"""


class BotAgent:
    def __init__(
        self,
        *,
        bot_name: str,
        bot_description: str,
        client: SupportsChatGetResponse,
        prompts: Prompts,
        peers: PeerDirectory,
        store: Store,
        middleware: Sequence[Any] = (),
        consent: str = "never",
    ) -> None:
        self._store = store
        self._consent = consent
        self._bot_name = bot_name
        self._bot_description = bot_description
        self._prompts = prompts
        self._peers = peers
        self._agent = Agent(
            client=client,
            name=bot_name,
            context_providers=[StoreHistoryProvider(store)],
            middleware=[*middleware, _end_turn_after_handoff],
        )

    async def run_user_turn(self, identity: TurnIdentity, text: str) -> TurnResult:
        await self._peers.refresh()
        peers = self._peers.available()
        handoffs: list[HandoffOutcome] = []
        asked: list[str] = []
        can_hand_off = bool(peers and identity.aad_object_id and identity.tenant_id and identity.service_url)
        names = [p.name for p in peers]
        tools = [self._ask_tool(names)] if peers else []
        if can_hand_off:
            tools.append(self._handoff_tool(identity, names, handoffs, asked))
        response = await self._agent.run(
            Message("user", [text]),
            session=AgentSession(session_id=identity.conversation_id),
            tools=tools,
            options={"instructions": self._instructions(peers)},
        )
        if handoffs:
            return TurnResult(reply=self._notice(handoffs[0]), handoff=handoffs[0])
        if asked:
            return TurnResult(reply=self.consent_question(asked[0]), consent_peer=asked[0])
        return TurnResult(
            reply=response.text.strip() or self._prompts.render("turn_failed", bot_name=self._bot_name)
        )

    async def answer(self, question: str, *, asker: str | None) -> str:
        """A peer's question (a2a_bridge.executor.PeerConsultant): one run, no tools, no history kept."""
        prompt = self._prompts.render("consult_turn", asker=asker or "A colleague", question=question)
        response = await self._agent.run(
            Message("user", [prompt], additional_properties={CONSULT_CONTEXT_KEY: {"asker": asker or ""}}),
            session=AgentSession(),
            options={"instructions": self._instructions([])},
        )
        return response.text.strip()

    async def run_greeting_turn(self, conversation_id: str, handoff: HandoffMessage) -> str:
        """The handoff's first turn: part of the new conversation's history, and it cannot hand off."""
        await self._peers.refresh()
        context = {
            "from_bot": handoff.from_,
            "user_name": handoff.user_name or "there",
            "summary": handoff.summary,
        }
        prompt = self._prompts.render("greeting_turn", bot_name=self._bot_name, **context)
        response = await self._agent.run(
            Message("user", [prompt], additional_properties={HANDOFF_CONTEXT_KEY: context}),
            session=AgentSession(session_id=conversation_id),
            options={"instructions": self._instructions(self._peers.available())},
        )
        return response.text.strip()

    def _instructions(self, peers: list) -> str:  # type: ignore[type-arg]
        return self._prompts.instructions(
            bot_name=self._bot_name, bot_description=self._bot_description, peers=peers
        )

    def _notice(self, outcome: HandoffOutcome) -> str:
        if outcome.delivered:
            return self._prompts.render("notice_delivered", bot_name=self._bot_name, peer=outcome.peer)
        return self._prompts.render(
            "notice_failed",
            bot_name=self._bot_name,
            peer=outcome.peer,
            reason=outcome.reason or "no reason was given.",
        )

    def _ask_tool(self, peer_names: list[str]) -> FunctionTool:
        async def ask_peer(peer: str, question: str) -> str:
            logger.info("ask_peer", extra={"event": "ask_peer", "peer": peer})
            answer = await self._peers.ask(peer, question.strip()[:4000])
            if answer.ok:
                return f"{peer} answered: {answer.text}"
            return f"Could not ask {peer}: {answer.text}"

        return FunctionTool(
            name=ASK_TOOL_NAME,
            description=self._prompts.render("ask_tool"),
            func=ask_peer,
            input_model={
                "type": "object",
                "properties": {
                    "peer": {"type": "string", "enum": peer_names, "description": "The colleague to ask."},
                    "question": {"type": "string", "description": "The question, self-contained."},
                },
                "required": ["peer", "question"],
                "additionalProperties": False,
            },
        )

    async def hand_off(self, identity: TurnIdentity, peer: str, summary: str) -> HandoffOutcome:
        """Send a handoff built from the turn's identity (never from model text) and return the outcome."""
        handoff = HandoffMessage(
            handoff_id=uuid.uuid4().hex,
            from_=self._bot_name,
            user_name=identity.user_name,
            aad_object_id=identity.aad_object_id,
            tenant_id=identity.tenant_id,
            service_url=identity.service_url,
            summary=summary.strip()[:MAX_SUMMARY_CHARS] or "(no summary given)",
            hops=identity.hops + 1,
        )
        logger.info(
            "handoff_requested",
            extra={
                "event": "handoff_requested",
                "peer": peer,
                "handoff_id": handoff.handoff_id,
                "conversation_id": identity.conversation_id,
            },
        )
        logger.log(content_level(), "handoff_summary", extra={"event": "handoff_summary", "summary": summary})
        started = time.perf_counter()
        outcome = await self._peers.send_handoff(peer, handoff)
        logger.info(
            "handoff_outcome",
            extra={
                "event": "handoff_outcome",
                "peer": peer,
                "handoff_id": handoff.handoff_id,
                "status": outcome.status.value,
                "duration_ms": round((time.perf_counter() - started) * 1000),
            },
        )
        return outcome

    async def resolve_consent(self, identity: TurnIdentity, choice: str) -> str:
        """The user answered the consent card: remember the choice, and hand off if it was yes."""
        _, pending = await self._store.consent(identity.conversation_id)
        await self._store.set_consent(identity.conversation_id, choice)
        if choice == "no":
            return self._prompts.render("consent_declined", bot_name=self._bot_name)
        if pending is None:
            return self._prompts.render("consent_nothing_pending", bot_name=self._bot_name)
        await self._peers.refresh()
        outcome = await self.hand_off(identity, str(pending["peer"]), str(pending["summary"]))
        return self._notice(outcome)

    def consent_question(self, peer: str) -> str:
        profile = next((p for p in self._peers.available() if p.name == peer), None)
        specialty = short_description(profile.description) if profile else "this"
        return self._prompts.render(
            "consent_question", bot_name=self._bot_name, peer=peer, specialty=specialty
        )

    def _handoff_tool(
        self, identity: TurnIdentity, peer_names: list[str], outcomes: list[HandoffOutcome], asked: list[str]
    ) -> FunctionTool:
        """Built per turn: the enum holds exactly the peers reachable now, and the closure holds the
        turn's identity, so the model chooses only whom to hand to and what to say."""

        async def handoff_to_peer(peer: str, summary: str) -> str:
            if outcomes or asked:
                return "The user has already been handed over in this turn; do not hand off again."
            if self._consent == "ask":
                choice, _ = await self._store.consent(identity.conversation_id)
                if choice == "no":
                    return f"{STAY_NOTE} with {self._bot_name}: do not hand off; answer yourself."
                if choice != "yes":
                    await self._store.set_pending_handoff(
                        identity.conversation_id, {"peer": peer, "summary": summary}
                    )
                    asked.append(peer)
                    return f"Asked the user whether to connect them to {peer}."
            outcome = await self.hand_off(identity, peer, summary)
            outcomes.append(outcome)
            return self._notice(outcome)

        return FunctionTool(
            name=HANDOFF_TOOL_NAME,
            description=self._prompts.render("handoff_tool"),
            func=handoff_to_peer,
            input_model={
                "type": "object",
                "properties": {
                    "peer": {
                        "type": "string",
                        "enum": peer_names,
                        "description": "The colleague to hand to.",
                    },
                    "summary": {
                        "type": "string",
                        "description": "What the user needs, self-contained, for the colleague.",
                    },
                },
                "required": ["peer", "summary"],
                "additionalProperties": False,
            },
        )

"""The built-in offline model: a deterministic chat client that routes, so the real tool loop runs.

No LLM API is reachable on a fresh machine, and no tiny local model calls tools reliably. This client
implements agent-framework's chat client interface (with ``FunctionInvocationLayer``, so tool calls
it emits are executed by the framework exactly as a real model's would be). It scores the user's
message against its own persona and each offered peer's card, calls ``handoff_to_peer`` when a peer
clearly fits better, and otherwise answers with an honest notice that it is offline and how to
configure a real model. Every reply is labelled as offline.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from agent_framework import (
    BaseChatClient,
    ChatMiddlewareLayer,
    ChatResponse,
    ChatResponseUpdate,
    Content,
    FunctionInvocationLayer,
    Message,
)

from a2a_bridge.card_cache import PeerProfile
from a2a_bridge.handoff import shorten
from bot.agent import CONSULT_CONTEXT_KEY, HANDOFF_CONTEXT_KEY
from bot.tools import ASK_TOOL_NAME, HANDOFF_TOOL_NAME

OFFLINE_LABEL = "[offline model]"
STREAM_WORDS = 4

_STOPWORDS_TEXT = """
a about after again all also am an and any are as at be been but by can could do does for from
get got had has have help how i if in into is it its just like me my need needs new no not now
of on or our please question questions so some than that the their them then there these they
this to up us want was we what when where which who why will with would you your yours i'm it's
don't can't hi hello hey thanks thank bot bots peer peers handoff takes take over opens open
carries carry chat chats user users microsoft teams context specialist specialty assistant
"""
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def keywords(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {_stem(word) for word in words if word not in _STOPWORDS and len(word) > 1}


def _stem(word: str) -> str:
    """Plural to singular, well enough to match "phones" with "phone" and "policies" with "policy"
    while leaving "business", "status" and "analysis" alone."""
    if len(word) <= 3 or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") else word


class OfflineChatClient(FunctionInvocationLayer[Any], ChatMiddlewareLayer[Any], BaseChatClient[Any]):
    OTEL_PROVIDER_NAME = "offline"

    def __init__(
        self,
        *,
        bot_name: str,
        description: Callable[[], str],
        peers: Callable[[], list[PeerProfile]],
        **kwargs: Any,
    ) -> None:
        """``description`` and ``peers`` are read at every call: the persona may be reloaded, and
        peers come and go."""
        super().__init__(**kwargs)
        self._bot_name = bot_name
        self._description = description
        self._peers = peers

    @property
    def _bot_description(self) -> str:
        return self._description()

    def _inner_get_response(
        self, *, messages: Sequence[Message], stream: bool, options: Mapping[str, Any], **kwargs: Any
    ) -> Any:
        """A ``ChatResponse`` (awaitable), or with ``stream`` a ``ResponseStream`` of updates: the
        text a few words at a time (as a real model writes it), a tool call in one update."""
        if not stream:
            return self._respond(messages, options)
        return self._build_response_stream(
            self._updates(messages, options), response_format=options.get("response_format")
        )

    async def _updates(
        self, messages: Sequence[Message], options: Mapping[str, Any]
    ) -> AsyncIterator[ChatResponseUpdate]:
        response = await self._respond(messages, options)
        [reply] = response.messages
        message_id = response.response_id
        if any(content.type == "function_call" for content in reply.contents):
            yield ChatResponseUpdate(role="assistant", message_id=message_id, contents=list(reply.contents))
        else:
            words = reply.text.split(" ")
            for start in range(0, len(words), STREAM_WORDS):
                piece = " ".join(words[start : start + STREAM_WORDS])
                yield ChatResponseUpdate(
                    role="assistant",
                    message_id=message_id,
                    contents=[Content.from_text(piece if start == 0 else " " + piece)],
                )
                await asyncio.sleep(0)  # a turn of the loop between chunks, as a network read gives
        yield ChatResponseUpdate(role="assistant", message_id=message_id, finish_reason="stop")

    async def _respond(self, messages: Sequence[Message], options: Mapping[str, Any]) -> ChatResponse:
        last = messages[-1] if messages else Message("user", [""])
        reply: Message
        if last.role == "tool":
            reply = self._relay_tool_result(last)
        elif HANDOFF_CONTEXT_KEY in last.additional_properties:
            reply = self._greeting(last.additional_properties[HANDOFF_CONTEXT_KEY])
        elif CONSULT_CONTEXT_KEY in last.additional_properties:
            reply = _text(
                f"{OFFLINE_LABEL} {self._bot_name} here ({self._bot_description}). I run on the built-in "
                "offline model, so I cannot give a real answer to that yet."
            )
        else:
            reply = self._route_or_answer(last.text, messages, options)
        return ChatResponse(messages=[reply], response_id=f"offline-{uuid.uuid4().hex[:12]}")

    def _relay_tool_result(self, message: Message) -> Message:
        results = [str(content.result) for content in message.contents if content.type == "function_result"]
        return _text(f"{OFFLINE_LABEL} " + " ".join(results))

    def _greeting(self, context: Mapping[str, Any]) -> Message:
        sender = context.get("from_bot") or "a colleague"
        return _text(
            f"{OFFLINE_LABEL} Hi {context.get('user_name') or 'there'}, I'm {self._bot_name}, taking over "
            f"from {sender}. Here is what {sender} passed on: {context.get('summary', '')} I'm running on "
            "the built-in offline model, so I can't give a real answer yet; once a model is configured for "
            "me, I'll pick up from here."
        )

    def _route_or_answer(self, text: str, history: Sequence[Message], options: Mapping[str, Any]) -> Message:
        askable = _offered_peers(options, ASK_TOOL_NAME)
        named = [peer for peer in askable if re.search(rf"\bask {re.escape(peer.lower())}\b", text.lower())]
        if named:
            call = Content.from_function_call(
                call_id=f"call_{uuid.uuid4().hex[:12]}",
                name=ASK_TOOL_NAME,
                arguments=json.dumps({"peer": named[0], "question": text.strip()}),
            )
            return Message("assistant", [call])
        offered = _offered_peers(options, HANDOFF_TOOL_NAME)
        asked = keywords(text)
        own_score = len(asked & keywords(self._bot_description))
        best: tuple[int, str] | None = None
        for peer in self._peers():
            if peer.name not in offered:
                continue
            peer_words = keywords(peer.description + " " + " ".join(f"{n} {d}" for n, d in peer.skills))
            score = len(asked & peer_words)
            if score > own_score and (best is None or score > best[0]):
                best = (score, peer.name)
        if best is not None:
            summary = f"The user asked: \u201c{text.strip()}\u201d"
            call = Content.from_function_call(
                call_id=f"call_{uuid.uuid4().hex[:12]}",
                name=HANDOFF_TOOL_NAME,
                arguments=json.dumps({"peer": best[1], "summary": summary}),
            )
            return Message("assistant", [call])
        return _text(self._offline_answer(text, history))

    def _offline_answer(self, text: str, history: Sequence[Message]) -> str:
        context = next(
            (
                m.additional_properties[HANDOFF_CONTEXT_KEY]
                for m in reversed(history)
                if HANDOFF_CONTEXT_KEY in m.additional_properties
            ),
            None,
        )
        remembered = (
            f"From {context.get('from_bot')}'s handoff I know what you need: {context.get('summary')} "
            if context
            else ""
        )
        asked = shorten(" ".join(text.split()), 200)
        return (
            f"{OFFLINE_LABEL} You wrote: \u201c{asked}\u201d. {remembered}I'm {self._bot_name} "
            f"({self._bot_description}). With a real model configured I would answer that here; the "
            "built-in offline model I'm running on can route questions between colleagues but cannot "
            "answer them. To get real answers, set OPENAI_API_KEY and OPENAI_MODEL (plus OPENAI_BASE_URL "
            "for Ollama, vLLM or llama.cpp), or AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY and "
            "AZURE_OPENAI_MODEL, in this bot's env file."
        )


def _offered_peers(options: Mapping[str, Any], tool_name: str) -> set[str]:
    for tool in options.get("tools") or []:
        if getattr(tool, "name", None) == tool_name:
            schema = tool.parameters()
            return set(schema.get("properties", {}).get("peer", {}).get("enum", []))
    return set()


def _text(text: str) -> Message:
    return Message("assistant", [text])

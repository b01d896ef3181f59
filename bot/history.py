"""Conversation history for the agent, kept in the store so it survives restarts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent_framework import HistoryProvider, Message

from bot.store.history import HistoryStore


class StoreHistoryProvider(HistoryProvider):
    """One history per agent session; the session id is the Teams conversation id."""

    def __init__(self, history: HistoryStore) -> None:
        super().__init__("store")
        self._history = history

    async def get_messages(
        self, session_id: str | None, *, state: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Message]:
        if session_id is None:
            return []
        return [Message.from_dict(item) for item in await self._history.load(session_id)]

    async def save_messages(
        self,
        session_id: str | None,
        messages: Sequence[Message],
        *,
        state: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if session_id is None:
            return
        await self._history.append(session_id, [message.to_dict() for message in messages])

"""Conversation history: the agent's messages per Teams conversation, in order, as rows."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.clock import now
from bot.store.errors import translated
from bot.store.schema import history_messages

# Built once: the conversation comes as a parameter.
_LOAD = (
    select(history_messages.c.message)
    .where(history_messages.c.conversation_id == bindparam("key"))
    .order_by(history_messages.c.id)
)


class HistoryStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def load(self, conversation_id: str) -> list[dict[str, Any]]:
        with translated("reading history"):
            async with self._engine.connect() as connection:
                rows = await connection.execute(_LOAD, {"key": conversation_id})
                return [json.loads(raw) for raw in rows.scalars()]

    async def append(self, conversation_id: str, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        created = now()
        with translated("writing history"):
            async with self._engine.begin() as connection:
                await connection.execute(
                    history_messages.insert(),
                    [
                        {"conversation_id": conversation_id, "message": json.dumps(m), "created_at": created}
                        for m in messages
                    ],
                )

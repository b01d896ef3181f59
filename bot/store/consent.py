"""Consent (HANDOFF_CONSENT=ask): the user's remembered choice and the handoff waiting for it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.clock import now
from bot.store.errors import translated
from bot.store.schema import conversation_consent

ConsentChoice = Literal["yes", "no"]


class PendingHandoff(BaseModel):
    """A handoff the model asked for while the user had not yet said whether they agree."""

    peer: str
    summary: str


class ConsentState(BaseModel):
    choice: ConsentChoice | None = None
    pending: PendingHandoff | None = None


class ConsentStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, conversation_id: str) -> ConsentState:
        with translated("reading consent"):
            async with self._engine.connect() as connection:
                row = (
                    await connection.execute(
                        select(conversation_consent.c.choice, conversation_consent.c.pending).where(
                            conversation_consent.c.conversation_id == conversation_id
                        )
                    )
                ).first()
        if row is None:
            return ConsentState()
        return ConsentState(choice=row.choice, pending=_pending(row.pending))

    async def wait_for_answer(self, conversation_id: str, pending: PendingHandoff) -> None:
        await self._upsert(conversation_id, pending=pending.model_dump_json())

    async def answer(self, conversation_id: str, choice: ConsentChoice) -> PendingHandoff | None:
        """Remember the choice and take the handoff that waited for it: the one this call took, or
        None when nothing was waiting or another press (in any replica) took it first. Taking is a
        compare-and-clear on the stored value, so two presses never both get it."""
        with translated("writing consent"):
            async with self._engine.begin() as connection:
                stored = (
                    await connection.execute(
                        select(conversation_consent.c.pending).where(
                            conversation_consent.c.conversation_id == conversation_id
                        )
                    )
                ).scalar_one_or_none()
                if stored:
                    taken = await connection.execute(
                        conversation_consent.update()
                        .where(
                            conversation_consent.c.conversation_id == conversation_id,
                            conversation_consent.c.pending == stored,
                        )
                        .values(choice=choice, pending=None, updated_at=now())
                    )
                    if taken.rowcount == 1:
                        return _pending(stored)
        await self._upsert(conversation_id, choice=choice)
        return None

    async def _upsert(self, conversation_id: str, **values: Any) -> None:
        values["updated_at"] = now()
        with translated("writing consent"):
            async with self._engine.begin() as connection:
                updated = await connection.execute(
                    conversation_consent.update()
                    .where(conversation_consent.c.conversation_id == conversation_id)
                    .values(**values)
                )
                if updated.rowcount == 0:
                    await connection.execute(
                        conversation_consent.insert().values(conversation_id=conversation_id, **values)
                    )


def _pending(raw: str | None) -> PendingHandoff | None:
    if not raw:
        return None
    try:
        return PendingHandoff.model_validate_json(raw)
    except ValidationError:
        return None

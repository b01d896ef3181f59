"""The activity ledger: each Teams activity id is accepted once, in any replica."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.clock import now
from bot.store.errors import translated
from bot.store.schema import processed_activities


class ActivityLedger:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def accept(self, activity_id: str, conversation_id: str) -> bool:
        """True for the first delivery of an activity id; False for a redelivery (nothing written)."""
        with translated("recording the activity"):
            try:
                async with self._engine.begin() as connection:
                    await connection.execute(
                        processed_activities.insert().values(
                            activity_id=activity_id[:255],
                            conversation_id=conversation_id[:255],
                            created_at=now(),
                        )
                    )
            except IntegrityError:
                return False
        return True

"""The handoff ledger (``a2a_bridge.executor.HandoffLedger``): each handoff is carried out once.

A claim is an INSERT that only one caller, in any replica, can win. A handoff still pending in
another request is waited for; one pending for longer than the lease (its owner died) is taken over.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Literal

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_bridge.handoff import HandoffMessage, HandoffOutcome, HandoffStatus
from bot.store.clock import aware, now
from bot.store.errors import translated
from bot.store.schema import handoffs

log = structlog.get_logger(__name__)

PENDING = "pending"


class HandoffLedgerStore:
    def __init__(self, engine: AsyncEngine, *, bot_name: str, lease_seconds: float = 120.0) -> None:
        self._engine = engine
        self._bot_name = bot_name
        self.lease_seconds = lease_seconds

    async def claim(self, handoff: HandoffMessage, *, wait: float = 60.0) -> HandoffOutcome | None:
        """None when this caller now owns the handoff; else the outcome of whoever carried it out."""
        deadline = time.monotonic() + wait
        with translated("claiming the handoff"):
            while True:
                if await self._insert(handoff):
                    return None
                seen = await self._look(handoff)
                if seen == "mine":
                    return None
                if isinstance(seen, HandoffOutcome):
                    return seen
                if time.monotonic() > deadline:
                    return HandoffOutcome(
                        handoff_id=handoff.handoff_id,
                        status=HandoffStatus.FAILED,
                        peer=self._bot_name,
                        reason=f"{self._bot_name} is still working on this handoff; please wait a moment.",
                    )
                await asyncio.sleep(0.1)  # another request owns it: poll for its outcome

    async def _insert(self, handoff: HandoffMessage) -> bool:
        created = now()
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    handoffs.insert().values(
                        handoff_id=handoff.handoff_id,
                        from_bot=handoff.from_,
                        to_bot=self._bot_name,
                        aad_object_id=handoff.aad_object_id,
                        tenant_id=handoff.tenant_id,
                        status=PENDING,
                        outcome=None,
                        created_at=created,
                        updated_at=created,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def _look(self, handoff: HandoffMessage) -> HandoffOutcome | Literal["mine", "theirs"]:
        """The finished outcome; "mine" when this caller took over a dead owner's lease; else "theirs"."""
        moment = now()
        async with self._engine.begin() as connection:
            row = (
                await connection.execute(
                    select(handoffs.c.status, handoffs.c.outcome, handoffs.c.updated_at).where(
                        handoffs.c.handoff_id == handoff.handoff_id
                    )
                )
            ).first()
            if row is None:
                return "theirs"
            if row.status != PENDING:
                return HandoffOutcome.model_validate_json(row.outcome)
            if aware(row.updated_at) >= moment - timedelta(seconds=self.lease_seconds):
                return "theirs"
            taken = await connection.execute(
                handoffs.update()
                .where(
                    handoffs.c.handoff_id == handoff.handoff_id,
                    handoffs.c.status == PENDING,
                    handoffs.c.updated_at == row.updated_at,
                )
                .values(updated_at=moment)
            )
        if taken.rowcount == 1:
            log.warning("handoff_lease_taken_over", handoff_id=handoff.handoff_id)
            return "mine"
        return "theirs"

    async def record_outcome(self, handoff: HandoffMessage, outcome: HandoffOutcome) -> None:
        with translated("recording the handoff outcome"):
            async with self._engine.begin() as connection:
                await connection.execute(
                    handoffs.update()
                    .where(handoffs.c.handoff_id == handoff.handoff_id)
                    .values(
                        status=outcome.status.value,
                        outcome=outcome.model_dump_json(by_alias=True),
                        updated_at=now(),
                    )
                )

"""The handoffs this bot sent and is waiting on: enough to finish each after a restart.

A row is written before the handoff goes out (so a push that arrives before the answer finds it),
and ended by one conditional UPDATE: whichever of the answer, a push or a poll ends it first tells
the user; the others find it ended and change nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_bridge.handoff import HandoffMessage, HandoffOutcome
from bot.store.clock import aware, now
from bot.store.errors import translated
from bot.store.schema import sent_handoffs

WAITING = "waiting"
ENDED = "ended"

# The statements of the hot path, built once: the values come as parameters.
_NOTE = sent_handoffs.update().where(sent_handoffs.c.handoff_id == bindparam("key"))
_END = sent_handoffs.update().where(
    sent_handoffs.c.handoff_id == bindparam("key"), sent_handoffs.c.status == WAITING
)
_GET = select(sent_handoffs).where(sent_handoffs.c.handoff_id == bindparam("key"))


@dataclass(frozen=True)
class SentHandoff:
    handoff: HandoffMessage
    peer: str
    conversation_id: str
    service_url: str
    conversation_type: str
    """personal, groupChat or channel: a notice outside a personal chat keeps the user's context out."""
    notice_activity_id: str | None
    task_id: str | None
    started_at: float
    """Unix time the handoff was first sent."""
    outcome: HandoffOutcome | None
    push_token_sha256: str

    @property
    def handoff_id(self) -> str:
        return self.handoff.handoff_id

    def token_matches(self, token: str) -> bool:
        return hmac.compare_digest(digest(token), self.push_token_sha256)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SentHandoffStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(
        self,
        handoff: HandoffMessage,
        *,
        peer: str,
        conversation_id: str,
        service_url: str,
        push_token: str,
        conversation_type: str = "personal",
    ) -> bool:
        """False when this handoff id was recorded before (nothing is changed)."""
        moment = now()
        with translated("recording a sent handoff"):
            try:
                async with self._engine.begin() as connection:
                    await connection.execute(
                        sent_handoffs.insert(),
                        dict(
                            handoff_id=handoff.handoff_id,
                            peer=peer,
                            status=WAITING,
                            payload=handoff.model_dump_json(by_alias=True),
                            push_token_sha256=digest(push_token),
                            conversation_id=conversation_id,
                            service_url=service_url,
                            conversation_type=conversation_type[:20],
                            created_at=moment,
                            updated_at=moment,
                        ),
                    )
            except IntegrityError:
                return False
        return True

    async def note(
        self, handoff_id: str, *, notice_activity_id: str | None = None, task_id: str | None = None
    ) -> None:
        values: dict[str, object] = {"updated_at": now()}
        if notice_activity_id is not None:
            values["notice_activity_id"] = notice_activity_id
        if task_id is not None:
            values["task_id"] = task_id
        with translated("updating a sent handoff"):
            async with self._engine.begin() as connection:
                await connection.execute(_NOTE, {"key": handoff_id, **values})

    async def end(self, handoff_id: str, outcome: HandoffOutcome) -> bool:
        """True for the one caller that ended it; False when it had ended already."""
        with translated("ending a sent handoff"):
            async with self._engine.begin() as connection:
                result = await connection.execute(
                    _END,
                    {
                        "key": handoff_id,
                        "status": ENDED,
                        "outcome": outcome.model_dump_json(by_alias=True),
                        "updated_at": now(),
                    },
                )
        return result.rowcount == 1

    async def get(self, handoff_id: str) -> SentHandoff | None:
        with translated("reading a sent handoff"):
            async with self._engine.connect() as connection:
                row = (await connection.execute(_GET, {"key": handoff_id})).first()
        return _sent(row) if row is not None else None

    async def waiting(self) -> list[SentHandoff]:
        with translated("reading sent handoffs"):
            async with self._engine.connect() as connection:
                rows = (
                    await connection.execute(select(sent_handoffs).where(sent_handoffs.c.status == WAITING))
                ).all()
        return [_sent(row) for row in rows]


def _sent(row: Row[Any]) -> SentHandoff:
    return SentHandoff(
        handoff=HandoffMessage.model_validate_json(row.payload),
        peer=row.peer,
        conversation_id=row.conversation_id,
        service_url=row.service_url,
        conversation_type=row.conversation_type,
        notice_activity_id=row.notice_activity_id,
        task_id=row.task_id,
        started_at=aware(row.created_at).timestamp(),
        outcome=HandoffOutcome.model_validate_json(row.outcome) if row.outcome else None,
        push_token_sha256=row.push_token_sha256,
    )

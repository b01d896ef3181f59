"""The Teams inbox: each activity id is accepted once, in any replica, and its turn kept until it ends.

An accepted turn is written (``pending``, with what it needs to run) before /api/messages answers,
and marked ``done`` when it has ended. The process running it holds a lease it renews; a turn whose
lease ran out (its process died), or that an earlier run of this same replica left behind, is
taken over with a conditional UPDATE that only one process can win. A redelivered activity whose
turn is still pending joins it (nothing new runs, the user gets one answer); a finished one is
dropped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import ColumnElement, and_, bindparam, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.clock import aware, now
from bot.store.errors import translated
from bot.store.schema import processed_activities as inbox

log = structlog.get_logger(__name__)

PENDING = "pending"
DONE = "done"
# A turn taken over this many times has killed (or outlived) every process that ran it: give up.
MAX_TURN_ATTEMPTS = 5

# Built once: the values come as parameters.
_FINISH = inbox.update().where(
    inbox.c.activity_id == bindparam("key"),
    inbox.c.status == PENDING,
    inbox.c.owner_run == bindparam("run"),
)


@dataclass(frozen=True)
class Owner:
    """Who holds a lease: the replica (stable across its restarts) and this run of it."""

    replica: str
    run: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class Claimed:
    """This process runs the turn now (``taken_over`` when a dead run had it)."""

    turn: str
    taken_over: bool = False


@dataclass(frozen=True)
class Joined:
    """A live run (this process or another replica) has the turn and will answer it."""


@dataclass(frozen=True)
class Answered:
    """The turn has ended already: a redelivery to drop."""


TurnClaim = Claimed | Joined | Answered


@dataclass(frozen=True)
class UnfinishedTurn:
    activity_id: str
    conversation_id: str
    turn: str
    attempts: int
    given_up: bool = False
    """Ended here without running: every process that ran it died (the user gets an apology)."""


class ActivityLedger:
    def __init__(self, engine: AsyncEngine, *, owner: Owner, lease_seconds: float = 30.0) -> None:
        self._engine = engine
        self.owner = owner
        self.lease_seconds = lease_seconds

    async def accept(self, key: str, conversation_id: str) -> bool:
        """True the first time ``key`` is seen (a one-off such as a welcome); nothing is kept to run."""
        with translated("recording the activity"):
            try:
                async with self._engine.begin() as connection:
                    await connection.execute(
                        inbox.insert(),
                        dict(
                            activity_id=key[:255],
                            conversation_id=conversation_id[:255],
                            created_at=now(),
                            status=DONE,
                        ),
                    )
            except IntegrityError:
                return False
        return True

    async def received_at(self, activity_id: str) -> datetime | None:
        """When this activity was first taken (None: never seen), to tell a quick edit from a late one."""
        with translated("reading the activity"):
            async with self._engine.connect() as connection:
                found = (
                    await connection.execute(
                        select(inbox.c.created_at).where(inbox.c.activity_id == activity_id[:255])
                    )
                ).scalar_one_or_none()
        return aware(found) if found is not None else None

    async def claim(self, activity_id: str, conversation_id: str, turn: str) -> TurnClaim:
        """Keep the turn for this process, or say how an earlier delivery of it stands."""
        moment = now()
        with translated("recording the activity"):
            try:
                async with self._engine.begin() as connection:
                    await connection.execute(
                        inbox.insert(),
                        dict(
                            activity_id=activity_id[:255],
                            conversation_id=conversation_id[:255],
                            created_at=moment,
                            status=PENDING,
                            turn=turn,
                            owner_replica=self.owner.replica,
                            owner_run=self.owner.run,
                            lease_until=self._lease_end(moment),
                            attempts=1,
                        ),
                    )
                return Claimed(turn)
            except IntegrityError:
                pass
            if await self._take(activity_id[:255], moment):
                return Claimed(turn, taken_over=True)
            async with self._engine.connect() as connection:
                status = (
                    await connection.execute(
                        select(inbox.c.status).where(inbox.c.activity_id == activity_id[:255])
                    )
                ).scalar()
            return Joined() if status == PENDING else Answered()

    async def finish(self, activity_id: str) -> None:
        with translated("ending the turn"):
            async with self._engine.begin() as connection:
                result = await connection.execute(
                    _FINISH,
                    {
                        "key": activity_id[:255],
                        "run": self.owner.run,
                        "status": DONE,
                        "turn": None,
                        "lease_until": None,
                    },
                )
        if result.rowcount != 1:
            log.warning("turn_lease_lost", activity_id=activity_id)

    async def renew(self) -> None:
        """Extend the lease on every turn this process holds (one statement, however many)."""
        moment = now()
        with translated("renewing turn leases"):
            async with self._engine.begin() as connection:
                await connection.execute(
                    inbox.update()
                    .where(inbox.c.owner_run == self.owner.run, inbox.c.status == PENDING)
                    .values(lease_until=self._lease_end(moment))
                )

    async def take_unfinished(self, limit: int = 100) -> list[UnfinishedTurn]:
        """Pending turns whose process is gone, oldest first, now held by this process."""
        moment = now()
        with translated("taking over unfinished turns"):
            async with self._engine.connect() as connection:
                rows = (
                    await connection.execute(
                        select(inbox)
                        .where(inbox.c.status == PENDING, self._abandoned(moment))
                        .order_by(inbox.c.created_at, inbox.c.activity_id)
                        .limit(limit)
                    )
                ).all()
            taken: list[UnfinishedTurn] = []
            for row in rows:
                if not await self._take(row.activity_id, moment):
                    continue
                if row.turn is None:
                    await self.finish(row.activity_id)
                    continue
                if row.attempts >= MAX_TURN_ATTEMPTS:
                    log.error("turn_given_up", activity_id=row.activity_id, attempts=row.attempts)
                    await self.finish(row.activity_id)
                    taken.append(
                        UnfinishedTurn(
                            row.activity_id, row.conversation_id, row.turn, row.attempts, given_up=True
                        )
                    )
                    continue
                log.warning("turn_taken_over", activity_id=row.activity_id, attempts=row.attempts + 1)
                taken.append(UnfinishedTurn(row.activity_id, row.conversation_id, row.turn, row.attempts + 1))
            return taken

    def _abandoned(self, moment: datetime) -> ColumnElement[bool]:
        """A pending turn no live process holds: its lease ran out, or an earlier run of this very
        replica had it (that run is not running: this one is)."""
        return or_(
            inbox.c.lease_until < moment,
            and_(inbox.c.owner_replica == self.owner.replica, inbox.c.owner_run != self.owner.run),
        )

    async def _take(self, activity_id: str, moment: datetime) -> bool:
        """Hold an abandoned turn: the condition is checked in the UPDATE, so one process wins it."""
        async with self._engine.begin() as connection:
            result = await connection.execute(
                inbox.update()
                .where(inbox.c.activity_id == activity_id, inbox.c.status == PENDING, self._abandoned(moment))
                .values(
                    owner_replica=self.owner.replica,
                    owner_run=self.owner.run,
                    lease_until=self._lease_end(now()),
                    attempts=inbox.c.attempts + 1,
                )
            )
        return result.rowcount == 1

    def _lease_end(self, moment: datetime) -> datetime:
        return moment + timedelta(seconds=self.lease_seconds)

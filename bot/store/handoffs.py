"""The handoff ledger (``a2a_bridge.jobs.HandoffLedger``): each received handoff is carried out once.

A handoff is known by its caller and its id (senders choose ids, and may repeat another's). A claim
is an INSERT that only one request, in any replica, can win; it stores what another replica needs
to finish the handoff if the winner dies (the handoff, the A2A task, where to push its end). The owner
renews its lease while it works; a handoff pending past its lease is taken over, by one replica,
with a conditional UPDATE.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlalchemy import and_, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_bridge.handoff import HandoffMessage, HandoffOutcome
from a2a_bridge.jobs import Busy, Claim, Claimed, Finished, HandoffJob
from a2a_bridge.push import PushTarget
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

    async def claim(self, job: HandoffJob) -> Claim:
        """Claimed when this request now owns the handoff; else how it stands."""
        with translated("claiming the handoff"):
            if await self._insert(job):
                return Claimed()
            return await self._look(job)

    async def _insert(self, job: HandoffJob) -> bool:
        created = now()
        handoff = job.handoff
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    handoffs.insert(),
                    dict(
                        handoff_id=handoff.handoff_id,
                        from_bot=handoff.from_,
                        to_bot=self._bot_name,
                        aad_object_id=handoff.aad_object_id,
                        tenant_id=handoff.tenant_id,
                        status=PENDING,
                        outcome=None,
                        created_at=created,
                        updated_at=created,
                        caller=job.caller,
                        payload=handoff.model_dump_json(by_alias=True),
                        task_id=job.task_id,
                        context_id=job.context_id,
                        push_target=job.push.to_json() if job.push is not None else None,
                    ),
                )
        except IntegrityError:
            return False
        return True

    async def _look(self, job: HandoffJob) -> Claim:
        async with self._engine.connect() as connection:
            row = (await connection.execute(_LOOK, _keys(job))).first()
        if row is None:
            return Busy(task_id=job.task_id)
        if row.status != PENDING:
            return Finished(
                HandoffOutcome.model_validate_json(row.outcome), task_id=row.task_id or job.task_id
            )
        # Pending in another request: a dead owner's lease is taken over by the sweep, not here,
        # so that a handoff is resumed in one place.
        return Busy(task_id=row.task_id or job.task_id)

    async def renew(self, job: HandoffJob) -> None:
        with translated("renewing the handoff lease"):
            async with self._engine.begin() as connection:
                await connection.execute(_RENEW, {**_keys(job), "updated_at": now()})

    async def take_over_expired(self) -> list[HandoffJob]:
        """The pending handoffs whose owner stopped renewing its lease, now owned by this caller."""
        moment = now()
        cutoff = moment - timedelta(seconds=self.lease_seconds)
        with translated("taking over expired handoffs"):
            async with self._engine.connect() as connection:
                rows = (
                    await connection.execute(
                        select(
                            handoffs.c.handoff_id,
                            handoffs.c.updated_at,
                            handoffs.c.caller,
                            handoffs.c.payload,
                            handoffs.c.task_id,
                            handoffs.c.context_id,
                            handoffs.c.push_target,
                        ).where(handoffs.c.status == PENDING, handoffs.c.updated_at < cutoff)
                    )
                ).all()
            taken: list[HandoffJob] = []
            for row in rows:
                if row.payload is None or aware(row.updated_at) >= cutoff:
                    continue  # written by a release that did not keep the payload: nothing to resume
                async with self._engine.begin() as connection:
                    result = await connection.execute(
                        handoffs.update()
                        .where(
                            handoffs.c.handoff_id == row.handoff_id,
                            handoffs.c.caller == row.caller,
                            handoffs.c.status == PENDING,
                            handoffs.c.updated_at == row.updated_at,
                        )
                        .values(updated_at=moment)
                    )
                if result.rowcount == 1:
                    log.warning("handoff_lease_taken_over", handoff_id=row.handoff_id)
                    taken.append(
                        HandoffJob(
                            handoff=HandoffMessage.model_validate_json(row.payload),
                            caller=row.caller,
                            task_id=row.task_id or "",
                            context_id=row.context_id or "",
                            push=PushTarget.from_json(row.push_target),
                        )
                    )
            return taken

    async def record_outcome(self, job: HandoffJob, outcome: HandoffOutcome) -> None:
        with translated("recording the handoff outcome"):
            async with self._engine.begin() as connection:
                await connection.execute(
                    _RECORD_OUTCOME,
                    {
                        **_keys(job),
                        "status": outcome.status.value,
                        "outcome": outcome.model_dump_json(by_alias=True),
                        "updated_at": now(),
                    },
                )


def _keys(job: HandoffJob) -> dict[str, str]:
    """The values of ``_THIS`` for this job's row."""
    return {"key": job.handoff.handoff_id, "by": job.caller}


# Built once: the values come as parameters.
_THIS = and_(handoffs.c.handoff_id == bindparam("key"), handoffs.c.caller == bindparam("by"))
_LOOK = select(handoffs.c.status, handoffs.c.outcome, handoffs.c.task_id).where(_THIS)
_RENEW = handoffs.update().where(_THIS, handoffs.c.status == PENDING)
_RECORD_OUTCOME = handoffs.update().where(_THIS)

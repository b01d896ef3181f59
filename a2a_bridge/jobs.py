"""Carrying out accepted handoffs after the A2A call has answered, and finishing their tasks.

The executor answers a handoff with a ``working`` task as soon as the ledger says this request owns
it; the job opens the chat and greets the user while renewing its lease, records the outcome, writes
the ended task, and pushes it to the caller. A replica that finds a handoff whose owner stopped
renewing its lease (it died) takes it over through the same job, so every handoff ends once and its
caller hears of it whichever process finished it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import structlog
from a2a.types import Task
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from a2a_bridge.handoff import HandoffMessage, HandoffOutcome, HandoffStatus, ReasonCode
from a2a_bridge.push import PushTarget
from a2a_bridge.tasks import HandoffTaskStore, TaskRef, save_final
from a2a_bridge.telemetry import A2AMetrics

log = structlog.get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class HandoffJob:
    handoff: HandoffMessage
    caller: str
    """The authenticated peer, ``""`` for an anonymous one (local development)."""
    task_id: str
    context_id: str
    push: PushTarget | None = None
    """Where the caller asked to be told of the end (kept with the claim, for a takeover too)."""

    @property
    def ref(self) -> TaskRef:
        return TaskRef(self.task_id, self.context_id)


@dataclass(frozen=True)
class Claimed:
    """This request owns the handoff now."""


@dataclass(frozen=True)
class Busy:
    """Another request (here or in another replica) is carrying it out."""

    task_id: str


@dataclass(frozen=True)
class Finished:
    outcome: HandoffOutcome
    task_id: str


Claim = Claimed | Busy | Finished


class HandoffLedger(Protocol):
    """Durable memory of handoffs received: each is carried out once, and finished if its owner dies."""

    lease_seconds: float

    async def claim(self, job: HandoffJob) -> Claim: ...

    async def renew(self, job: HandoffJob) -> None: ...

    async def take_over_expired(self) -> list[HandoffJob]: ...

    async def record_outcome(self, job: HandoffJob, outcome: HandoffOutcome) -> None: ...


class GreetingDelivery(Protocol):
    """What the bot does for a handoff: open a 1:1 with the user, run its agent, send the greeting.

    It returns an outcome rather than raising."""

    async def deliver(self, handoff: HandoffMessage) -> HandoffOutcome: ...


class TaskPusher(Protocol):
    async def push(self, task: Task, caller: str, requested: PushTarget | None = None) -> None: ...


async def _persistently(what: str, write: Callable[[], Awaitable[T]], attempts: int = 5) -> T | None:
    """A write retried with backoff; None (and an error line) if it never succeeds."""
    try:
        async for attempt in AsyncRetrying(
            wait=wait_exponential(multiplier=0.2, max=5.0), stop=stop_after_attempt(attempts), reraise=True
        ):
            with attempt:
                return await write()
    except Exception:
        log.exception("handoff_write_failure", write=what)
    return None


class HandoffJobs:
    def __init__(
        self,
        *,
        receiver: str,
        ledger: HandoffLedger,
        delivery: GreetingDelivery,
        task_store: HandoffTaskStore,
        pusher: TaskPusher | None = None,
        metrics: A2AMetrics | None = None,
    ) -> None:
        self._receiver = receiver
        self._ledger = ledger
        self._delivery = delivery
        self._task_store = task_store
        self._pusher = pusher
        self._metrics = metrics
        self._running: dict[str, asyncio.Task[HandoffOutcome]] = {}

    def start(self, job: HandoffJob) -> asyncio.Task[HandoffOutcome]:
        """Run ``job`` in the background; the returned task ends with its outcome."""
        running = self._running.get(job.task_id)
        if running is None:
            fields = structlog.contextvars.get_contextvars()
            running = asyncio.create_task(self._run(job, fields), name=f"handoff:{job.handoff.handoff_id}")
            self._running[job.task_id] = running
            running.add_done_callback(lambda _: self._running.pop(job.task_id, None))
        return running

    def running(self, task_id: str) -> asyncio.Task[HandoffOutcome] | None:
        """The job of this task, if it runs in this process."""
        return self._running.get(task_id)

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def sweep(self) -> int:
        """Take over handoffs whose owner died; how many were taken."""
        jobs = await self._ledger.take_over_expired()
        for job in jobs:
            self.start(job)
        return len(jobs)

    async def sweep_forever(self, every: float) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # the store may be briefly away; the next sweep tries again
                log.exception("handoff_sweep_failure")
            await asyncio.sleep(every)

    async def drain(self, grace_seconds: float) -> None:
        """On shutdown: let running handoffs end; what does not is left to another replica's sweep."""
        if not self._running:
            return
        _, pending = await asyncio.wait(list(self._running.values()), timeout=grace_seconds)
        for task in pending:
            task.cancel()

    async def _run(self, job: HandoffJob, fields: dict[str, object]) -> HandoffOutcome:
        with structlog.contextvars.bound_contextvars(**{**fields, "handoff_id": job.handoff.handoff_id}):
            started = time.perf_counter()
            async with self._lease(job):
                outcome = await self._deliver(job)
            log.info(
                "handoff_done",
                status=outcome.status.value,
                reason_code=outcome.reason_code.value if outcome.reason_code else None,
                duration_ms=round((time.perf_counter() - started) * 1000),
            )
            if self._metrics is not None:
                sender = self._metrics.peer_label(job.handoff.from_)
                self._metrics.handoffs_received.labels(sender, outcome.status.value).inc()
            # The user has been greeted (or not) by now: what follows must not be lost to a brief
            # store failure, or a takeover would greet them again.
            await _persistently("record_outcome", lambda: self._ledger.record_outcome(job, outcome))
            task = await _persistently(
                "save_task", lambda: save_final(self._task_store, job.ref, job.caller, outcome)
            )
            if self._pusher is not None and task is not None:
                await self._pusher.push(task, job.caller, job.push)
            return outcome

    async def _deliver(self, job: HandoffJob) -> HandoffOutcome:
        try:
            return await self._delivery.deliver(job.handoff)
        except Exception:
            log.exception("greeting_failure")
            return HandoffOutcome(
                handoff_id=job.handoff.handoff_id,
                status=HandoffStatus.FAILED,
                peer=self._receiver,
                reason=f"{self._receiver} ran into an internal problem; please try again later.",
                reason_code=ReasonCode.INTERNAL,
            )

    @contextlib.asynccontextmanager
    async def _lease(self, job: HandoffJob) -> AsyncIterator[None]:
        """Renew the lease while the job works, so no other replica takes it over meanwhile."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self._ledger.lease_seconds / 3)
                try:
                    await self._ledger.renew(job)
                except Exception:
                    log.warning("handoff_lease_renewal_failure")

        renewing = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

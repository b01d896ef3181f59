"""Running turns in the background, one conversation's turns in order.

Teams waits for /api/messages to answer (and retries after ~15 s); a model may take longer. So the
request only records the activity and schedules the turn; the answer is sent to the conversation
when it is ready. Shutdown waits for turns in flight (bounded), and names any it had to abandon.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


class TurnRunner:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}
        self._tasks: dict[asyncio.Task[None], str] = {}

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def submit(self, conversation_id: str, turn: Callable[[], Awaitable[None]]) -> None:
        """Queue a turn behind the conversation's earlier ones (asyncio locks wake waiters in order)."""
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        self._waiting[conversation_id] = self._waiting.get(conversation_id, 0) + 1

        async def run() -> None:
            try:
                async with lock:
                    await turn()
            finally:
                self._waiting[conversation_id] -= 1
                if not self._waiting[conversation_id]:
                    del self._waiting[conversation_id]
                    del self._locks[conversation_id]

        task = asyncio.create_task(run(), name=f"turn:{conversation_id}")
        self._tasks[task] = conversation_id
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("turn_crashed", exc_info=task.exception())

    async def drain(self, grace_seconds: float) -> None:
        """Let turns in flight finish; after ``grace_seconds`` cancel the rest and log which they were."""
        if not self._tasks:
            return
        log.info("turns_draining", in_flight=len(self._tasks))
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
        for task in pending:
            log.error("turn_abandoned", conversation_id=self._tasks.get(task, "?"))
            task.cancel()
        if pending:
            await asyncio.wait(pending)

"""SQLite on the event loop's own thread: aiosqlite's connection, without its worker thread.

aiosqlite runs every call (cursor, execute, fetch, commit, the pool's reset) on a thread of its
own and hands the result back through the event loop: four to six thread round trips per
statement, each one a GIL hand-over and a loop wake-up. For this store's statements (a row by its
key, on a local file in WAL mode) the round trips cost far more CPU and latency than SQLite's own
work, which is tens of microseconds. So the statements run where they are awaited; SQLAlchemy's
aiosqlite dialect takes the connection through its supported ``async_creator`` hook and sees no
difference.

The trade: a statement blocks the loop while it runs. With one connection per process (the engine's
pool holds one), SQLite's file lock is never contended from inside the process; the process that
owns a SQLite file is its only writer (replicas need PostgreSQL), so ``busy_timeout`` waits only for
another process that writes the file now and then (a ``doctor`` run); a backup only reads, and in
WAL mode readers never block the writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

import aiosqlite

T = TypeVar("T")


class LoopThreadConnection(aiosqlite.Connection):
    def __init__(self, database: str) -> None:
        super().__init__(lambda: sqlite3.connect(database), iter_chunk_size=64)

    async def _execute(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> LoopThreadConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, LoopThreadConnection]:
        return self._connect().__await__()

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def loop_thread_connector(database: str) -> Callable[[], Awaitable[LoopThreadConnection]]:
    """The ``async_creator`` for ``create_async_engine``."""

    async def connect() -> LoopThreadConnection:
        return await LoopThreadConnection(database)

    return connect

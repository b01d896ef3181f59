"""A circuit breaker per peer: stop calling a peer that keeps failing, probe again after a cool-down.

closed -> (``threshold`` consecutive failures) -> open -> (``cooldown`` elapsed) -> half-open: one
probe call is let through; its success closes the breaker, its failure opens it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self, *, threshold: int = 5, cooldown: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = threshold
        self._cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._cooldown:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """Whether a call may go ahead now (a half-open breaker lets one probe through)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def record_success(self) -> None:
        self._failures, self._opened_at, self._probing = 0, None, False

    def release(self) -> None:
        """The call ended without telling anything about the peer (it was cancelled): free the probe."""
        self._probing = False

    def record_failure(self) -> None:
        self._failures += 1
        self._probing = False
        if self._failures >= self._threshold or self._opened_at is not None:
            self._opened_at = self._clock()

    def guard(self, *, records: bool = True) -> BreakerGuard:
        """Wrap one call: exactly one outcome is recorded for it, whichever way it ends (none with
        ``records=False``: a call that must neither wait on the breaker nor trip it)."""
        return BreakerGuard(self, records=records)


class BreakerGuard:
    """``with breaker.guard() as call: ... call.succeeded()``: leaving the block without saying so
    records a failure (an error nobody expected), or, for a cancellation, only frees the probe
    slot; either way a probe slot is never kept."""

    def __init__(self, breaker: CircuitBreaker, *, records: bool = True) -> None:
        self._breaker = breaker
        self._recorded = not records

    def succeeded(self) -> None:
        if not self._recorded:
            self._recorded = True
            self._breaker.record_success()

    def failed(self) -> None:
        if not self._recorded:
            self._recorded = True
            self._breaker.record_failure()

    def __enter__(self) -> BreakerGuard:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None and issubclass(kind, asyncio.CancelledError):
            if not self._recorded:
                self._recorded = True
                self._breaker.release()
            return
        self.failed()

"""Retrying calls to the Bot Connector: transient failures again, with backoff; others never.

Transient: connection failures, 412, 429, 502, 503, 504. A ``Retry-After`` header is honoured
(capped); otherwise the wait grows exponentially with jitter. 400, 401, 403, 404 and 500 are
answers, not accidents, and are returned to the caller at once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx
import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_exponential_jitter

log = structlog.get_logger(__name__)

T = TypeVar("T")
TRANSIENT_STATUSES = frozenset({412, 429, 502, 503, 504})
# What a call to the Bot Connector raises when Teams cannot be reached or refused it.
CONNECTOR_UNREACHABLE = (httpx.HTTPError, httpx.InvalidURL)
RETRY_AFTER_CAP_SECONDS = 30.0
# A send that timed out while reading may have been delivered: only failures to connect are safe
# to repeat for a non-idempotent call.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def is_transient(error: BaseException) -> bool:
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code in TRANSIENT_STATUSES
    return isinstance(error, NOT_SENT)


def retry_after_seconds(error: BaseException | None) -> float | None:
    if not isinstance(error, httpx.HTTPStatusError):
        return None
    value = error.response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, RETRY_AFTER_CAP_SECONDS))


class _Wait:
    def __init__(self) -> None:
        self._backoff = wait_exponential_jitter(initial=0.5, max=8.0, jitter=0.5)

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        hinted = retry_after_seconds(error)
        return hinted if hinted is not None else float(self._backoff(state))


Observer = Callable[[str, str, float], None]
"""Told (call, status, seconds) about every attempt: the metrics hook."""


async def call_connector(
    what: str,
    call: Callable[[], Awaitable[T]],
    *,
    observe: Observer | None = None,
    turn: Callable[[], Awaitable[None]] | None = None,
    attempts: int = 4,
    budget_seconds: float = 60.0,
) -> T:
    """``turn``: awaited before each attempt (outbound pacing); not counted in the call's time."""

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        status = error.response.status_code if isinstance(error, httpx.HTTPStatusError) else None
        log.warning(
            "connector_retry",
            call=what,
            attempt=state.attempt_number,
            connector_status=status,
            reason=type(error).__name__,
            wait_s=round(state.upcoming_sleep, 2),
        )

    async for attempt in AsyncRetrying(
        retry=retry_if_exception(is_transient),
        wait=_Wait(),
        stop=stop_after_attempt(attempts) | stop_after_delay(budget_seconds),
        before_sleep=log_retry,
        reraise=True,
    ):
        with attempt:
            if turn is not None:
                await turn()
            return await _timed(what, call, observe)
    raise AssertionError("unreachable: tenacity either returns or re-raises")


async def _timed(what: str, call: Callable[[], Awaitable[T]], observe: Observer | None) -> T:
    started = time.perf_counter()
    status = "error"
    try:
        result = await call()
        status = "2xx"
        return result
    except httpx.HTTPStatusError as error:
        status = str(error.response.status_code)
        raise
    finally:
        if observe is not None:
            observe(what, status, time.perf_counter() - started)

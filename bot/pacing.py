"""Outbound pacing: calls to the Bot Connector queue below Teams' published limits instead of
meeting a storm of 429s.

Teams throttles a bot per app per tenant (about 50 requests a second) and per conversation (7 a
second, 60 in 30 seconds). A burst of handoffs into one tenant, or a streamed answer, would cross
them; here each call first waits its turn in two leaky buckets, the tenant's and the conversation's.
A bucket lets ``burst`` calls go at once and then ``rate`` a second, so any one second holds at most
``burst + rate`` calls: by default 20 + 30 for a tenant, 5 + 1.8 for a conversation (and 59 in 30
seconds).
The limits are per process: N replicas of one bot may together send N times as much (set the
rates accordingly). A 429 that comes anyway is retried with its ``Retry-After`` (``bot.retry``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog
from aiolimiter import AsyncLimiter

if TYPE_CHECKING:
    from microsoft_teams.api.models import ConversationReference

log = structlog.get_logger(__name__)

# Buckets of idle tenants and conversations are forgotten beyond this many (least recent first).
MAX_BUCKETS = 10_000
SLOW_WAIT_SECONDS = 1.0

Turn = Callable[[], Awaitable[None]]
"""Wait until one more call may go out."""


class OutboundPacer:
    def __init__(
        self,
        *,
        per_tenant: float,
        per_conversation: float,
        tenant_burst: int = 20,
        conversation_burst: int = 5,
    ) -> None:
        """Rates in calls a second; 0 turns that bucket off (a stand-in connector has no limits)."""
        self._per_tenant = (tenant_burst, per_tenant)
        self._per_conversation = (conversation_burst, per_conversation)
        self._tenants: OrderedDict[str, AsyncLimiter] = OrderedDict()
        self._conversations: OrderedDict[str, AsyncLimiter] = OrderedDict()

    def turn(self, tenant_id: str, conversation_id: str | None) -> Turn:
        """What a call into ``conversation_id`` (None: a new one) of ``tenant_id`` awaits first."""

        async def wait() -> None:
            started = time.perf_counter()
            if conversation_id is not None:
                await self._bucket(self._conversations, conversation_id, self._per_conversation).acquire()
            await self._bucket(self._tenants, tenant_id, self._per_tenant).acquire()
            waited = time.perf_counter() - started
            if waited >= SLOW_WAIT_SECONDS:
                log.info("connector_paced", waited_s=round(waited, 2))

        return wait

    def turn_into(self, to: ConversationReference) -> Turn:
        """``turn`` for a call into the conversation of a stored reference."""
        return self.turn(to.conversation.tenant_id or "", to.conversation.id)

    def free_now(self, to: ConversationReference) -> bool:
        """Whether a call into that conversation could go out without waiting (for what is not
        worth a wait: typing)."""
        tenant, conversation = to.conversation.tenant_id or "", to.conversation.id
        return self._bucket(self._conversations, conversation, self._per_conversation).has_capacity() and (
            self._bucket(self._tenants, tenant, self._per_tenant).has_capacity()
        )

    @staticmethod
    def _bucket(
        buckets: OrderedDict[str, AsyncLimiter], key: str, shape: tuple[int, float]
    ) -> AsyncLimiter | _Open:
        burst, rate = shape
        if rate <= 0:
            return _OPEN
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = AsyncLimiter(max_rate=burst, time_period=burst / rate)
            if len(buckets) > MAX_BUCKETS:
                buckets.popitem(last=False)
        else:
            buckets.move_to_end(key)
        return bucket


class _Open:
    """A bucket that never makes anyone wait."""

    async def acquire(self) -> None:
        return None

    def has_capacity(self) -> bool:
        return True


_OPEN = _Open()

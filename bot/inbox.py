"""Accepted Teams turns, from the moment /api/messages takes one to the moment it has ended.

A turn is written to the store before the request answers 2xx, run in the background (one
conversation's turns in order), and marked done only when it has ended: answered, or apologised for.
Whatever a process leaves unfinished (it was killed) is run again: at once by its own next run, or
by another replica when its lease runs out. A turn that fails because no Bot Framework token can be
had waits, with backoff, for the credential to be fixed instead of being lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from microsoft_teams.api.models.conversation.conversation_reference import ConversationReference
from pydantic import BaseModel, ConfigDict, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from bot.identity import TurnIdentity
from bot.store import StoreError
from bot.store.activities import ActivityLedger, Claimed, TurnClaim
from bot.store.consent import ConsentChoice
from bot.turns import TurnRunner

log = structlog.get_logger(__name__)

MAX_CREDENTIAL_WAIT_SECONDS = 300.0


class PendingTurn(BaseModel):
    """Everything a turn needs to run, kept in the inbox until it ends."""

    model_config = ConfigDict(frozen=True)

    reference: ConversationReference
    identity: TurnIdentity
    """Carries the activity id as ``turn_id``."""
    text: str
    choice: ConsentChoice | None = None
    """The user's press on a consent card; otherwise ``text`` is their message."""

    @property
    def activity_id(self) -> str:
        return self.identity.turn_id


class NoToken(Exception):
    """The turn could not reach Teams because no Bot Framework token could be had."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


TurnBody = Callable[[PendingTurn], Awaitable[None]]


class TurnInbox:
    def __init__(
        self, *, ledger: ActivityLedger, turns: TurnRunner, body: TurnBody, apology: TurnBody
    ) -> None:
        self._ledger = ledger
        self._turns = turns
        self._body = body
        self._apology = apology

    async def accept(self, turn: PendingTurn) -> TurnClaim:
        """Kept and scheduled (Claimed), already held by a live run (Joined), or done (Answered)."""
        claim = await self._ledger.claim(
            turn.activity_id, turn.identity.conversation_id, turn.model_dump_json()
        )
        if isinstance(claim, Claimed):
            if claim.taken_over:
                log.warning("turn_resumed", reason="redelivered after its process stopped")
            self._submit(turn)
        return claim

    async def resume(self) -> None:
        """Run what a stopped process left, oldest first."""
        taken = await self._ledger.take_unfinished()
        for unfinished in taken:
            try:
                turn = PendingTurn.model_validate_json(unfinished.turn)
            except ValidationError:
                log.error("turn_unreadable", activity_id=unfinished.activity_id)
                await self._ledger.finish(unfinished.activity_id)
                continue
            if unfinished.given_up:
                await self._apology(turn)
                continue
            log.info("turn_resumed", activity_id=turn.activity_id, attempt=unfinished.attempts)
            self._submit(turn)

    async def keep_forever(self) -> None:
        """Renew this process's leases, and take over turns whose process died, every third of a lease."""
        every = max(self._ledger.lease_seconds / 3, 0.1)
        while True:
            await asyncio.sleep(every)
            try:
                await self._ledger.renew()
                await self.resume()
            except StoreError as error:
                log.warning("inbox_unavailable", reason=str(error))

    def _submit(self, turn: PendingTurn) -> None:
        self._turns.submit(turn.identity.conversation_id, lambda: self._run(turn))

    async def _run(self, turn: PendingTurn) -> None:
        with structlog.contextvars.bound_contextvars(
            conversation_id=turn.identity.conversation_id, activity_id=turn.activity_id
        ):
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(NoToken),
                    wait=wait_exponential_jitter(initial=1, max=MAX_CREDENTIAL_WAIT_SECONDS, jitter=1),
                    before_sleep=_waiting_for_credential,
                ):
                    with attempt:
                        await self._body(turn)
            except Exception:
                log.exception("turn_crashed")
                await self._apology(turn)
            try:
                await self._ledger.finish(turn.activity_id)
            except StoreError:
                log.exception("turn_not_marked_done")


def _waiting_for_credential(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.error(
        "turn_waiting_for_credential",
        reason=error.reason if isinstance(error, NoToken) else "?",
        attempt=state.attempt_number,
        retry_in_s=round(state.upcoming_sleep, 1),
    )

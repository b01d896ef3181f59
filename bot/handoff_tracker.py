"""A sent handoff from the moment it is decided to the moment the user is told how it ended.

The user sees "Connecting you to Bob…" at once. A peer that takes push notifications answers with a
``working`` task and posts its end to ``/a2a/push/{handoffId}``; a peer that does not answers with the
outcome, or with a task that is polled (``GetTask``) until it ends. Polling also covers a push that
never comes. No fixed timeout decides what the user is told: a handoff in progress stays in progress
up to ``wait_seconds``, after which the user hears the honest state (unconfirmed). Whichever way the
end arrives first edits the notice, once (``SentHandoffStore.end``). Everything needed to finish
lives in the store, so a restarted bot resumes what it was waiting on.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import Coroutine
from dataclasses import dataclass

import structlog
from a2a.types import StreamResponse, Task

from a2a_bridge.answers import CallFailure, FailureKind, InProgress, outcome_from_answer
from a2a_bridge.handoff import HandoffMessage, HandoffOutcome, HandoffStatus, ReasonCode
from a2a_bridge.peer_client import PeerClient
from a2a_bridge.push import PushTarget
from a2a_bridge.push_inbox import PushVerdict
from a2a_bridge.telemetry import A2AMetrics
from bot.identity import TurnIdentity
from bot.notices import Notice, NoticeBoard
from bot.prompts import Templates
from bot.store.errors import StoreError
from bot.store.sent import SentHandoff, SentHandoffStore

log = structlog.get_logger(__name__)

MAX_POLL_INTERVAL_SECONDS = 30.0
# The only chat link a notice shows: Teams' own deep link to a 1:1 with a bot (peers' words are not
# put into the user's chat as markup).
TEAMS_CHAT_LINK = re.compile(r"https://teams\.microsoft\.com/l/chat/0/0\?users=28:[A-Za-z0-9-]{1,64}")


@dataclass(frozen=True)
class TrackerPolicy:
    push_url: str | None
    """Where peers post the end of a handoff (``{BOT_SELF_URL}/a2a/push``), None to rely on polling."""
    wait_seconds: float = 600.0
    poll_seconds: float = 5.0
    lost_after_seconds: float = 60.0
    """A peer that took the handoff and then cannot be reached for this long has lost it."""


class HandoffTracker:
    def __init__(
        self,
        *,
        bot_name: str,
        peers: PeerClient,
        sent: SentHandoffStore,
        notices: NoticeBoard,
        prompts: Templates,
        policy: TrackerPolicy,
        metrics: A2AMetrics | None = None,
    ) -> None:
        self._bot_name = bot_name
        self._peers = peers
        self._sent = sent
        self._notices = notices
        self._prompts = prompts
        self._policy = policy
        self._metrics = metrics
        self._watching: dict[str, asyncio.Task[None]] = {}
        self._posting: dict[str, asyncio.Task[None]] = {}

    # Starting -------------------------------------------------------------------------------------

    async def begin(
        self, identity: TurnIdentity, peer: str, handoff: HandoffMessage
    ) -> HandoffOutcome | None:
        """Tell the user it has started, send it; the outcome if the peer already gave one."""
        token = secrets.token_urlsafe(32)
        recorded = await self._sent.record(
            handoff,
            peer=peer,
            conversation_id=identity.conversation_id,
            service_url=identity.service_url,
            push_token=token,
            conversation_type=identity.conversation_type,
        )
        if not recorded:
            # The turn runs again after a crash: this handoff went out before, and is tracked since.
            earlier = await self._sent.get(handoff.handoff_id)
            log.info("handoff_already_sent", handoff_id=handoff.handoff_id)
            return earlier.outcome if earlier is not None else None
        # The notice goes out beside the handoff, not before it: it is off the path to the greeting.
        posting = asyncio.create_task(self._post_notice(identity, peer, handoff))
        self._posting[handoff.handoff_id] = posting
        try:
            return await self._send(handoff, peer, token)
        finally:
            await posting
            self._posting.pop(handoff.handoff_id, None)

    async def knows(self, handoff_id: str) -> bool:
        return await self._sent.get(handoff_id) is not None

    async def _post_notice(self, identity: TurnIdentity, peer: str, handoff: HandoffMessage) -> None:
        """Never raises: without a notice id the outcome is posted as a new message instead."""
        if identity.personal:
            text = self._prompts.render("notice_connecting", bot_name=self._bot_name, peer=peer)
        else:
            text = self._prompts.render("notice_group_connecting", peer=peer, user_name=_name(handoff))
        notice = await self._notices.post(
            identity.service_url,
            identity.conversation_id,
            identity.tenant_id,
            Notice(text, peer, passed_on=handoff.summary if identity.personal else None),
        )
        if notice is None:
            return
        try:
            await self._sent.note(handoff.handoff_id, notice_activity_id=notice)
        except StoreError:
            log.exception("notice_not_recorded", handoff_id=handoff.handoff_id)

    async def _send(self, handoff: HandoffMessage, peer: str, token: str | None) -> HandoffOutcome | None:
        push = (
            PushTarget(url=f"{self._policy.push_url}/{handoff.handoff_id}", token=token)
            if token is not None and self._policy.push_url is not None and self._peers.takes_push(peer)
            else None
        )
        answer = await self._peers.send_handoff(peer, handoff, push=push)
        if isinstance(answer, InProgress):
            log.info(
                "handoff_in_progress", peer=peer, handoff_id=handoff.handoff_id, a2a_task_id=answer.task_id
            )
            await self._sent.note(handoff.handoff_id, task_id=answer.task_id)
            self._watch(handoff.handoff_id)
            return None
        await self.end(handoff.handoff_id, answer)
        return answer

    # Ending -----------------------------------------------------------------------------------------

    async def end(self, handoff_id: str, outcome: HandoffOutcome, sent: SentHandoff | None = None) -> bool:
        """Tell the user how it ended, if nobody has yet. True for the one call that did."""
        posting = self._posting.get(handoff_id)
        if posting is not None:
            await asyncio.shield(posting)  # edit the "Connecting…" notice, never overtake it
            sent = None  # read again: the notice's id has just been written
        sent = sent or await self._sent.get(handoff_id)
        if sent is None or not await self._sent.end(handoff_id, outcome):
            return False
        watcher = self._watching.pop(handoff_id, None)
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
        await self._notices.replace(
            sent.service_url,
            sent.conversation_id,
            sent.handoff.tenant_id,
            sent.notice_activity_id,
            self._notice_of(sent, outcome),
        )
        reason = outcome.reason_code.value if outcome.reason_code else "none"
        log.info(
            "handoff_outcome",
            peer=sent.peer,
            handoff_id=handoff_id,
            status=outcome.status.value,
            reason_code=reason,
            duration_ms=round((time.time() - sent.started_at) * 1000),
        )
        if self._metrics is not None:
            self._metrics.handoffs_sent.labels(sent.peer, outcome.status.value, reason).inc()
        return True

    def _notice_of(self, sent: SentHandoff, outcome: HandoffOutcome) -> Notice:
        if sent.conversation_type == "personal":
            return Notice(
                self.notice(outcome, with_link=False),
                outcome.peer or sent.peer,
                passed_on=sent.handoff.summary,
                chat_url=self._chat_url(outcome),
            )
        peer, user = outcome.peer or sent.peer, _name(sent.handoff)
        if outcome.status is HandoffStatus.DELIVERED:
            return Notice(self._prompts.render("notice_group_delivered", peer=peer, user_name=user), peer)
        text = self._prompts.render(
            "notice_group_failed", peer=peer, user_name=user, reason=self._reason(outcome, peer)
        )
        return Notice(text, peer)

    def _chat_url(self, outcome: HandoffOutcome) -> str | None:
        if outcome.status is not HandoffStatus.DELIVERED or not outcome.chat_url:
            return None
        return outcome.chat_url if TEAMS_CHAT_LINK.fullmatch(outcome.chat_url) else None

    def _reason(self, outcome: HandoffOutcome, peer: str) -> str:
        code = outcome.reason_code or (
            ReasonCode.UNCONFIRMED if outcome.status is HandoffStatus.UNCONFIRMED else ReasonCode.UNKNOWN
        )
        return self._prompts.render(f"reason_{code.value}", peer=peer)

    def notice(self, outcome: HandoffOutcome, *, with_link: bool = True) -> str:
        """What the user is told: templates chosen by the outcome, so it says exactly what happened."""
        peer = outcome.peer
        if outcome.status is HandoffStatus.DELIVERED:
            chat_url = self._chat_url(outcome) if with_link else None
            link = (
                " " + self._prompts.render("notice_chat_link", peer=peer, chat_url=chat_url)
                if chat_url
                else ""
            )
            return self._prompts.render(
                "notice_delivered", bot_name=self._bot_name, peer=peer, chat_link=link
            )
        reason = self._reason(outcome, peer)
        template = "notice_unconfirmed" if outcome.status is HandoffStatus.UNCONFIRMED else "notice_failed"
        return self._prompts.render(template, bot_name=self._bot_name, peer=peer, reason=reason)

    # Push notifications -------------------------------------------------------------------------------

    async def receive(self, handoff_id: str, task: Task, *, token: str, caller: str | None) -> PushVerdict:
        sent = await self._sent.get(handoff_id)
        if sent is None or sent.outcome is not None:
            log.warning("push_refused", handoff_id=handoff_id, reason="no handoff waits under that id")
            return PushVerdict.UNKNOWN
        if not sent.token_matches(token) or (caller is not None and caller != sent.peer):
            log.warning("push_refused", handoff_id=handoff_id, reason="token or caller does not match")
            return PushVerdict.UNAUTHORIZED
        if sent.task_id is not None and task.id != sent.task_id:
            log.warning("push_refused", handoff_id=handoff_id, reason="another task")
            return PushVerdict.UNAUTHORIZED
        answer = outcome_from_answer(StreamResponse(task=task), sent.handoff, sent.peer)
        log.info("push_received", handoff_id=handoff_id, state=task.status.state)
        if isinstance(answer, HandoffOutcome):
            await self.end(handoff_id, answer, sent)
        return PushVerdict.ACCEPTED

    # Polling, and resuming after a restart ----------------------------------------------------------

    async def resume(self) -> int:
        """Pick up every handoff this bot was waiting on when it stopped; how many."""
        waiting = await self._sent.waiting()
        for sent in waiting:
            log.info("handoff_resumed", handoff_id=sent.handoff_id, peer=sent.peer)
            if sent.task_id is None:
                # Stopped before the peer answered: send again (the peer dedupes by handoff id).
                self._spawn(sent.handoff_id, self._resend(sent))
            else:
                self._watch(sent.handoff_id)
        return len(waiting)

    async def _resend(self, sent: SentHandoff) -> None:
        await self._peers.refresh()
        # The push token is not kept in clear: a resent handoff is followed by polling.
        await self._send(sent.handoff, sent.peer, None)

    def _watch(self, handoff_id: str) -> None:
        self._spawn(handoff_id, self._poll(handoff_id))

    def _spawn(self, handoff_id: str, work: Coroutine[object, object, None]) -> None:
        existing = self._watching.get(handoff_id)
        if existing is not None and not existing.done() and existing is not asyncio.current_task():
            existing.cancel()
        task = asyncio.create_task(work, name=f"handoff-watch:{handoff_id}")
        self._watching[handoff_id] = task
        task.add_done_callback(lambda done: self._forget(handoff_id, done))

    def _forget(self, handoff_id: str, done: asyncio.Task[None]) -> None:
        if self._watching.get(handoff_id) is done:
            del self._watching[handoff_id]
        if not done.cancelled() and done.exception() is not None:
            log.error("handoff_watch_failure", handoff_id=handoff_id, error=repr(done.exception()))

    async def _poll(self, handoff_id: str) -> None:
        delay = self._policy.poll_seconds
        unreachable_since: float | None = None
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_POLL_INTERVAL_SECONDS)
            try:
                ended, unreachable_since = await self._poll_once(handoff_id, unreachable_since)
            except Exception:  # a store or connector hiccup: keep watching, the next poll tries again
                log.exception("handoff_poll_failure", handoff_id=handoff_id)
                continue
            if ended:
                return
            if unreachable_since is not None:
                delay = min(delay, self._policy.poll_seconds * 2)  # notice soon when the peer is back

    async def _poll_once(self, handoff_id: str, unreachable_since: float | None) -> tuple[bool, float | None]:
        """One look at the peer's task: whether the handoff has ended, and since when the peer has
        been unreachable (None while it answers)."""
        sent = await self._sent.get(handoff_id)
        if sent is None or sent.outcome is not None or sent.task_id is None:
            return True, None
        if time.time() - sent.started_at > self._policy.wait_seconds:
            log.warning("handoff_wait_exceeded", handoff_id=handoff_id, peer=sent.peer)
            await self.end(handoff_id, _unconfirmed(sent, ReasonCode.UNCONFIRMED), sent)
            return True, None
        state = await self._peers.task_state(sent.peer, sent.task_id, sent.handoff)
        if isinstance(state, HandoffOutcome):
            await self.end(handoff_id, state, sent)
            return True, None
        if isinstance(state, InProgress):
            return False, None
        unreachable_since = self._lost_or_waiting(state, unreachable_since)
        if time.monotonic() - unreachable_since > self._policy.lost_after_seconds:
            # It took the handoff and went quiet: whether the user was greeted is not known.
            await self.end(handoff_id, _unconfirmed(sent, ReasonCode.PEER_LOST), sent)
            return True, None
        return False, unreachable_since

    @staticmethod
    def _lost_or_waiting(failure: CallFailure, since: float | None) -> float:
        if failure.kind is FailureKind.REFUSED:
            log.warning("handoff_task_unreadable", reason=failure.detail)
        return since if since is not None else time.monotonic()

    async def close(self) -> None:
        watchers = list(self._watching.values())
        for watcher in watchers:
            watcher.cancel()
        for watcher in watchers:
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


def _unconfirmed(sent: SentHandoff, code: ReasonCode) -> HandoffOutcome:
    return HandoffOutcome(
        handoff_id=sent.handoff_id, status=HandoffStatus.UNCONFIRMED, peer=sent.peer, reason_code=code
    )


def _name(handoff: HandoffMessage) -> str:
    return handoff.user_name or "you"

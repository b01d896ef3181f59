"""The Teams surface: what happens when a user's message arrives at /api/messages.

The request does the quick, must-not-lose part (check, keep the turn in the inbox, show typing) and
answers; the turn itself runs in the background (``bot.inbox``), and answers through the turn's
stored conversation reference, so a turn resumed after a restart answers the same way.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

import structlog
from microsoft_teams.api.activities.install_update.add import InstalledActivity
from microsoft_teams.api.activities.message import MessageActivity, MessageUpdateActivity
from microsoft_teams.api.activities.utils import strip_mentions_text
from microsoft_teams.api.models import ConversationReference
from microsoft_teams.apps import ActivityContext, App
from opentelemetry import trace

from bot.agent import BotAgent, TurnResult
from bot.consent import consent_card, consent_choice
from bot.credentials import BotCredential
from bot.handoffs import HandoffSender
from bot.identity import TurnIdentity, addressed, identity_of
from bot.inbox import NoToken, PendingTurn, TurnInbox
from bot.persona import Persona
from bot.replies import Replies
from bot.retry import CONNECTOR_UNREACHABLE
from bot.store import Store, StoreError
from bot.store.activities import Answered, Claimed, Joined
from bot.store.clock import now
from bot.streaming import AnswerStream
from bot.turns import TurnRunner

log = structlog.get_logger(__name__)
tracer = trace.get_tracer("bot")

MAX_USER_TEXT_CHARS = 8000
# An edit this soon after sending is answered as the corrected question (people edit to fix what
# they asked); a later one is a change to history, not a question.
EDIT_WINDOW = timedelta(minutes=2)


class TeamsSurface:
    """What the Teams handlers need; built once by the service."""

    def __init__(
        self,
        *,
        bot_name: str,
        agent: BotAgent,
        sender: HandoffSender,
        store: Store,
        persona: Persona,
        turns: TurnRunner,
        replies: Replies,
        credential: BotCredential,
        tenant_allowlist: list[str],
        streams: Callable[[ConversationReference], AnswerStream] | None = None,
    ) -> None:
        """``streams``: a new stream for an answer in that conversation (None: answers are not
        streamed)."""
        self.bot_name = bot_name
        self.agent = agent
        self.sender = sender
        self.store = store
        self.persona = persona
        self.replies = replies
        self.credential = credential
        self.tenant_allowlist = tenant_allowlist
        self.streams = streams
        self.inbox = TurnInbox(
            ledger=store.activities, turns=turns, body=self._run_turn, apology=self._apologise
        )

    def register(self, app: App) -> None:
        app.on_message(self.on_message)
        app.on_message_update(self.on_message_update)
        app.on_install_add(self.on_install)

    async def on_install(self, ctx: ActivityContext[InstalledActivity]) -> None:
        """A user added the bot: welcome them, once per user (redeliveries and reinstalls stay quiet)."""
        activity = ctx.activity
        if (activity.conversation.conversation_type or "personal") != "personal":
            return
        user = activity.from_.aad_object_id or activity.from_.id
        with structlog.contextvars.bound_contextvars(conversation_id=activity.conversation.id):
            try:
                if not await self.store.activities.accept(f"welcome:{user}", activity.conversation.id):
                    return
                text = self.persona.render(
                    "welcome", bot_name=self.bot_name, bot_description=self.persona.description
                )
                await self.replies.say(ctx.conversation_ref, text)
                log.info("welcome_sent")
            except Exception as error:  # a welcome is a courtesy: never a 5xx for Teams to retry
                log.warning("welcome_failure", reason=type(error).__name__)

    async def on_message(self, ctx: ActivityContext[MessageActivity]) -> None:
        activity = ctx.activity
        with structlog.contextvars.bound_contextvars(
            conversation_id=activity.conversation.id, activity_id=activity.id
        ):
            try:
                await self._accept(ctx)
            except StoreError:
                # Nothing was kept: answered 2xx all the same (a retry would meet the same store),
                # and the user is told.
                log.exception("store_failure")
                await self._best_effort(
                    "apology", self.replies.say(ctx.conversation_ref, self._turn_failed())
                )

    async def on_message_update(self, ctx: ActivityContext[MessageUpdateActivity]) -> None:
        """A message edited soon after it was sent is answered again, as edited: people edit to fix
        the question they asked. Later edits, edits in group chats and undeletes change history,
        not the question, and are only acknowledged."""
        activity = ctx.activity
        event = activity.channel_data.event_type if activity.channel_data is not None else None
        with structlog.contextvars.bound_contextvars(
            conversation_id=activity.conversation.id, activity_id=activity.id
        ):
            identity = identity_of(activity)
            text = (strip_mentions_text(activity) or "").strip()
            if event != "editMessage" or not identity.personal or not text or len(text) > MAX_USER_TEXT_CHARS:
                log.info("edit_ignored", event=event, scope=identity.conversation_type)
                return
            try:
                sent_at = await self.store.activities.received_at(activity.id)
                if sent_at is None or now() - sent_at > EDIT_WINDOW:
                    log.info("edit_ignored", reason="not a message of the last minutes")
                    return
                if not await self._allowed(identity, ctx.conversation_ref):
                    return
                digest = hashlib.sha256(text.encode()).hexdigest()[:16]
                turn = PendingTurn(
                    reference=addressed(ctx.conversation_ref, identity),
                    identity=replace(identity, turn_id=f"{activity.id}:edit:{digest}"),
                    text=self.persona.render("edited_message", text=text),
                )
                claim = await self.inbox.accept(turn)
            except StoreError:
                log.exception("store_failure")
                return
            log.info("edit_accepted", duplicate=not isinstance(claim, Claimed))

    async def _allowed(self, identity: TurnIdentity, to: ConversationReference) -> bool:
        if self.tenant_allowlist and identity.tenant_id not in self.tenant_allowlist:
            log.warning("turn_refused", reason="tenant not allowed")
            await self._best_effort(
                "refusal",
                self.replies.say(to, f"Sorry, {self.bot_name} is not enabled for your organisation."),
            )
            return False
        return True

    async def _accept(self, ctx: ActivityContext[MessageActivity]) -> None:
        activity = ctx.activity
        to = ctx.conversation_ref
        identity = identity_of(activity)
        if not identity.personal and not activity.is_recipient_mentioned():
            # In a group chat or channel the bot speaks when spoken to.
            log.info("message_ignored", reason="not mentioned", scope=identity.conversation_type)
            return
        if not await self._allowed(identity, to):
            return
        choice = consent_choice(activity)
        text = (strip_mentions_text(activity) or "").strip()
        if not text and choice is None:
            await self._best_effort(
                "refusal", self.replies.say(to, "I can only read text messages. Please type your question.")
            )
            return
        if len(text) > MAX_USER_TEXT_CHARS:
            await self._best_effort(
                "refusal",
                self.replies.say(
                    to,
                    f"That message is too long for me ({len(text)} characters; the limit is "
                    f"{MAX_USER_TEXT_CHARS}). Please shorten it.",
                ),
            )
            return
        log.info("message_received", text=text, content=True)
        turn = PendingTurn(
            reference=addressed(to, identity),
            identity=replace(identity, turn_id=activity.id),
            text=text,
            choice=choice,
        )
        claim = await self.inbox.accept(turn)
        if isinstance(claim, Answered):
            log.info("activity_duplicate")
            return
        if isinstance(claim, Joined):
            log.info("activity_duplicate", turn="still running: joined")
            return
        await self._best_effort("typing", self.replies.typing(to))

    async def _run_turn(self, turn: PendingTurn) -> None:
        with tracer.start_as_current_span(
            "teams.turn", attributes={"teams.conversation_id": turn.identity.conversation_id}
        ):
            await self._turn_body(turn)

    async def _turn_body(self, turn: PendingTurn) -> None:
        started = time.perf_counter()
        identity = turn.identity
        # Answers stream where Teams allows it: in personal chats.
        stream = self.streams(turn.reference) if self.streams is not None and identity.personal else None
        try:
            if turn.choice is not None:
                log.info("consent_answered", choice=turn.choice)
                result = TurnResult(reply=await self.sender.resolve_consent(identity, turn.choice))
            else:
                on_text = stream.add if stream is not None else None
                result = await self.agent.run_user_turn(identity, turn.text, on_text=on_text)
        except Exception as error:
            await self._no_token_means_later(error)
            log.exception("turn_failure")
            result = TurnResult(reply=self._turn_failed())
        try:
            answer = result.reply if result.consent_peer is None else None
            # The final message ends the stream; if it cannot, the answer goes as one message.
            streamed = stream is not None and stream.started and await stream.finish(answer or stream.text)
            if result.consent_peer is not None and result.reply is not None:
                await self._ask_consent(turn, result.reply)
            elif answer is not None and not streamed:
                await self.replies.say(turn.reference, answer)
            # else a handoff: its notice is in the chat already
        except CONNECTOR_UNREACHABLE as error:
            log.warning("reply_failure", reason=type(error).__name__)
            return
        except Exception as error:
            await self._no_token_means_later(error)
            log.exception("reply_failure", reason=type(error).__name__)
            return
        log.info("turn_complete", duration_ms=round((time.perf_counter() - started) * 1000))

    async def _ask_consent(self, turn: PendingTurn, question: str) -> None:
        await self.replies.card(turn.reference, consent_card(self.replies.speaker.line(question)))

    async def _no_token_means_later(self, error: Exception) -> None:
        """Raise ``NoToken`` when ``error`` came from a credential that cannot get a token now."""
        if isinstance(error, CONNECTOR_UNREACHABLE):
            return
        problem = await self.credential.problem()
        if problem is not None:
            raise NoToken(problem) from error

    async def _apologise(self, turn: PendingTurn) -> None:
        """A turn that could not be finished however often it was run: the user is told."""
        await self._best_effort("apology", self.replies.say(turn.reference, self._turn_failed()))

    def _turn_failed(self) -> str:
        return self.persona.render("turn_failed", bot_name=self.bot_name)

    async def _best_effort(self, what: str, sending: Awaitable[None]) -> None:
        """Typing, refusals, apologies: any failure is logged, never raised (never a 5xx)."""
        try:
            await sending
        except Exception as error:
            log.info("send_skipped", what=what, reason=type(error).__name__)

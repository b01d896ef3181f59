"""The Teams surface: what happens when a user's message arrives at /api/messages.

The request does the quick, must-not-lose part (check, de-duplicate, show typing) and answers;
the turn itself runs in the background (see ``TurnRunner``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog
from microsoft_teams.api.activities.install_update.add import InstalledActivity
from microsoft_teams.api.activities.message import MessageActivity, MessageActivityInput
from microsoft_teams.api.activities.typing import TypingActivityInput
from microsoft_teams.apps import ActivityContext, App
from opentelemetry import trace

from bot.agent import BotAgent, TurnResult
from bot.consent import consent_card, consent_choice
from bot.handoffs import HandoffSender
from bot.identity import TurnIdentity, identity_of
from bot.persona import Persona
from bot.retry import CONNECTOR_UNREACHABLE, Observer, call_connector
from bot.speaker import speaker_line
from bot.store import Store, StoreError
from bot.store.consent import ConsentChoice
from bot.turns import TurnRunner

log = structlog.get_logger(__name__)
tracer = trace.get_tracer("bot")

MAX_USER_TEXT_CHARS = 8000


@dataclass(frozen=True)
class TeamsSurface:
    """What the Teams handlers need; built once by the service."""

    bot_name: str
    agent: BotAgent
    sender: HandoffSender
    store: Store
    persona: Persona
    turns: TurnRunner
    tenant_allowlist: list[str]
    observe: Observer | None = None

    def register(self, app: App) -> None:
        app.on_message(self.on_message)
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
                await self._say(ctx, text)
                log.info("welcome_sent")
            except (*CONNECTOR_UNREACHABLE, StoreError) as error:
                log.warning("welcome_failure", reason=type(error).__name__)

    async def on_message(self, ctx: ActivityContext[MessageActivity]) -> None:
        activity = ctx.activity
        with structlog.contextvars.bound_contextvars(
            conversation_id=activity.conversation.id, activity_id=activity.id
        ):
            try:
                await self._accept(ctx)
            except CONNECTOR_UNREACHABLE as error:
                log.warning("reply_failure", reason=type(error).__name__)
            except StoreError:
                log.exception("store_failure")
                await _best_effort(self._say(ctx, self.persona.render("turn_failed", bot_name=self.bot_name)))

    async def _say(
        self, ctx: ActivityContext[MessageActivity] | ActivityContext[InstalledActivity], text: str
    ) -> None:
        activity = MessageActivityInput(text=speaker_line(self.bot_name, text))
        await call_connector("send_reply", lambda: ctx.send(activity), observe=self.observe)

    async def _accept(self, ctx: ActivityContext[MessageActivity]) -> None:
        activity = ctx.activity
        identity = identity_of(activity)
        if self.tenant_allowlist and identity.tenant_id not in self.tenant_allowlist:
            log.warning("turn_refused", reason="tenant not allowed")
            await self._say(ctx, f"Sorry, {self.bot_name} is not enabled for your organisation.")
            return
        choice = consent_choice(activity)
        text = (activity.strip_mentions_text().text or "").strip()
        if not text and choice is None:
            await self._say(ctx, "I can only read text messages. Please type your question.")
            return
        if len(text) > MAX_USER_TEXT_CHARS:
            await self._say(
                ctx,
                f"That message is too long for me ({len(text)} characters; the limit is "
                f"{MAX_USER_TEXT_CHARS}). Please shorten it.",
            )
            return
        log.info("message_received", text=text, content=True)
        if not await self.store.activities.accept(activity.id, identity.conversation_id):
            log.info("activity_duplicate")
            return
        await _best_effort(ctx.send(TypingActivityInput()))
        fields = structlog.contextvars.get_contextvars()
        self.turns.submit(
            identity.conversation_id, lambda: self._run_turn(ctx, identity, text, choice, fields)
        )

    async def _run_turn(
        self,
        ctx: ActivityContext[MessageActivity],
        identity: TurnIdentity,
        text: str,
        choice: ConsentChoice | None,
        fields: dict[str, object],
    ) -> None:
        with (
            structlog.contextvars.bound_contextvars(**fields),
            tracer.start_as_current_span(
                "teams.turn", attributes={"teams.conversation_id": identity.conversation_id}
            ),
        ):
            await self._turn_body(ctx, identity, text, choice)

    async def _turn_body(
        self,
        ctx: ActivityContext[MessageActivity],
        identity: TurnIdentity,
        text: str,
        choice: ConsentChoice | None,
    ) -> None:
        """``choice`` is the user's answer on a consent card; otherwise ``text`` is their message."""
        started = time.perf_counter()
        try:
            if choice is not None:
                log.info("consent_answered", choice=choice)
                result = TurnResult(reply=await self.sender.resolve_consent(identity, choice))
            else:
                result = await self.agent.run_user_turn(identity, text)
        except Exception:
            log.exception("turn_failure")
            result = TurnResult(reply=self.persona.render("turn_failed", bot_name=self.bot_name))
        try:
            if result.reply is None:
                pass  # a handoff: its notice is in the chat already
            elif result.consent_peer is not None:
                card = consent_card(self.bot_name, result.reply)
                await call_connector(
                    "send_reply",
                    lambda: ctx.send(MessageActivityInput().add_card(card)),
                    observe=self.observe,
                )
            else:
                await self._say(ctx, result.reply)
        except CONNECTOR_UNREACHABLE as error:
            log.warning("reply_failure", reason=type(error).__name__)
            return
        log.info("turn_complete", duration_ms=round((time.perf_counter() - started) * 1000))


async def _best_effort(sending: object) -> None:
    """Typing, apologies: a failure is logged, never raised."""
    try:
        await sending  # type: ignore[misc]
    except CONNECTOR_UNREACHABLE as error:
        log.info("send_skipped", reason=type(error).__name__)

"""The Teams surface: what happens when a user's message arrives at /api/messages.

The request does the quick, must-not-lose part (check, de-duplicate, remember where the user is,
show typing) and answers; the turn itself runs in the background (see ``TurnRunner``).
"""

from __future__ import annotations

import logging
import time

import httpx
from microsoft_teams.api.activities.message import MessageActivity, MessageActivityInput
from microsoft_teams.api.activities.typing import TypingActivityInput
from microsoft_teams.apps import ActivityContext, App
from microsoft_teams.cards import AdaptiveCard, SubmitAction, TextBlock
from opentelemetry import trace
from sqlalchemy.exc import SQLAlchemyError

from a2a_bridge.log_context import bind_log_fields
from bot.agent import BotAgent, TurnIdentity, TurnResult, clean_user_name
from bot.logs import content_level
from bot.prompts import Prompts
from bot.retry import Observer, call_connector
from bot.speaker import speaker_line
from bot.store import ConversationRef, Store
from bot.turns import TurnRunner

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("bot")

MAX_USER_TEXT_CHARS = 8000
_UNREACHABLE = (httpx.HTTPError, httpx.InvalidURL)


CONSENT_KEY = "handoffConsent"


def consent_choice(activity: MessageActivity) -> str | None:
    """The user's answer on a consent card ("yes"/"no"), when this activity is that card's submit."""
    value = activity.value
    if isinstance(value, dict) and value.get(CONSENT_KEY) in ("yes", "no"):
        return str(value[CONSENT_KEY])
    return None


def consent_card(bot_name: str, question: str) -> AdaptiveCard:
    return AdaptiveCard(
        body=[TextBlock(text=f"**{bot_name}:** {question}", wrap=True)],
        actions=[
            SubmitAction(title="Yes", data={CONSENT_KEY: "yes"}),
            SubmitAction(title="No", data={CONSENT_KEY: "no"}),
        ],
    )


def identity_of(activity: MessageActivity) -> TurnIdentity:
    tenant = activity.conversation.tenant_id or ""
    if not tenant and activity.channel_data is not None and activity.channel_data.tenant is not None:
        tenant = activity.channel_data.tenant.id or ""
    return TurnIdentity(
        conversation_id=activity.conversation.id,
        user_name=clean_user_name(activity.from_.name),
        aad_object_id=activity.from_.aad_object_id or "",
        tenant_id=tenant,
        service_url=(activity.service_url or "").rstrip("/"),
    )


def register_teams_handlers(
    app: App,
    *,
    bot_name: str,
    agent: BotAgent,
    store: Store,
    prompts: Prompts,
    turns: TurnRunner,
    tenant_allowlist: list[str],
    observe: Observer | None = None,
) -> None:
    async def say(ctx: ActivityContext[MessageActivity], text: str) -> None:
        activity = MessageActivityInput(text=speaker_line(bot_name, text))
        await call_connector("send_reply", lambda: ctx.send(activity), observe=observe)

    @app.on_message
    async def on_message(ctx: ActivityContext[MessageActivity]) -> None:
        activity = ctx.activity
        log = {"conversation_id": activity.conversation.id, "activity_id": activity.id}
        try:
            with bind_log_fields(**log):
                await accept(ctx, log)
        except _UNREACHABLE as error:
            logger.warning(
                "reply_failure", extra={"event": "reply_failure", "reason": type(error).__name__, **log}
            )
        except SQLAlchemyError:
            logger.exception("store_failure", extra={"event": "store_failure", **log})
            await _try(say(ctx, prompts.render("turn_failed", bot_name=bot_name)), log)

    async def accept(ctx: ActivityContext[MessageActivity], log: dict[str, str]) -> None:
        activity = ctx.activity
        identity = identity_of(activity)
        if tenant_allowlist and identity.tenant_id not in tenant_allowlist:
            logger.warning(
                "turn_refused", extra={"event": "turn_refused", "reason": "tenant not allowed", **log}
            )
            await say(ctx, f"Sorry, {bot_name} is not enabled for your organisation.")
            return
        choice = consent_choice(activity)
        text = (activity.strip_mentions_text().text or "").strip()
        if not text and choice is None:
            await say(ctx, "I can only read text messages. Please type your question.")
            return
        if len(text) > MAX_USER_TEXT_CHARS:
            await say(
                ctx,
                f"That message is too long for me ({len(text)} characters; the limit is "
                f"{MAX_USER_TEXT_CHARS}). Please shorten it.",
            )
            return
        logger.log(content_level(), "message_received", extra={"event": "message_received", "text": text})
        ref = ConversationRef(
            conversation_id=identity.conversation_id,
            service_url=identity.service_url,
            tenant_id=identity.tenant_id,
            aad_object_id=identity.aad_object_id,
            user_name=identity.user_name,
        )
        if not await store.accept_activity(activity.id, identity.conversation_id, ref):
            logger.info("activity_duplicate", extra={"event": "activity_duplicate", **log})
            return
        await _try(ctx.send(TypingActivityInput()), log)
        turns.submit(identity.conversation_id, lambda: run_turn(ctx, identity, text, choice, log))

    async def run_turn(
        ctx: ActivityContext[MessageActivity],
        identity: TurnIdentity,
        text: str,
        choice: str | None,
        log: dict[str, str],
    ) -> None:
        with (
            bind_log_fields(**log),
            tracer.start_as_current_span(
                "teams.turn", attributes={"teams.conversation_id": identity.conversation_id}
            ),
        ):
            await turn_body(ctx, identity, text, choice, log)

    async def turn_body(
        ctx: ActivityContext[MessageActivity],
        identity: TurnIdentity,
        text: str,
        choice: str | None,
        log: dict[str, str],
    ) -> None:
        """``choice`` is the user's answer on a consent card; otherwise ``text`` is their message."""
        started = time.perf_counter()
        try:
            if choice is not None:
                logger.info("consent_answered", extra={"event": "consent_answered", "choice": choice, **log})
                result = TurnResult(reply=await agent.resolve_consent(identity, choice))
            else:
                result = await agent.run_user_turn(identity, text)
        except Exception:
            logger.exception("turn_failure", extra={"event": "turn_failure", **log})
            result = TurnResult(reply=prompts.render("turn_failed", bot_name=bot_name))
        try:
            if result.consent_peer is not None:
                card = consent_card(bot_name, result.reply)
                await call_connector(
                    "send_reply", lambda: ctx.send(MessageActivityInput().add_card(card)), observe=observe
                )
            else:
                await say(ctx, result.reply)
        except _UNREACHABLE as error:
            logger.warning(
                "reply_failure", extra={"event": "reply_failure", "reason": type(error).__name__, **log}
            )
            return
        logger.info(
            "turn_complete",
            extra={
                "event": "turn_complete",
                "duration_ms": round((time.perf_counter() - started) * 1000),
                **log,
            },
        )


async def _try(sending: object, log: dict[str, str]) -> None:
    """Best effort (typing, apologies): a failure is logged, never raised."""
    try:
        await sending  # type: ignore[misc]
    except _UNREACHABLE as error:
        logger.info("send_skipped", extra={"event": "send_skipped", "reason": type(error).__name__, **log})

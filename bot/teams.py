"""The Teams surface: what happens when a user's message arrives at /api/messages."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

import httpx
from microsoft_teams.api.activities.message import MessageActivity
from microsoft_teams.api.activities.typing import TypingActivityInput
from microsoft_teams.apps import ActivityContext, App

from bot.agent import BotAgent, TurnIdentity, clean_user_name
from bot.prompts import Prompts
from bot.speaker import speaker_line
from bot.store import ConversationRef, Store

logger = logging.getLogger(__name__)

MAX_USER_TEXT_CHARS = 8000


class ConversationLocks:
    """Turns of one conversation run one after another, so history stays in order."""

    def __init__(self) -> None:
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def __call__(self, conversation_id: str) -> asyncio.Lock:
        return self._locks[conversation_id]


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
    tenant_allowlist: list[str],
) -> None:
    locks = ConversationLocks()

    @app.on_message
    async def on_message(ctx: ActivityContext[MessageActivity]) -> None:
        try:
            await handle_message(ctx)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            # The reply could not reach the user's serviceUrl; nothing more can be said to them.
            logger.warning(
                "reply_failure",
                extra={
                    "event": "reply_failure",
                    "conversation_id": ctx.activity.conversation.id,
                    "activity_id": ctx.activity.id,
                    "reason": type(error).__name__,
                },
            )

    async def handle_message(ctx: ActivityContext[MessageActivity]) -> None:
        activity = ctx.activity
        identity = identity_of(activity)
        log = {"conversation_id": identity.conversation_id, "activity_id": activity.id}
        if tenant_allowlist and identity.tenant_id not in tenant_allowlist:
            logger.warning(
                "turn_refused", extra={"event": "turn_refused", "reason": "tenant not allowed", **log}
            )
            await ctx.send(speaker_line(bot_name, f"Sorry, {bot_name} is not enabled for your organisation."))
            return
        text = (activity.strip_mentions_text().text or "").strip()
        if not text:
            await ctx.send(
                speaker_line(bot_name, "I can only read text messages. Please type your question.")
            )
            return
        if len(text) > MAX_USER_TEXT_CHARS:
            await ctx.send(
                speaker_line(
                    bot_name,
                    f"That message is too long for me ({len(text)} characters; the limit is "
                    f"{MAX_USER_TEXT_CHARS}). Please shorten it.",
                )
            )
            return
        if identity.service_url:
            await store.save_conversation_ref(
                ConversationRef(
                    conversation_id=identity.conversation_id,
                    service_url=identity.service_url,
                    tenant_id=identity.tenant_id,
                    aad_object_id=identity.aad_object_id,
                    user_name=identity.user_name,
                )
            )
        await ctx.send(TypingActivityInput())
        started = time.perf_counter()
        async with locks(identity.conversation_id):
            try:
                result = await agent.run_user_turn(identity, text)
                reply = result.reply
            except Exception:
                logger.exception("turn_failure", extra={"event": "turn_failure", **log})
                reply = prompts.render("turn_failed", bot_name=bot_name)
        await ctx.send(speaker_line(bot_name, reply))
        logger.info(
            "turn_complete",
            extra={
                "event": "turn_complete",
                "duration_ms": round((time.perf_counter() - started) * 1000),
                **log,
            },
        )

"""Carrying out a received handoff in Teams: open a 1:1 with the user and greet them.

The 1:1 is opened at the user's own serviceUrl (from the handoff, which the executor has already
checked against the allowlist) with their aadObjectId and tenantId, as Teams expects for a
proactive personal chat. The greeting is produced by the agent, so it is the first turn of the new
conversation's history and the user's next message there continues from it. When Teams refuses
the chat (403, most often: the user does not have this bot's app), a bot with
INSTALL_APP_FOR_USERS installs its app for the user first (``bot.app_install``) and tries again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import structlog
from microsoft_teams.api.activities.message import MessageActivityInput
from microsoft_teams.api.clients.conversation import CreateConversationParams
from microsoft_teams.api.models import (
    Account,
    ConversationAccount,
    ConversationReference,
    ConversationResource,
)
from microsoft_teams.apps.activity_send import send_or_update_activity
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from a2a_bridge.handoff import HandoffMessage, HandoffOutcome, HandoffStatus, ReasonCode
from bot.agent import BotAgent
from bot.app_install import AppInstaller
from bot.connector import ConnectorClients
from bot.pacing import OutboundPacer
from bot.retry import Observer, call_connector
from bot.speaker import Speaker

log = structlog.get_logger(__name__)
T = TypeVar("T")


class TeamsGreeter:
    def __init__(
        self,
        *,
        apis: ConnectorClients,
        agent: BotAgent,
        bot_name: str,
        speaker: Speaker,
        bot_id: str,
        pacer: OutboundPacer,
        installer: AppInstaller | None = None,
        chat_url: str | None = None,
        observe: Observer | None = None,
    ) -> None:
        self._pacer = pacer
        self._installer = installer
        self._observe = observe
        self._chat_url = chat_url
        self._apis = apis
        self._agent = agent
        self._bot_name = bot_name
        self._speaker = speaker
        self._bot = Account(id=bot_id, name=bot_name, role="bot")

    async def deliver(self, handoff: HandoffMessage) -> HandoffOutcome:
        api = self._apis.at(handoff.service_url)
        started = time.perf_counter()
        params = CreateConversationParams(
            members=[Account(id=handoff.aad_object_id, name=handoff.user_name or None)],
            tenant_id=handoff.tenant_id,
            channel_data={"tenant": {"id": handoff.tenant_id}},
        )

        async def open_chat() -> ConversationResource:
            # Safe to repeat: for a 1:1 Teams returns the same conversation every time.
            return await call_connector(
                "create_conversation",
                lambda: api.conversations.create(params),
                observe=self._observe,
                turn=self._pacer.turn(handoff.tenant_id, None),
            )

        try:
            try:
                conversation = await open_chat()
            except httpx.HTTPStatusError as error:
                if error.response.status_code != 403 or self._installer is None:
                    raise
                # Most often the user has the other bot but not this one: install it, then again.
                installed = await self._installer.install_for(handoff.aad_object_id, handoff.tenant_id)
                if not installed.worth_retrying:
                    raise
                conversation = await _once_installed(open_chat)
        except httpx.HTTPError as error:
            return self._failed(handoff, "open", error)
        log.info(
            "conversation_created",
            handoff_id=handoff.handoff_id,
            conversation_id=conversation.id,
            duration_ms=_ms(started),
        )
        greeting = await self._agent.run_greeting_turn(conversation.id, handoff)
        started = time.perf_counter()
        try:
            message = MessageActivityInput(text=self._speaker.line(greeting))
            reference = ConversationReference(
                channel_id="msteams",
                service_url=handoff.service_url,
                bot=self._bot,
                conversation=ConversationAccount(
                    id=conversation.id, conversation_type="personal", tenant_id=handoff.tenant_id
                ),
            )
            await call_connector(
                "send_greeting",
                lambda: send_or_update_activity(api, message, reference),
                observe=self._observe,
                turn=self._pacer.turn(handoff.tenant_id, conversation.id),
            )
        except _SENT_BUT_UNANSWERED as error:
            # The greeting went out and Teams' answer did not come back: it may well be in the chat.
            log.warning("greeting_unconfirmed", conversation_id=conversation.id, reason=type(error).__name__)
            return HandoffOutcome(
                handoff_id=handoff.handoff_id,
                status=HandoffStatus.UNCONFIRMED,
                peer=self._bot_name,
                conversation_id=conversation.id,
                reason_code=ReasonCode.TEAMS_UNCONFIRMED,
                chat_url=self._chat_url,
            )
        except httpx.HTTPError as error:
            return self._failed(handoff, "greet", error)
        log.info(
            "greeting_sent",
            handoff_id=handoff.handoff_id,
            conversation_id=conversation.id,
            duration_ms=_ms(started),
        )
        return HandoffOutcome(
            handoff_id=handoff.handoff_id,
            status=HandoffStatus.DELIVERED,
            peer=self._bot_name,
            conversation_id=conversation.id,
            chat_url=self._chat_url,
        )

    def _failed(self, handoff: HandoffMessage, stage: str, error: httpx.HTTPError) -> HandoffOutcome:
        status = error.response.status_code if isinstance(error, httpx.HTTPStatusError) else None
        log.warning(
            "greeting_failure",
            handoff_id=handoff.handoff_id,
            stage=stage,
            connector_status=status,
            reason=type(error).__name__,
        )
        return HandoffOutcome(
            handoff_id=handoff.handoff_id,
            status=HandoffStatus.FAILED,
            peer=self._bot_name,
            reason=_reason_for_user(self._bot_name, status),
            reason_code=_reason_code(status),
        )


async def _once_installed(open_chat: Callable[[], Awaitable[T]]) -> T:
    """Teams may take a few seconds to see a fresh installation: a 403 is tried again, briefly."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception(
            lambda error: isinstance(error, httpx.HTTPStatusError) and error.response.status_code == 403
        ),
        wait=wait_exponential(multiplier=1, max=8),
        stop=stop_after_attempt(INSTALLED_OPEN_ATTEMPTS),
        reraise=True,
    ):
        with attempt:
            return await open_chat()
    raise AssertionError("unreachable: tenacity either returns or re-raises")


INSTALLED_OPEN_ATTEMPTS = 4

# Failures after the request was written: the connector may have acted on it.
_SENT_BUT_UNANSWERED = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError)


def _reason_code(status: int | None) -> ReasonCode:
    if status in (403, 404):
        return ReasonCode.NOT_INSTALLED
    if status == 401:
        return ReasonCode.TEAMS_CREDENTIALS
    if status is None:
        return ReasonCode.TEAMS_UNREACHABLE
    if status == 429 or status >= 500:
        return ReasonCode.TEAMS_BUSY
    return ReasonCode.TEAMS_REFUSED


def _reason_for_user(bot: str, status: int | None) -> str:
    if status in (403, 404):
        return (
            f"Teams did not let {bot} start a chat with you, most likely because the {bot} app is not "
            f"installed for you. Install {bot} in Teams (or ask your Teams admin to), then ask again."
        )
    if status == 401:
        return (
            f"Teams did not accept {bot}'s credentials; an administrator needs to check {bot}'s "
            "bot registration."
        )
    if status is None:
        return f"{bot} could not reach Teams just now. Please try again in a few minutes."
    return f"Teams was busy or unavailable when {bot} tried to reach you. Please try again in a few minutes."


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)

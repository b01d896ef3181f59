"""The one message that tells a user about their handoff, posted at once and updated in place.

"Connecting you to Bob…" appears as soon as the handoff is decided; when the outcome is known the
same message is edited to say it (the Bot Connector's update-activity). If the first post failed,
or the edit does, the outcome goes out as a new message: the user is told either way.

In a personal chat the notice is an Adaptive Card: what is happening, what was passed on to the
peer, and a button that opens the chat with the peer once it has written. In a group chat or a
channel it is one plain line that names no private details (the user's context goes only to the
peer's 1:1 with them).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from microsoft_teams.api.activities.message import MessageActivityInput
from microsoft_teams.api.models import ConversationAccount
from microsoft_teams.cards import AdaptiveCard, OpenUrlAction, TextBlock

from bot.connector import ConnectorClients
from bot.pacing import OutboundPacer
from bot.retry import Observer, call_connector
from bot.speaker import Speaker

log = structlog.get_logger(__name__)

PASSED_ON_SHOWN_CHARS = 600


@dataclass(frozen=True)
class Notice:
    text: str
    peer: str
    passed_on: str | None = None
    """What the peer was told (personal chats only)."""
    chat_url: str | None = None
    """Opens the chat with the peer (once it has written)."""

    @property
    def card(self) -> bool:
        return self.passed_on is not None


class NoticeBoard:
    def __init__(
        self,
        *,
        apis: ConnectorClients,
        speaker: Speaker,
        pacer: OutboundPacer,
        observe: Observer | None = None,
    ) -> None:
        self._apis = apis
        self._speaker = speaker
        self._pacer = pacer
        self._observe = observe

    async def post(
        self, service_url: str, conversation_id: str, tenant_id: str, notice: Notice
    ) -> str | None:
        """The new message's activity id, or None when it could not be posted."""
        activities = self._apis.at(service_url).conversations.activities(conversation_id)
        message = self._message(conversation_id, tenant_id, notice)
        try:
            sent = await call_connector(
                "send_notice",
                lambda: activities.create(message),
                observe=self._observe,
                turn=self._pacer.turn(tenant_id, conversation_id),
            )
        except Exception as error:  # unreachable, or no token: the outcome is posted anew later
            log.warning("notice_failure", stage="post", reason=type(error).__name__)
            return None
        return sent.id

    async def replace(
        self, service_url: str, conversation_id: str, tenant_id: str, activity_id: str | None, notice: Notice
    ) -> bool:
        """Edit the notice; post it anew if there is none or the edit fails."""
        if activity_id is not None:
            activities = self._apis.at(service_url).conversations.activities(conversation_id)
            message = self._message(conversation_id, tenant_id, notice)
            try:
                await call_connector(
                    "update_notice",
                    lambda: activities.update(activity_id, message),
                    observe=self._observe,
                    turn=self._pacer.turn(tenant_id, conversation_id),
                )
                return True
            except Exception as error:  # unreachable, or no token: a new message, below
                log.warning("notice_failure", stage="update", reason=type(error).__name__)
        return await self.post(service_url, conversation_id, tenant_id, notice) is not None

    def _message(self, conversation_id: str, tenant_id: str, notice: Notice) -> MessageActivityInput:
        text = self._speaker.line(notice.text)
        if notice.card:
            message = MessageActivityInput().add_card(self._card(text, notice))
        else:
            message = MessageActivityInput(text=text)
        # Some tenants refuse a bot's post to a conversation that does not name the tenant.
        message.conversation = ConversationAccount(id=conversation_id, tenant_id=tenant_id or None)
        return message

    def _card(self, text: str, notice: Notice) -> AdaptiveCard:
        passed_on = notice.passed_on or ""
        if len(passed_on) > PASSED_ON_SHOWN_CHARS:
            passed_on = passed_on[: PASSED_ON_SHOWN_CHARS - 1].rstrip() + "\u2026"
        card = AdaptiveCard(
            body=[
                TextBlock(text=text, wrap=True),
                TextBlock(
                    text=f"What {notice.peer} was told", weight="Bolder", size="Small", spacing="Medium"
                ),
                TextBlock(text=passed_on, wrap=True, is_subtle=True, size="Small"),
            ],
            actions=(
                [OpenUrlAction(title=f"Open the chat with {notice.peer}", url=notice.chat_url)]
                if notice.chat_url
                else []
            ),
        )
        card.fallback_text = text  # what a client that shows no cards shows
        return card

"""The one message that tells a user about their handoff, posted at once and updated in place.

"Connecting you to Bob…" appears as soon as the handoff is decided; when the outcome is known the
same message is edited to say it (the Bot Connector's update-activity). If the first post failed,
or the edit does, the outcome goes out as a new message: the user is told either way.
"""

from __future__ import annotations

import structlog
from microsoft_teams.api.activities.message import MessageActivityInput
from microsoft_teams.api.models import ConversationAccount
from microsoft_teams.apps import App

from bot.pacing import OutboundPacer
from bot.retry import Observer, call_connector
from bot.speaker import speaker_line

log = structlog.get_logger(__name__)


class NoticeBoard:
    def __init__(
        self, *, app: App, bot_name: str, pacer: OutboundPacer, observe: Observer | None = None
    ) -> None:
        self._app = app
        self._bot_name = bot_name
        self._pacer = pacer
        self._observe = observe

    async def post(self, service_url: str, conversation_id: str, tenant_id: str, text: str) -> str | None:
        """The new message's activity id, or None when it could not be posted."""
        activities = self._app.api.from_service_url(service_url).conversations.activities(conversation_id)
        message = self._message(conversation_id, tenant_id, text)
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
        self, service_url: str, conversation_id: str, tenant_id: str, activity_id: str | None, text: str
    ) -> bool:
        """Edit the notice to ``text``; post it anew if there is none or the edit fails."""
        if activity_id is not None:
            activities = self._app.api.from_service_url(service_url).conversations.activities(conversation_id)
            message = self._message(conversation_id, tenant_id, text)
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
        return await self.post(service_url, conversation_id, tenant_id, text) is not None

    def _message(self, conversation_id: str, tenant_id: str, text: str) -> MessageActivityInput:
        message = MessageActivityInput(text=speaker_line(self._bot_name, text))
        # Some tenants refuse a bot's post to a conversation that does not name the tenant.
        message.conversation = ConversationAccount(id=conversation_id, tenant_id=tenant_id or None)
        return message

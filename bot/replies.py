"""Sending to the conversation a turn came from, with or without the request that brought it.

A turn may run long after its /api/messages request has answered, or in another process after a
restart: so replies are addressed from the turn's stored conversation reference, the way the Teams
SDK's own ``ctx.send`` addresses them, not through the request's context.
"""

from __future__ import annotations

from microsoft_teams.api.activities.message import MessageActivityInput
from microsoft_teams.api.activities.typing import TypingActivityInput
from microsoft_teams.api.models.conversation.conversation_reference import ConversationReference
from microsoft_teams.apps.activity_send import send_or_update_activity
from microsoft_teams.cards import AdaptiveCard

from bot.connector import ConnectorClients
from bot.pacing import OutboundPacer
from bot.retry import Observer, call_connector
from bot.speaker import Speaker


class Replies:
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

    @property
    def speaker(self) -> Speaker:
        return self._speaker

    async def say(self, to: ConversationReference, text: str) -> None:
        message = MessageActivityInput(text=self._speaker.line(text))
        await self._deliver(to, message)

    async def card(self, to: ConversationReference, card: AdaptiveCard) -> None:
        await self._deliver(to, MessageActivityInput().add_card(card))

    async def typing(self, to: ConversationReference) -> None:
        """One attempt, and only if it need not wait its turn: a typing indicator is not worth a
        retry, nor a delay of the request that is waiting on it."""
        if self._pacer.free_now(to):
            await self._pacer.turn_into(to)()
            await self._send(to, TypingActivityInput())

    async def _deliver(self, to: ConversationReference, message: MessageActivityInput) -> None:
        await call_connector(
            "send_reply",
            lambda: self._send(to, message),
            observe=self._observe,
            turn=self._pacer.turn_into(to),
        )

    async def _send(
        self, to: ConversationReference, activity: MessageActivityInput | TypingActivityInput
    ) -> None:
        await send_or_update_activity(self._apis.at(to.service_url), activity, to)

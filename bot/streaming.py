"""An answer streamed into a personal chat while the model writes it, as Teams streams: an
informative update, then the text so far in typing activities that carry the stream's id and a
sequence number, then the final message.

Built from the Teams SDK's own stream activities (``add_stream_update``, ``add_stream_final``) and
sent through the bot's paced, observed connector calls. The SDK's ``HttpStream`` is not used: its
flushes run in tasks nobody awaits, so a refused first send (streaming not allowed, Teams busy)
surfaces as an unretrieved task error while ``close()`` waits 30 s for a stream id that never comes;
and its retries ignore the bot's pacing. Here updates are coalesced (the latest text wins while a
send is on its way), the last text always goes out as a chunk before the final message, a
failure stops the stream at once, and ``finish`` says whether the final message went out, so the
caller can send the answer as one plain message instead.
"""

from __future__ import annotations

import asyncio

import httpx
import structlog
from microsoft_teams.api.activities.message import MessageActivityInput
from microsoft_teams.api.activities.typing import TypingActivityInput
from microsoft_teams.api.models import ChannelData, ConversationReference

from bot.connector import ConnectorClients
from bot.pacing import OutboundPacer
from bot.retry import NOT_SENT, Observer, call_connector
from bot.speaker import Speaker

log = structlog.get_logger(__name__)


class AnswerStream:
    def __init__(
        self,
        *,
        apis: ConnectorClients,
        to: ConversationReference,
        speaker: Speaker,
        pacer: OutboundPacer,
        informative: str,
        observe: Observer | None = None,
    ) -> None:
        self._apis = apis
        self._to = to
        self._speaker = speaker
        self._pacer = pacer
        self._informative = informative
        self._observe = observe
        self._text = ""
        self._sent_text = ""
        self._stream_id: str | None = None
        self._sequence = 0
        self._changed = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._broken = False
        self._closing = False

    @property
    def started(self) -> bool:
        return self._sender is not None

    @property
    def text(self) -> str:
        """The answer as streamed so far."""
        return self._text

    def add(self, piece: str) -> None:
        """More of the answer; the first piece starts the stream."""
        if self._broken:
            return
        self._text += piece
        self._changed.set()
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_updates(), name="answer-stream")

    async def finish(self, text: str) -> bool:
        """End the stream with ``text`` as the final message; False when Teams refused it or it was
        never sent (the caller then sends the answer as one plain message). A final message that
        went out and whose answer was lost raises, as a plain reply's would."""
        if self._sender is None:
            return False
        # The text written so far goes out as a chunk first: the final message then replaces a
        # chunk of the same stream, never just the informative line (which some clients keep).
        self._closing = True
        self._changed.set()
        await self._sender
        if self._broken or self._stream_id is None:
            return False
        final = MessageActivityInput(text=self._speaker.line(text))
        final.id = self._stream_id
        final.add_stream_final()
        try:
            await self._send(final, "send_stream_final")
        except (httpx.HTTPStatusError, *NOT_SENT) as error:
            # Refused, or never sent: the answer goes as one plain message instead. Anything else
            # (the answer came back unreadable, or not at all) may be in the chat: not sent twice.
            log.warning("stream_failure", stage="final", reason=type(error).__name__)
            return False
        log.info("answer_streamed", updates=self._sequence)
        return True

    async def _send_updates(self) -> None:
        try:
            await self._update(TypingActivityInput().with_text(self._informative), informative=True)
            while True:
                await self._changed.wait()
                self._changed.clear()
                if self._text != self._sent_text:
                    text = self._text
                    await self._update(TypingActivityInput(text=self._speaker.line(text)))
                    self._sent_text = text
                if self._closing and self._sent_text == self._text:
                    return
        except Exception as error:  # refused (streaming not allowed), unreachable: one plain message
            self._broken = True
            log.warning("stream_failure", stage="update", reason=type(error).__name__)

    async def _update(self, update: TypingActivityInput, *, informative: bool = False) -> None:
        self._sequence += 1
        if informative:
            update.with_channel_data(ChannelData(stream_type="informative"))
        if self._stream_id is not None:
            update = update.with_id(self._stream_id)
        update = update.add_stream_update(self._sequence)
        sent_id = await self._send(update, "send_stream_update")
        if self._stream_id is None:
            self._stream_id = sent_id

    async def _send(self, activity: TypingActivityInput | MessageActivityInput, what: str) -> str:
        """Every activity of a stream is a new POST (Teams reads the stream id from its entity)."""
        to = self._to
        activity.from_ = to.bot
        activity.conversation = to.conversation
        activities = self._apis.at(to.service_url).conversations.activities(to.conversation.id)
        sent = await call_connector(
            what,
            lambda: activities.create(activity),
            observe=self._observe,
            turn=self._pacer.turn_into(to),
            attempts=2,
        )
        return str(sent.id)

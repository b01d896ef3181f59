"""The sender's side of a handoff, in one place: consent, the HandoffMessage, the call, the notice.

The message is built from the turn's identity, never from model text: the model chooses only whom
to hand to and what to say. Every path ends in one typed result.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

import structlog

from a2a_bridge.handoff import MAX_SUMMARY_CHARS, HandoffMessage, HandoffOutcome, shorten
from a2a_bridge.peer_client import PeerClient
from bot.handoff_tracker import HandoffTracker
from bot.identity import TurnIdentity
from bot.manifest import short_description
from bot.prompts import Templates
from bot.store.consent import ConsentChoice, ConsentStore, PendingHandoff

log = structlog.get_logger(__name__)

ConsentMode = Literal["never", "ask"]


@dataclass(frozen=True)
class HandedOff:
    """The handoff went out; the user's notice was posted (and, if the peer already answered,
    edited to the outcome). ``outcome`` is None while the peer is still at it."""

    peer: str
    outcome: HandoffOutcome | None


@dataclass(frozen=True)
class AwaitingConsent:
    peer: str


@dataclass(frozen=True)
class Declined:
    """The user said no to handoffs: the model answers them itself."""


HandoffDecision = HandedOff | AwaitingConsent | Declined


class HandoffSender:
    def __init__(
        self,
        *,
        bot_name: str,
        peers: PeerClient,
        tracker: HandoffTracker,
        consent: ConsentStore,
        prompts: Templates,
        consent_mode: ConsentMode = "never",
    ) -> None:
        self.bot_name = bot_name
        self._peers = peers
        self._tracker = tracker
        self._consent = consent
        self._prompts = prompts
        self._consent_mode = consent_mode

    async def request(self, identity: TurnIdentity, peer: str, summary: str) -> HandoffDecision:
        """The model asked to hand the user to ``peer``: ask first, stay, or hand off."""
        if self._consent_mode == "ask":
            state = await self._consent.get(identity.conversation_id)
            if state.choice == "no":
                return Declined()
            if state.choice != "yes":
                pending = PendingHandoff(peer=peer, summary=summary)
                await self._consent.wait_for_answer(identity.conversation_id, pending)
                return AwaitingConsent(peer)
        return HandedOff(peer, await self.send(identity, peer, summary))

    async def resolve_consent(self, identity: TurnIdentity, choice: ConsentChoice) -> str | None:
        """The user pressed Yes or No on the consent card: remember it, hand off on yes; the reply
        (None after a handoff: its notice has been posted)."""
        # Taken, not just read: a second press (here or in another replica) finds nothing waiting.
        pending = await self._consent.answer(identity.conversation_id, choice)
        if choice == "no":
            return self._prompts.render("consent_declined", bot_name=self.bot_name)
        if pending is None:
            if identity.turn_id and await self._tracker.knows(self.handoff_id_for(identity)):
                return None  # this very press handed off before its turn was interrupted
            return self._prompts.render("consent_nothing_pending", bot_name=self.bot_name)
        await self._peers.refresh()
        await self.send(identity, pending.peer, pending.summary)
        return None

    def handoff_id_for(self, identity: TurnIdentity) -> str:
        """One handoff per turn at most (the tool ends the turn): the same id when the turn runs again."""
        if not identity.turn_id:
            return uuid.uuid4().hex
        return uuid.uuid5(uuid.NAMESPACE_URL, f"handoff:{self.bot_name}:{identity.turn_id}").hex

    async def send(self, identity: TurnIdentity, peer: str, summary: str) -> HandoffOutcome | None:
        """Send the handoff and post its notice; the outcome if the peer gave it at once."""
        handoff = HandoffMessage(
            handoff_id=self.handoff_id_for(identity),
            from_=self.bot_name,
            user_name=identity.user_name,
            aad_object_id=identity.aad_object_id,
            tenant_id=identity.tenant_id,
            service_url=identity.service_url,
            summary=shorten(summary.strip(), MAX_SUMMARY_CHARS) or "(no summary given)",
            hops=identity.hops + 1,
        )
        log.info(
            "handoff_requested",
            peer=peer,
            handoff_id=handoff.handoff_id,
            conversation_id=identity.conversation_id,
        )
        log.info("handoff_summary", summary=summary, content=True)
        return await self._tracker.begin(identity, peer, handoff)

    def tool_result(self, decision: HandedOff) -> str:
        """What the model hears after the handoff tool (the turn ends there; the user reads the notice)."""
        if decision.outcome is None:
            return f"Connecting the user to {decision.peer}; they have been told."
        return self._tracker.notice(decision.outcome)

    def consent_question(self, peer: str) -> str:
        profile = next((p for p in self._peers.available() if p.name == peer), None)
        specialty = short_description(profile.description) if profile else "this"
        return self._prompts.render(
            "consent_question", bot_name=self.bot_name, peer=peer, specialty=specialty
        )

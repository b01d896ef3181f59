"""Consent in Teams (HANDOFF_CONSENT=ask): the Yes/No card, and reading the user's press of it."""

from __future__ import annotations

from microsoft_teams.api.activities.message import MessageActivity
from microsoft_teams.cards import AdaptiveCard, SubmitAction, TextBlock

from bot.store.consent import ConsentChoice

CONSENT_KEY = "handoffConsent"


def consent_choice(activity: MessageActivity) -> ConsentChoice | None:
    """The user's answer on a consent card, when this activity is that card's submit."""
    value = activity.value
    if isinstance(value, dict):
        choice = value.get(CONSENT_KEY)
        if choice == "yes" or choice == "no":
            return choice
    return None


def consent_card(question: str) -> AdaptiveCard:
    """``question`` as the user reads it (with the speaker's name where the chat needs one)."""
    return AdaptiveCard(
        body=[TextBlock(text=question, wrap=True)],
        actions=[
            SubmitAction(title="Yes", data={CONSENT_KEY: "yes"}),
            SubmitAction(title="No", data={CONSENT_KEY: "no"}),
        ],
    )

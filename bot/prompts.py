"""Prompt and message templates, read from ``prompts/`` so persona authors can edit text, not code.

Templates use ``{name}`` placeholders. Each template's allowed names are declared here and checked
when the templates are loaded, so a typo in a template stops start-up instead of failing a turn.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Protocol

from a2a_bridge.card_cache import PeerProfile
from a2a_bridge.handoff import ReasonCode

# prompts/ in the source tree, installed as the package data of bot.prompt_files (pyproject.toml).
PROMPTS_PACKAGE = "bot.prompt_files"

_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "instructions": frozenset({"bot_name", "bot_description", "peers_section"}),
    "peers_available": frozenset({"peer_list"}),
    "peer_entry": frozenset({"peer_name", "peer_description"}),
    "peers_unavailable": frozenset(),
    "greeting_turn": frozenset({"bot_name", "from_bot", "user_name", "summary"}),
    "handoff_tool": frozenset(),
    "ask_tool": frozenset(),
    "consult_turn": frozenset({"asker", "question"}),
    "notice_connecting": frozenset({"bot_name", "peer"}),
    "notice_delivered": frozenset({"bot_name", "peer", "chat_link"}),
    "notice_chat_link": frozenset({"peer", "chat_url"}),
    "notice_failed": frozenset({"bot_name", "peer", "reason"}),
    "notice_unconfirmed": frozenset({"bot_name", "peer", "reason"}),
    # The same in a group chat or channel: one line, no private details.
    "notice_group_connecting": frozenset({"peer", "user_name"}),
    "notice_group_delivered": frozenset({"peer", "user_name"}),
    "notice_group_failed": frozenset({"peer", "user_name", "reason"}),
    "edited_message": frozenset({"text"}),
    "stream_informative": frozenset({"bot_name"}),
    # Why a handoff did not simply work, by the outcome's reason code (a2a_bridge.handoff.ReasonCode).
    **{f"reason_{code.value}": frozenset({"peer"}) for code in ReasonCode},
    "turn_failed": frozenset({"bot_name"}),
    "welcome": frozenset({"bot_name", "bot_description"}),
    # The pages the Teams app package links to (served at /privacy and /terms).
    "privacy": frozenset({"bot_name", "developer_name"}),
    "terms": frozenset({"bot_name", "developer_name"}),
    "consent_question": frozenset({"bot_name", "peer", "specialty"}),
    "consent_declined": frozenset({"bot_name"}),
    "consent_nothing_pending": frozenset({"bot_name"}),
}


class PromptError(Exception):
    pass


class Templates(Protocol):
    """Anything that renders a named template: the loaded ``Prompts``, or the live persona."""

    def render(self, name: str, **values: str) -> str: ...


def prompts_directory(configured: Path | None = None) -> Path:
    """PROMPTS_DIR if set, else the prompts installed with the bot (``prompts/`` in a checkout)."""
    if configured is not None:
        return configured
    return Path(str(resources.files(PROMPTS_PACKAGE)))


@dataclass(frozen=True)
class Prompts:
    templates: dict[str, str]

    @classmethod
    def load(cls, directory: Traversable | Path | None = None) -> Prompts:
        directory = directory if directory is not None else prompts_directory()
        if isinstance(directory, Path) and not directory.is_dir():
            raise PromptError(f"PROMPTS_DIR: {directory} is not a directory")
        templates = {}
        for name, allowed in _PLACEHOLDERS.items():
            path = directory / f"{name}.txt"
            try:
                text = path.read_text(encoding="utf-8").strip()
            except (OSError, FileNotFoundError):
                raise PromptError(f"PROMPTS: {path} is missing") from None
            used = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
            unknown = used - allowed
            if unknown:
                raise PromptError(
                    f"PROMPTS: {path.name} uses unknown placeholder(s) {sorted(unknown)}; "
                    f"allowed: {sorted(allowed)}"
                )
            templates[name] = text
        return cls(templates)

    def render(self, name: str, **values: str) -> str:
        return self.templates[name].format_map(values)

    def instructions(self, *, bot_name: str, bot_description: str, peers: list[PeerProfile]) -> str:
        if peers:
            entries = "\n".join(
                self.render("peer_entry", peer_name=peer.name, peer_description=peer.description)
                for peer in peers
            )
            peers_section = self.render("peers_available", peer_list=entries)
        else:
            peers_section = self.render("peers_unavailable")
        return self.render(
            "instructions", bot_name=bot_name, bot_description=bot_description, peers_section=peers_section
        )

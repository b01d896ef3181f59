"""Who says a message, where the chat itself cannot tell.

In the local emulator every bot's messages show under one name, so each starts with ``**Alice:**``;
in Teams each bot speaks under its own name and picture, and the prefix would only repeat it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Speaker:
    bot_name: str
    named: bool
    """Prefix the bot's name (SPEAKER_NAMES; default: in local development only)."""

    def line(self, text: str) -> str:
        prefix = f"**{self.bot_name}:**"
        if not self.named:
            return text.removeprefix(prefix).lstrip() if text.startswith(prefix) else text
        return text if text.startswith(prefix) else f"{prefix} {text}"

"""Every message a bot posts says who speaks: in an emulator every message shows under one name."""

from __future__ import annotations


def speaker_line(bot_name: str, text: str) -> str:
    prefix = f"**{bot_name}:**"
    return text if text.startswith(prefix) else f"{prefix} {text}"

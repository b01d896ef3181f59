"""The bot's words (its description and ``prompts/``), kept current while it runs.

Persona authors edit text, not code, and should not need a restart to see what a sentence does. On
SIGHUP, or when a watched file changes, the words are read again and checked exactly as at
start-up. Good words serve every turn and card request that starts afterwards; words that do not
check out are refused with one log line, and the bot carries on with the words it had.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog

from a2a_bridge.card_cache import PeerProfile
from bot.config import ConfigError, Settings, load_settings
from bot.prompts import PromptError, Prompts, prompts_directory

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Words:
    description: str
    prompts: Prompts


@dataclass(frozen=True)
class PersonaSource:
    """Where the words come from: the settings (BOT_DESCRIPTION, read as at start-up) and the
    prompts directory."""

    settings: Settings
    env_file: Path | None = None

    @property
    def prompts_dir(self) -> Path:
        return prompts_directory(self.settings.prompts_dir)

    def read(self) -> Words:
        """The words as they are now; PromptError or ConfigError if they do not check out."""
        settings = load_settings(self.env_file)
        ignored = sorted(
            name.upper()
            for name, value in settings.model_dump().items()
            if name != "bot_description" and value != getattr(self.settings, name)
        )
        if ignored:
            log.warning("persona_reload_ignores", settings=ignored, detail="these take effect at a restart")
        return Words(description=settings.bot_description, prompts=Prompts.load(self.prompts_dir))

    def watched(self) -> list[Path]:
        return [self.prompts_dir, *([self.env_file] if self.env_file is not None else [])]


class Persona:
    """The current words of one bot. Readers take ``description`` or ``render`` at the moment they
    need text, so a reload reaches the next turn without anyone holding on to old text."""

    def __init__(self, *, bot_name: str, words: Words, source: PersonaSource | None = None) -> None:
        self.bot_name = bot_name
        self._words = words
        self._source = source

    @property
    def description(self) -> str:
        return self._words.description

    @property
    def prompts(self) -> Prompts:
        return self._words.prompts

    def render(self, name: str, **values: str) -> str:
        return self._words.prompts.render(name, **values)

    def instructions(self, peers: list[PeerProfile]) -> str:
        return self._words.prompts.instructions(
            bot_name=self.bot_name, bot_description=self._words.description, peers=peers
        )

    def reload(self) -> bool:
        """Read the words again; True if they were taken. Never raises: a bad edit keeps the old words."""
        if self._source is None:
            return False
        try:
            words = self._source.read()
        except (PromptError, ConfigError) as error:
            log.error("persona_reload_refused", error=str(error), kept="the words in use before")
            return False
        changed = sorted(
            name
            for name in words.prompts.templates.keys() | self._words.prompts.templates.keys()
            if words.prompts.templates.get(name) != self._words.prompts.templates.get(name)
        )
        description_changed = words.description != self._words.description
        if not changed and not description_changed:
            log.info("persona_unchanged")
            return True
        self._words = words
        log.info(
            "persona_reloaded",
            description_changed=description_changed,
            prompts_changed=changed,
        )
        return True

    async def watch(self, *, debounce_ms: int = 300) -> None:
        """Reload whenever a file the words come from changes; runs until cancelled."""
        if self._source is None:
            return
        from watchfiles import awatch  # imported here: only a running bot watches files

        watched = self._source.watched()
        files = {path.resolve() for path in watched if not path.is_dir()}
        folders = {path.resolve() for path in watched if path.is_dir()}
        # Editors save by writing a new file and renaming it over the old one, so a file is watched
        # through its folder.
        roots = sorted({str(path.parent) for path in files} | {str(path) for path in folders})

        def concerns(_change: object, path: str) -> bool:
            resolved = Path(path).resolve()
            return resolved in files or (resolved.suffix == ".txt" and resolved.parent in folders)

        log.info("persona_watching", paths=[str(path) for path in watched])
        async for _changes in awatch(*roots, watch_filter=concerns, debounce=debounce_ms, recursive=False):
            self.reload()

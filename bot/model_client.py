"""Choosing the chat client: OpenAI or any OpenAI-compatible server, Azure OpenAI, or the offline model."""

from __future__ import annotations

from collections.abc import Callable

from agent_framework import SupportsChatGetResponse

from a2a_bridge.card_cache import PeerProfile
from bot.config import Settings
from bot.offline_model import OfflineChatClient

# OpenAI-compatible local servers (Ollama, llama.cpp) ignore the key, but the client needs one.
_UNUSED_API_KEY = "not-needed"


def build_chat_client(
    settings: Settings,
    peers: Callable[[], list[PeerProfile]],
    description: Callable[[], str] | None = None,
) -> SupportsChatGetResponse:
    """``description``: this bot's current description (the live persona's), for the offline model."""
    if settings.model_provider == "offline":
        return OfflineChatClient(
            bot_name=settings.bot_name,
            description=description or (lambda: settings.bot_description),
            peers=peers,
        )
    # Imported here: the OpenAI SDK costs ~14 MB resident, which an offline bot does not need.
    from agent_framework.openai import OpenAIChatCompletionClient
    from openai import AsyncAzureOpenAI, AsyncOpenAI

    if settings.model_provider == "azure":
        assert settings.azure_openai_api_key is not None and settings.azure_openai_endpoint is not None
        azure = AsyncAzureOpenAI(
            azure_endpoint=settings.azure_openai_endpoint,
            api_key=settings.azure_openai_api_key.get_secret_value(),
            api_version=settings.azure_openai_api_version,
            timeout=settings.model_timeout_seconds,
            max_retries=2,
        )
        return OpenAIChatCompletionClient(model=settings.azure_openai_model, async_client=azure)
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else _UNUSED_API_KEY
    openai = AsyncOpenAI(
        api_key=key, base_url=settings.openai_base_url, timeout=settings.model_timeout_seconds, max_retries=2
    )
    return OpenAIChatCompletionClient(model=settings.openai_model, async_client=openai)

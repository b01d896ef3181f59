"""Settings: the one object that says who an instance is, built once at start-up and passed down."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.clouds import CLOUDS, Cloud, CloudName, cloud_named

AppType = Literal["SingleTenant", "MultiTenant", "UserAssignedMSI"]
APP_TYPES: tuple[AppType, ...] = ("SingleTenant", "MultiTenant", "UserAssignedMSI")


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _normalise_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    return url.rstrip("/")


CsvList = Annotated[list[str], NoDecode]


class ConfigError(Exception):
    """A setting is missing or wrong; the message is one line naming the variable."""


class Settings(BaseSettings):
    """Every setting of one bot instance. Field names are the env variable names, lower-cased."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    # Persona
    bot_name: str = Field(min_length=1, max_length=30, pattern=r"^[A-Za-z][A-Za-z0-9 _-]*$")
    bot_description: str = Field(min_length=1, max_length=500)
    prompts_dir: Path | None = None
    """Where the prompt templates are (default: the ones installed with the bot, ``prompts/``)."""
    persona_watch: bool = True
    """Reload the description and prompts when their files change (SIGHUP reloads them too)."""

    # Where this instance lives and who its peers are
    bot_self_url: str
    host: str = "127.0.0.1"
    port: int = Field(default=3978, ge=1, le=65535)
    listen_fd: int | None = Field(default=None, ge=0)
    """An inherited listening socket to serve on instead of binding HOST:PORT (socket activation)."""
    peer_urls: CsvList = Field(default_factory=list)
    peer_url: str | None = None

    # The bot's identity: the Teams SDK's own variable names, and Azure's for the kind of app
    client_id: str | None = None
    client_secret: SecretStr | None = None
    tenant_id: str | None = None
    managed_identity_client_id: str | None = None
    """Instead of a secret: the managed identity the app registration trusts through a federated
    credential (its client id, or ``system``); for ``APP_TYPE=UserAssignedMSI``, CLIENT_ID itself."""
    app_type: AppType = "SingleTenant"
    """The Azure Bot's "Type of App" (``msaAppType``): SingleTenant (what Azure creates today),
    MultiTenant (registrations made before July 2025) or UserAssignedMSI."""
    cloud: CloudName = "Public"
    """Public, USGov (GCC), USGovHigh (GCC High), USGovDoD or China: see ``bot/clouds.py``."""

    # Model provider: OpenAI-compatible, Azure OpenAI, or none (the built-in offline model)
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str | None = None
    azure_openai_endpoint: str | None = None
    azure_openai_api_key: SecretStr | None = None
    azure_openai_model: str | None = None
    azure_openai_api_version: str = "2024-10-21"
    model_timeout_seconds: float = Field(default=60.0, gt=0)

    # Security
    local_development: bool = False
    dangerously_allow_unauthenticated_requests: bool = False
    a2a_auth_secret: SecretStr | None = None
    service_url_allowlist: CsvList = Field(default_factory=list)
    """Hosts a handoff's serviceUrl may point at (default: Teams' hosts in CLOUD)."""
    tenant_allowlist: CsvList = Field(default_factory=list)
    agent_card_signing_key_file: Path | None = None
    peer_card_public_key_files: CsvList = Field(default_factory=list)
    max_request_bytes: int = Field(default=256 * 1024, ge=1024)
    a2a_rate_limit_per_minute: int = Field(default=120, ge=1)

    # Handoff behaviour
    handoff_consent: Literal["never", "ask"] = "never"
    max_handoff_hops: int = Field(default=1, ge=0, le=5)
    peer_card_max_age_seconds: float = Field(default=300.0, gt=0)
    peer_retry_seconds: float = Field(default=5.0, ge=0)
    peer_timeout_seconds: float = Field(default=30.0, gt=0)
    connector_timeout_seconds: float = Field(default=15.0, gt=0)
    connector_rate_per_tenant: float = Field(default=30.0, ge=0)
    """Calls a second to Teams for one tenant, after a burst (Teams allows about 50); 0: unpaced."""
    connector_burst_per_tenant: int = Field(default=20, ge=1)
    connector_rate_per_conversation: float = Field(default=1.8, ge=0)
    """Calls a second into one conversation, after a burst (Teams: 7 a second, 60 in 30 s)."""
    connector_burst_per_conversation: int = Field(default=5, ge=1)
    handoff_wait_seconds: float = Field(default=600.0, gt=0)
    """How long a sent handoff may stay in progress before the user is told it is unconfirmed."""
    handoff_poll_seconds: float = Field(default=5.0, gt=0)
    """First interval of polling a peer's task when no push has come (doubling up to 30 s)."""
    handoff_lease_seconds: float = Field(default=120.0, gt=0)
    """A received handoff whose owner stops renewing this lease (it died) is taken over."""
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)

    # Replicas (several processes of one bot on one PostgreSQL STATE_URL)
    turn_lease_seconds: float = Field(default=30.0, gt=0)
    """An accepted Teams turn whose process stops renewing this lease (it died) is run by another."""
    replica_id: str | None = Field(default=None, min_length=1, max_length=200)
    """This process's name in the inbox, stable across its restarts (default: host name and PORT),
    so that a restarted process runs the turns its previous run left at once, without waiting out
    the lease. Two processes running at once must never share one."""

    # Installing this bot's app for a user who lacks it (Microsoft Graph; see bot/app_install.py)
    install_app_for_users: bool = False
    teams_app_catalog_id: str | None = None
    """The app's id in the organisation's catalog (default: looked up by CLIENT_ID, which needs
    AppCatalog.Read.All as well)."""

    # How messages look
    stream_answers: bool = True
    """Stream answers in personal chats while the model writes them (Teams' streaming)."""
    speaker_names: bool | None = None
    """Start each message with ``**Name:**`` (default: in local development, where the emulator
    shows every bot under one name; in Teams each bot speaks under its own)."""

    # Teams app package (python -m bot manifest)
    manifest_developer_name: str = "Teams handoff bots"
    manifest_developer_url: str | None = None
    group_chats: bool = False
    """Offer the bot in group chats and teams too (the manifest's groupChat and team scopes); there
    it answers only when @mentioned."""
    manifest_app_version: str = "1.0.0"
    """The app's version in the package (``python -m bot manifest --bump`` writes the next one)."""
    manifest_privacy_url: str | None = None
    """Default: BOT_SELF_URL/privacy, served by the bot from prompts/privacy.txt."""
    manifest_terms_url: str | None = None
    """Default: BOT_SELF_URL/terms, served by the bot from prompts/terms.txt."""

    # State and operations
    state_url: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_content: bool = False
    otel_traces_exporter: Literal["none", "otlp", "console"] = "none"
    otel_service_name: str | None = None

    _split_lists = field_validator("peer_urls", "service_url_allowlist", "tenant_allowlist", mode="before")(
        _split_csv
    )

    @model_validator(mode="before")
    @classmethod
    def _no_placeholders(cls, data: object) -> object:
        if isinstance(data, dict):
            left = [
                f"{key.upper()} ({value})"
                for key, value in data.items()
                if isinstance(value, str) and value.startswith("<") and value.endswith(">")
            ]
            if left:
                raise ValueError(
                    f"still placeholders, replace each with the real value: {', '.join(sorted(left))}"
                )
        return data

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("cloud", mode="before")
    @classmethod
    def _cloud_name(cls, value: object) -> object:
        return cloud_named(value) if isinstance(value, str) else value

    @field_validator("app_type", mode="before")
    @classmethod
    def _app_type_name(cls, value: object) -> object:
        if isinstance(value, str):
            for known in APP_TYPES:
                if known.lower() == value.strip().lower():
                    return known
        return value

    @field_validator("otel_traces_exporter", mode="before")
    @classmethod
    def _lower_exporter(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("bot_self_url", "openai_base_url", "azure_openai_endpoint")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        return None if value is None else _normalise_base_url(value)

    @field_validator("peer_urls")
    @classmethod
    def _absolute_peer_urls(cls, value: list[str]) -> list[str]:
        return [_normalise_base_url(url) for url in value]

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.peer_url and not self.peer_urls:
            self.peer_urls = [_normalise_base_url(self.peer_url)]
        if self.bot_self_url in self.peer_urls:
            raise ValueError("PEER_URLS: lists this instance's own BOT_SELF_URL")
        self._check_identity()
        if self.install_app_for_users and not self.client_id:
            raise ValueError(
                "INSTALL_APP_FOR_USERS: needs CLIENT_ID (Graph is called with the bot's credential)"
            )
        if not self.service_url_allowlist:
            self.service_url_allowlist = list(self.cloud_profile.service_url_hosts)
        if not self.service_url_allowlist:
            raise ValueError(
                f"SERVICE_URL_ALLOWLIST: required with CLOUD={self.cloud} (Microsoft publishes no Teams "
                "serviceUrl host for it): list the host of the serviceUrl your bot's activities carry"
            )
        if self.dangerously_allow_unauthenticated_requests and not self.local_development:
            raise ValueError(
                "DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS: only honoured with LOCAL_DEVELOPMENT=true"
            )
        if self.dangerously_allow_unauthenticated_requests and self.client_id:
            raise ValueError(
                "DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS: not allowed with CLIENT_ID; inbound Teams "
                "authentication stays on whenever credentials are configured"
            )
        if not self.local_development and self.a2a_auth_secret is None:
            raise ValueError(
                "A2A_AUTH_SECRET: required (peers authenticate on /a2a with it); "
                "set LOCAL_DEVELOPMENT=true only for local runs"
            )
        if self.a2a_auth_secret is not None and len(self.a2a_auth_secret.get_secret_value()) < 32:
            raise ValueError("A2A_AUTH_SECRET: must be at least 32 characters")
        azure = [self.azure_openai_endpoint, self.azure_openai_api_key, self.azure_openai_model]
        if any(azure) and not all(azure):
            raise ValueError(
                "AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY and AZURE_OPENAI_MODEL: set all three or none"
            )
        openai_set = self.openai_api_key or self.openai_base_url or self.openai_model
        if openai_set and not self.openai_model:
            raise ValueError("OPENAI_MODEL: required when OPENAI_API_KEY or OPENAI_BASE_URL is set")
        if self.openai_model and not (self.openai_api_key or self.openai_base_url):
            raise ValueError(
                "OPENAI_API_KEY: required for OpenAI (or set OPENAI_BASE_URL for a local server)"
            )
        if openai_set and all(azure):
            raise ValueError("OPENAI_* and AZURE_OPENAI_*: configure one model provider, not both")
        return self

    def _check_identity(self) -> None:
        """One credential, of the kind the app registration is: the mistakes Azure would only
        report at the first message, reported at start."""
        if not self.client_id:
            if self.client_secret or self.managed_identity_client_id:
                raise ValueError(
                    "CLIENT_ID: required when CLIENT_SECRET or MANAGED_IDENTITY_CLIENT_ID is set"
                )
            if not self.local_development:
                raise ValueError(
                    "CLIENT_ID: required (the bot's Microsoft App ID); "
                    "set LOCAL_DEVELOPMENT=true only for local runs"
                )
            return
        if self.app_type == "MultiTenant" and self.tenant_id:
            raise ValueError(
                "TENANT_ID: leave it empty for APP_TYPE=MultiTenant (its tokens come from the "
                "botframework.com tenant), or set APP_TYPE=SingleTenant"
            )
        if self.app_type != "MultiTenant" and not self.tenant_id:
            raise ValueError(
                f"TENANT_ID: required for APP_TYPE={self.app_type} (the Directory (tenant) ID of the app "
                "registration; set APP_TYPE=MultiTenant only for a bot registered as multi-tenant)"
            )
        if self.app_type == "UserAssignedMSI":
            if self.client_secret:
                raise ValueError("CLIENT_SECRET: not used with APP_TYPE=UserAssignedMSI; remove it")
            if self.managed_identity_client_id not in (None, self.client_id):
                raise ValueError(
                    "MANAGED_IDENTITY_CLIENT_ID: with APP_TYPE=UserAssignedMSI the identity is CLIENT_ID "
                    "itself; leave it empty"
                )
            return
        if self.client_secret and self.managed_identity_client_id:
            raise ValueError(
                "CLIENT_SECRET and MANAGED_IDENTITY_CLIENT_ID: set one (a secret, or a managed identity "
                "the app trusts through a federated credential)"
            )
        if self.managed_identity_client_id == self.client_id:
            raise ValueError(
                "MANAGED_IDENTITY_CLIENT_ID: equals CLIENT_ID, which is a bot whose identity is the "
                "managed identity: set APP_TYPE=UserAssignedMSI"
            )
        if not self.client_secret and not self.managed_identity_client_id:
            raise ValueError(
                "CLIENT_SECRET: required when CLIENT_ID is set (or MANAGED_IDENTITY_CLIENT_ID for a "
                "federated credential, or APP_TYPE=UserAssignedMSI for a managed-identity bot)"
            )

    @property
    def credential_kind(self) -> str:
        """How this bot proves who it is, in words for logs and probes (never the secret)."""
        if not self.client_id:
            return "none (local development)"
        if self.app_type == "UserAssignedMSI":
            return "user-assigned managed identity"
        if self.managed_identity_client_id:
            which = "system-assigned" if self.managed_identity_client_id == "system" else "user-assigned"
            return f"federated credential ({which} managed identity)"
        return "client secret"

    @property
    def names_speakers(self) -> bool:
        return self.local_development if self.speaker_names is None else self.speaker_names

    @property
    def cloud_profile(self) -> Cloud:
        return CLOUDS[self.cloud]

    @property
    def model_provider(self) -> Literal["openai", "azure", "offline"]:
        if self.azure_openai_endpoint:
            return "azure"
        if self.openai_model:
            return "openai"
        return "offline"

    @property
    def resolved_state_url(self) -> str:
        if self.state_url:
            return self.state_url
        slug = "".join(ch if ch.isalnum() else "-" for ch in self.bot_name.lower())
        return f"sqlite+aiosqlite:///{Path('data').resolve() / slug}.db"

    @property
    def resolved_replica_id(self) -> str:
        return self.replica_id or f"{socket.gethostname()}:{self.port}"

    @property
    def teams_bot_id(self) -> str:
        """The bot's channel account id as Teams writes it (``28:<app id>``)."""
        return f"28:{self.client_id}" if self.client_id else f"28:{self.bot_name.lower()}-local"

    @property
    def a2a_url(self) -> str:
        return f"{self.bot_self_url}/a2a"


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        if item["loc"]:
            name = str(item["loc"][0]).upper()
            problems.append(f"{name}: {_short(item['msg'], item['type'])}")
        else:
            problems.append(str(item["msg"]).removeprefix("Value error, "))
    return "; ".join(problems)


def _short(message: str, kind: str) -> str:
    if kind == "missing":
        return "missing (required)"
    return message.removeprefix("Value error, ")


def load_settings(env_file: str | Path | None = None) -> Settings:
    """Build the settings from an env file (when given) and the process environment.

    The process environment wins over the file, the usual rule for twelve-factor config, so an
    operator can override one line without editing the file.
    """
    if env_file is not None and not Path(env_file).is_file():
        raise ConfigError(f"--env-file: {env_file} does not exist")
    try:
        return Settings(_env_file=env_file)
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None

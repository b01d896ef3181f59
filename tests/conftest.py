from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import Settings
from bot.logs import configure_structlog
from tests.harness import FUZZ_COUNTS, LoopbackServer
from tests.standins.connector import StandInConnector
from tests.standins.entra import StandInEntra
from tests.standins.openai_server import StandInOpenAI

# A developer's shell may carry real settings (an OPENAI_API_KEY, a CLIENT_ID); tests define their own.
for _name in list(os.environ):
    if _name.lower() in Settings.model_fields or _name.startswith(("OPENAI_", "AZURE_OPENAI_")):
        del os.environ[_name]

configure_structlog()

ALICE_DESCRIPTION = (
    "Travel and expenses: business trips, flights, hotels, trains, rental cars, visas, per diems, "
    "expense reports, receipts and reimbursements."
)
BOB_DESCRIPTION = (
    "IT and devices: laptops, phones, monitors, printers, Wi-Fi, VPN, passwords, accounts, software "
    "installs, and problems with Teams, Outlook or other apps."
)
CAROL_DESCRIPTION = "HR and people: payroll, holidays, leave, benefits, contracts, onboarding and training."


@pytest.fixture(scope="session")
async def connector_server() -> AsyncIterator[tuple[StandInConnector, LoopbackServer]]:
    connector = StandInConnector()
    server = LoopbackServer(connector.app).start()
    yield connector, server
    await server.stop()


@pytest.fixture
def connector(connector_server: tuple[StandInConnector, LoopbackServer]) -> Iterator[StandInConnector]:
    standin, _ = connector_server
    standin.calls.clear()
    yield standin
    standin._failures.clear()


@pytest.fixture
def service_url(connector_server: tuple[StandInConnector, LoopbackServer]) -> str:
    """The user's serviceUrl: the stand-in connector under a region-like path."""
    return f"{connector_server[1].url}/emea"


@pytest.fixture(scope="session")
async def llm_server() -> AsyncIterator[tuple[StandInOpenAI, LoopbackServer]]:
    llm = StandInOpenAI()
    server = LoopbackServer(llm.app).start()
    yield llm, server
    await server.stop()


@pytest.fixture
def llm(llm_server: tuple[StandInOpenAI, LoopbackServer]) -> StandInOpenAI:
    standin, _ = llm_server
    standin.requests.clear()
    standin.arrivals.clear()
    standin.scripts.clear()
    return standin


@pytest.fixture
def llm_settings(llm_server: tuple[StandInOpenAI, LoopbackServer]) -> dict[str, str]:
    """Settings that point a bot at the stand-in model server; the model name is the bot's name."""
    return {"openai_base_url": f"{llm_server[1].url}/v1", "openai_api_key": "sk-test-not-real"}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FUZZ_COUNTS:
        terminalreporter.write_sep("-", "fuzzing")
        for target, count in FUZZ_COUNTS.items():
            terminalreporter.write_line(f"{count} cases tried against {target}: no 5xx")


@pytest.fixture
async def entra(tmp_path: Path) -> AsyncIterator[StandInEntra]:
    """Microsoft Entra ID and the Bot Framework's keys on their public names, for a bot process
    started with ``entra.environment()``."""
    standin = await StandInEntra(tmp_path / "entra").start()
    yield standin
    await standin.stop()

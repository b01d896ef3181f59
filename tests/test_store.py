"""The store's guarantees, on SQLite always and on a real PostgreSQL server (what replicas share)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import update
from sqlalchemy.engine import make_url

from a2a_bridge.handoff import HandoffMessage, HandoffOutcome, HandoffStatus
from bot.store import ConversationRef, Store, StoreError, schema_info


def postgres_url() -> str:
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        pytest.fail(
            "TEST_POSTGRES_URL is not set: run the suite with `make test` (it starts a throwaway "
            "PostgreSQL), or `export TEST_POSTGRES_URL=$(bash scripts/postgres.sh start)`"
        )
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
        return
    base = make_url(postgres_url())
    database = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(
        host=base.host, port=base.port, user=base.username, password=base.password, database=base.database
    )
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
        yield base.set(database=database).render_as_string(hide_password=False)
        await admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(store_url, bot_name="Bob")
    yield opened
    await opened.close()


def handoff(handoff_id: str = "h-1") -> HandoffMessage:
    return HandoffMessage(
        handoff_id=handoff_id,
        from_="Alice",
        user_name="Dana",
        aad_object_id="aad-1",
        tenant_id="t-1",
        service_url="https://smba.trafficmanager.net/teams",
        summary="VPN",
        hops=1,
    )


def delivered(handoff_id: str = "h-1") -> HandoffOutcome:
    return HandoffOutcome(
        handoff_id=handoff_id, status=HandoffStatus.DELIVERED, peer="Bob", conversation_id="a:1"
    )


async def test_history_is_kept_in_order_per_conversation(store: Store) -> None:
    await store.append_history("a:1", [{"n": 1}, {"n": 2}])
    await store.append_history("a:2", [{"n": 99}])
    await store.append_history("a:1", [{"n": 3}])
    assert await store.load_history("a:1") == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert await store.load_history("a:unknown") == []


async def test_history_and_ledger_survive_reopening(store_url: str) -> None:
    first = await Store.open(store_url, bot_name="Bob")
    await first.append_history("a:1", [{"n": 1}])
    assert await first.claim(handoff()) is None
    await first.record_outcome(handoff(), delivered())
    await first.close()
    second = await Store.open(store_url, bot_name="Bob")
    try:
        assert await second.load_history("a:1") == [{"n": 1}]
        assert await second.claim(handoff()) == delivered()
    finally:
        await second.close()


async def test_an_activity_is_claimed_once(store: Store) -> None:
    results = await asyncio.gather(*(store.claim_activity("act-1", "a:1") for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]


async def test_concurrent_claims_of_a_handoff_share_the_first_outcome(store_url: str) -> None:
    """Two replicas receive the same handoff: one carries it out, the other waits for its outcome."""
    replica_a = await Store.open(store_url, bot_name="Bob")
    replica_b = await Store.open(store_url, bot_name="Bob")
    try:
        assert await replica_a.claim(handoff()) is None
        waiting = asyncio.create_task(replica_b.claim(handoff()))
        finished, _ = await asyncio.wait({waiting}, timeout=0.5)
        assert not finished, "the second replica must wait while the handoff is pending"
        await replica_a.record_outcome(handoff(), delivered())
        assert await asyncio.wait_for(waiting, 10) == delivered()
    finally:
        await replica_a.close()
        await replica_b.close()


async def test_a_pending_handoff_whose_owner_died_is_taken_over_after_the_lease(store_url: str) -> None:
    dead = await Store.open(store_url, bot_name="Bob")
    assert await dead.claim(handoff()) is None
    await dead.close()
    survivor = await Store.open(store_url, bot_name="Bob")
    survivor._handoff_lease = 0.0
    try:
        assert await survivor.claim(handoff(), wait=5) is None
    finally:
        await survivor.close()


async def test_conversation_reference_is_upserted(store: Store) -> None:
    first = ConversationRef("a:1", "https://smba.trafficmanager.net/emea", "t-1", "aad-1", "Dana")
    await store.save_conversation_ref(first)
    moved = ConversationRef("a:1", "https://smba.trafficmanager.net/amer", "t-1", "aad-1", "Dana S.")
    await store.save_conversation_ref(moved)
    assert await store.find_conversation_ref("a:1") == moved


async def test_a_newer_schema_is_refused_with_a_clear_error(store_url: str) -> None:
    store = await Store.open(store_url, bot_name="Bob")
    async with store._engine.begin() as connection:
        await connection.execute(update(schema_info).values(version=99))
    await store.close()
    with pytest.raises(StoreError, match="schema version 99, newer than this release"):
        await Store.open(store_url, bot_name="Bob")


async def test_an_unreachable_database_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(StoreError) as error:
        await Store.open("postgresql+asyncpg://bot:hunter2-secret@127.0.0.1:1/bot", bot_name="Bob")
    assert "STATE_URL: cannot open" in str(error.value)
    assert "hunter2-secret" not in str(error.value)

"""The store's guarantees, on SQLite always and on a real PostgreSQL server (what replicas share)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy
from a2a.server.tasks import DatabasePushNotificationConfigStore
from a2a.types import TaskPushNotificationConfig, TaskState
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from a2a_bridge.handoff import HandoffMessage, HandoffOutcome, HandoffStatus
from a2a_bridge.jobs import Claimed, Finished, HandoffJob
from a2a_bridge.tasks import TaskRef, caller_context, final_status, task_of, working_status
from bot.store import PendingHandoff, Store, StoreError, migrate, schema
from bot.store import activities as inbox

DATA = Path(__file__).parent / "data"


def postgres_url() -> str:
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        pytest.fail(
            "TEST_POSTGRES_URL is not set: run the suite with `make test` (it starts a throwaway "
            "PostgreSQL), or `export TEST_POSTGRES_URL=$(bash scripts/postgres.sh start $(mktemp -d))`"
        )
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
        return
    async with postgres_database() as url:
        yield url


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A new, empty database on the test PostgreSQL server, dropped afterwards."""
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


def job(handoff_id: str = "h-1") -> HandoffJob:
    return HandoffJob(
        handoff=handoff(handoff_id), caller="Alice", task_id=f"task-{handoff_id}", context_id="c-1"
    )


def delivered(handoff_id: str = "h-1") -> HandoffOutcome:
    return HandoffOutcome(
        handoff_id=handoff_id, status=HandoffStatus.DELIVERED, peer="Bob", conversation_id="a:1"
    )


async def test_history_is_kept_in_order_per_conversation(store: Store) -> None:
    await store.history.append("a:1", [{"n": 1}, {"n": 2}])
    await store.history.append("a:2", [{"n": 99}])
    await store.history.append("a:1", [{"n": 3}])
    assert await store.history.load("a:1") == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert await store.history.load("a:unknown") == []


async def test_history_and_ledger_survive_reopening(store_url: str) -> None:
    first = await Store.open(store_url, bot_name="Bob")
    await first.history.append("a:1", [{"n": 1}])
    assert await first.handoffs.claim(job()) == Claimed()
    await first.handoffs.record_outcome(job(), delivered())
    await first.close()
    second = await Store.open(store_url, bot_name="Bob")
    try:
        assert await second.history.load("a:1") == [{"n": 1}]
        assert await second.handoffs.claim(job()) == Finished(delivered(), task_id="task-h-1")
    finally:
        await second.close()


async def test_sqlite_statements_run_on_the_loops_own_thread(tmp_path: Path) -> None:
    """No worker thread per connection (aiosqlite's way): the store adds no thread to the process."""
    threads = threading.active_count()
    store = await Store.open(f"sqlite:///{tmp_path}/one.db", bot_name="Bob")
    try:
        await store.history.append("a:1", [{"n": 1}])
        assert await store.history.load("a:1") == [{"n": 1}]
        assert threading.active_count() == threads
    finally:
        await store.close()
    reopened = await Store.open(f"sqlite:///{tmp_path}/one.db", bot_name="Bob")
    try:
        assert await reopened.history.load("a:1") == [{"n": 1}], "committed, not only held in memory"
    finally:
        await reopened.close()


async def test_an_activity_is_claimed_once(store: Store) -> None:
    results = await asyncio.gather(*(store.activities.accept("act-1", "a:1") for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]


async def test_concurrent_claims_of_a_handoff_are_won_once(store_url: str) -> None:
    """Replicas receive the same handoff at once: one carries it out, the others see it busy, then ended."""
    replicas = [await Store.open(store_url, bot_name="Bob") for _ in range(3)]
    try:
        claims = await asyncio.gather(*(replica.handoffs.claim(job()) for replica in replicas))
        assert sorted(type(claim).__name__ for claim in claims) == ["Busy", "Busy", "Claimed"]
        await replicas[0].handoffs.record_outcome(job(), delivered())
        assert await replicas[1].handoffs.claim(job()) == Finished(delivered(), task_id="task-h-1")
    finally:
        for replica in replicas:
            await replica.close()


async def test_a_pending_handoff_whose_owner_died_is_taken_over_once_after_the_lease(store_url: str) -> None:
    dead = await Store.open(store_url, bot_name="Bob")
    assert await dead.handoffs.claim(job()) == Claimed()
    await dead.close()
    survivors = [await Store.open(store_url, bot_name="Bob") for _ in range(2)]
    try:
        assert await survivors[0].handoffs.take_over_expired() == [], "within the lease: nobody takes it"
        for survivor in survivors:
            survivor.handoffs.lease_seconds = 0.0
        taken = await asyncio.gather(*(survivor.handoffs.take_over_expired() for survivor in survivors))
        assert sorted(len(jobs) for jobs in taken) == [0, 1], "exactly one replica takes it over"
        [resumed] = [jobs[0] for jobs in taken if jobs]
        assert resumed == job(), "with the handoff, its caller and its task"
    finally:
        for survivor in survivors:
            await survivor.close()


async def test_a_renewed_lease_is_not_taken_over(store_url: str) -> None:
    owner = await Store.open(store_url, bot_name="Bob", handoff_lease_seconds=0.5)
    other = await Store.open(store_url, bot_name="Bob", handoff_lease_seconds=0.5)
    try:
        assert await owner.handoffs.claim(job()) == Claimed()
        await owner.handoffs.renew(job())
        assert await other.handoffs.take_over_expired() == []
    finally:
        await owner.close()
        await other.close()


async def test_a_newer_schema_is_refused_with_a_clear_error(store_url: str) -> None:
    store = await Store.open(store_url, bot_name="Bob")
    async with store.engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    await store.close()
    with pytest.raises(StoreError, match="schema revision 9999, newer than this release"):
        await Store.open(store_url, bot_name="Bob")


async def test_a_database_written_by_the_release_before_migrations_upgrades_in_place(store_url: str) -> None:
    """Today's DDL and rows (history, both ledgers, consent), upgraded at open and read back."""
    dialect = "postgresql" if store_url.startswith("postgresql") else "sqlite"
    engine = create_async_engine(store_url)
    async with engine.begin() as connection:
        ddl = "\n".join(
            line
            for line in (DATA / f"store_v1_{dialect}.sql").read_text().splitlines()
            if not line.startswith("--")
        )
        for statement in ddl.split(";"):
            if statement.strip():
                await connection.execute(text(statement))
        rows = {
            "schema_info (id, version, started_at) VALUES (1, 1, :at)": {},
            "history_messages (conversation_id, message, created_at) VALUES ('a:1', :m, :at)": {
                "m": '{"n": 1}'
            },
            "history_messages (conversation_id, message, created_at) VALUES ('a:1', :m2, :at)": {
                "m2": '{"n": 2}'
            },
            "processed_activities VALUES ('act-1', 'a:1', :at)": {},
            "handoffs VALUES ('h-1', 'Alice', 'Bob', 'aad-1', 't-1', 'delivered', :o, :at, :at)": {
                "o": delivered().model_dump_json(by_alias=True)
            },
            "conversation_consent VALUES ('a:2', NULL, :p, :at)": {"p": '{"peer": "Bob", "summary": "VPN"}'},
            "conversation_consent VALUES ('a:3', 'no', NULL, :at)": {},
            "conversation_refs VALUES ('a:1', 'https://x', 't-1', 'aad-1', 'Dana', :at)": {},
        }
        written = datetime(2026, 11, 20, 10, tzinfo=UTC)
        for row, values in rows.items():
            await connection.execute(text(f"INSERT INTO {row}"), {"at": written, **values})
    await engine.dispose()

    store = await Store.open(store_url, bot_name="Bob")
    try:
        assert await store.history.load("a:1") == [{"n": 1}, {"n": 2}]
        assert await store.activities.accept("act-1", "a:1") is False, "the activity ledger was kept"
        assert await store.handoffs.claim(job("h-1")) == Finished(delivered("h-1"), task_id="task-h-1")
        waiting = await store.consent.get("a:2")
        assert waiting.choice is None and waiting.pending == PendingHandoff(peer="Bob", summary="VPN")
        assert (await store.consent.get("a:3")).choice == "no"
        async with store.engine.connect() as connection:
            revision = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            legacy = (await connection.execute(text("SELECT version FROM schema_info"))).scalar()
            tables = await connection.run_sync(lambda sync: sqlalchemy.inspect(sync).get_table_names())
        assert revision == schema.HEAD_REVISION and legacy == 2, (
            "a release from before migrations now refuses it"
        )
        assert "conversation_refs" not in tables
    finally:
        await store.close()
    reopened = await Store.open(store_url, bot_name="Bob")
    await reopened.close()


async def test_replicas_started_together_on_an_empty_database_all_open_it(store_url: str) -> None:
    """Schema set-up takes a lock: exactly one replica creates the tables, the others wait."""
    results = await asyncio.gather(
        *(Store.open(store_url, bot_name="Bob") for _ in range(4)), return_exceptions=True
    )
    assert all(isinstance(result, Store) for result in results), results
    for result in results:
        assert isinstance(result, Store)
        await result.close()


async def test_an_unreachable_database_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(StoreError) as error:
        await Store.open("postgresql+asyncpg://bot:hunter2-secret@127.0.0.1:1/bot", bot_name="Bob")
    assert "STATE_URL: cannot open" in str(error.value)
    assert "hunter2-secret" not in str(error.value)


async def test_the_migrations_build_exactly_the_tables_this_release_creates_for_a_new_database(
    store_url: str,
) -> None:
    """A new database gets ``schema.metadata`` directly; one with a past gets the migrations: both
    must end in the same schema."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    def migrate_and_compare(connection: sqlalchemy.Connection) -> list[object]:
        command.upgrade(migrate._config(connection), "head")
        return list(compare_metadata(MigrationContext.configure(connection), schema.metadata))

    engine = create_async_engine(store_url)
    try:
        async with engine.begin() as connection:
            differences = await connection.run_sync(migrate_and_compare)
    finally:
        await engine.dispose()
    assert differences == []


def test_the_head_revision_this_release_expects_is_the_last_migration() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(migrate.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == schema.HEAD_REVISION


async def test_the_plain_sqlite_url_most_sqlalchemy_users_write_opens_the_store(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'plain.db'}", bot_name="Bob")
    try:
        await store.history.append("a:1", [{"n": 1}])
        assert await store.history.load("a:1") == [{"n": 1}]
    finally:
        await store.close()


async def test_an_ended_task_is_never_written_back_to_working(store: Store) -> None:
    """The handler's late write of the working task must not undo the job's ended one."""
    ref = TaskRef("0d7c2d1e-0000-5000-8000-000000000001", "c-1")
    context = caller_context("Alice")
    await store.a2a_tasks.save(task_of(ref, working_status("Bob", ref.task_id, ref.context_id)), context)
    ended = final_status(delivered(), ref.task_id, ref.context_id)
    await store.a2a_tasks.save(task_of(ref, ended), context)
    await store.a2a_tasks.save(task_of(ref, working_status("Bob", ref.task_id, ref.context_id)), context)
    kept = await store.a2a_tasks.get(ref.task_id, context)
    assert kept is not None and kept.status.state == TaskState.TASK_STATE_COMPLETED
    assert await store.a2a_tasks.get(ref.task_id, caller_context("Carol")) is None, "tasks are the caller's"


async def test_a_push_target_is_kept_in_one_statement_and_reads_the_same_in_the_sdks_store(
    store: Store,
) -> None:
    task_id = "0d7c2d1e-0000-5000-8000-000000000002"
    alice, carol = caller_context("Alice"), caller_context("Carol")
    sdk = DatabasePushNotificationConfigStore(store.engine, create_table=False)
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    first = TaskPushNotificationConfig(id="h-1", url="https://alice.test/push/h-1", token="t-1")
    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        await store.a2a_push_configs.set_info(task_id, first, alice)
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count)
    assert len(statements) == 1, statements  # the SDK's merge reads the row before writing it
    assert [c.url for c in await sdk.get_info(task_id, alice)] == [first.url]

    moved = TaskPushNotificationConfig(id="h-1", url="https://alice.test/push/h-1b", token="t-2")
    await store.a2a_push_configs.set_info(task_id, moved, alice)
    await sdk.set_info(task_id, TaskPushNotificationConfig(id="extra", url="https://alice.test/x"), alice)
    kept = await store.a2a_push_configs.get_info_for_dispatch(task_id)
    assert sorted((c.id, c.url, c.token, c.task_id) for c in kept) == [
        ("extra", "https://alice.test/x", "", task_id),
        ("h-1", moved.url, "t-2", task_id),
    ]
    assert await store.a2a_push_configs.get_info(task_id, carol) == [], "push targets are the caller's"
    await store.a2a_push_configs.delete_info(task_id, alice, "extra")
    assert [c.id for c in await store.a2a_push_configs.get_info(task_id, alice)] == ["h-1"]


async def test_a_consent_pressed_twice_on_two_replicas_takes_the_waiting_handoff_once(store_url: str) -> None:
    replicas = [await Store.open(store_url, bot_name="Alice") for _ in range(2)]
    try:
        await replicas[0].consent.wait_for_answer("a:dana", PendingHandoff(peer="Bob", summary="VPN"))
        for _ in range(10):  # the race, tried a few times
            taken = await asyncio.gather(*(replica.consent.answer("a:dana", "yes") for replica in replicas))
            assert sorted(taken, key=lambda t: t is None) == [PendingHandoff(peer="Bob", summary="VPN"), None]
            await replicas[1].consent.wait_for_answer("a:dana", PendingHandoff(peer="Bob", summary="VPN"))
        assert (await replicas[0].consent.get("a:dana")).choice == "yes"
    finally:
        for replica in replicas:
            await replica.close()


async def test_a_pending_turn_is_joined_by_a_live_replica_and_taken_over_once_its_owner_is_gone(
    store_url: str,
) -> None:
    # The first owner's lease is over as soon as it is written: it stands for a process that died.
    dead = await Store.open(store_url, bot_name="Alice", replica_id="alice-1", turn_lease_seconds=-1)
    live = [await Store.open(store_url, bot_name="Alice", replica_id=f"alice-{n}") for n in (2, 3)]
    try:
        assert isinstance(await dead.activities.claim("act-1", "a:dana", "turn-1"), inbox.Claimed)
        claims = await asyncio.gather(
            *(replica.activities.claim("act-1", "a:dana", "turn-1") for replica in live)
        )
        assert sorted(type(claim).__name__ for claim in claims) == ["Claimed", "Joined"]
        assert [claim for claim in claims if isinstance(claim, inbox.Claimed)] == [
            inbox.Claimed("turn-1", taken_over=True)
        ]
        assert [await replica.activities.claim("act-1", "a:dana", "turn-1") for replica in live] == [
            inbox.Joined()
        ] * 2
        winner = live[0] if isinstance(claims[0], inbox.Claimed) else live[1]
        await winner.activities.finish("act-1")
        assert await live[0].activities.claim("act-1", "a:dana", "turn-1") == inbox.Answered()
        assert await dead.activities.take_unfinished() == []
    finally:
        for replica in [dead, *live]:
            await replica.close()


async def test_a_restarted_replica_takes_the_turns_its_previous_run_left_at_once_and_in_order(
    store_url: str,
) -> None:
    killed = await Store.open(store_url, bot_name="Alice", replica_id="alice-1")
    for n in (1, 2, 3):
        await killed.activities.claim(f"act-{n}", "a:dana", f"turn-{n}")
    await killed.activities.finish("act-2")
    other = await Store.open(store_url, bot_name="Alice", replica_id="alice-2")
    restarted = await Store.open(store_url, bot_name="Alice", replica_id="alice-1")
    try:
        assert await other.activities.take_unfinished() == [], "a live lease is not another replica's"
        taken = await restarted.activities.take_unfinished()
        assert [(turn.activity_id, turn.turn, turn.attempts) for turn in taken] == [
            ("act-1", "turn-1", 2),
            ("act-3", "turn-3", 2),
        ]
        assert await restarted.activities.take_unfinished() == [], "taken once"
        assert await restarted.activities.claim("act-1", "a:dana", "turn-1") == inbox.Joined()
    finally:
        for store in (killed, other, restarted):
            await store.close()


async def test_a_turn_that_killed_every_process_that_ran_it_is_given_up(store_url: str) -> None:
    stores = [
        await Store.open(store_url, bot_name="Alice", replica_id="alice-1")
        for _ in range(inbox.MAX_TURN_ATTEMPTS + 1)
    ]
    try:
        await stores[0].activities.claim("act-1", "a:dana", "turn-1")
        for store in stores[1:-1]:
            assert [turn.activity_id for turn in await store.activities.take_unfinished()] == ["act-1"]
        [given_up] = await stores[-1].activities.take_unfinished()
        assert (given_up.activity_id, given_up.given_up) == ("act-1", True), "handed back for an apology"
        assert await stores[-1].activities.take_unfinished() == []
        assert await stores[-1].activities.claim("act-1", "a:dana", "turn-1") == inbox.Answered()
    finally:
        for store in stores:
            await store.close()


async def test_a_peer_token_used_at_one_replica_is_refused_at_another(store_url: str) -> None:
    replicas = [await Store.open(store_url, bot_name="Bob") for _ in range(2)]
    expires = time.time() + 60
    try:
        firsts = await asyncio.gather(
            *(replica.used_tokens.first_use("jti-1", expires) for replica in replicas)
        )
        assert sorted(firsts) == [False, True]
        assert await replicas[0].used_tokens.first_use("jti-2", expires) is True
        assert await replicas[1].used_tokens.first_use("jti-2", expires) is False
    finally:
        for replica in replicas:
            await replica.close()

"""The test command's own machinery: two runs at once each get their own throwaway PostgreSQL."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from scripts.bot_process import ROOT

SCRIPT = str(ROOT / "scripts" / "postgres.sh")


async def script(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "bash", SCRIPT, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    return out.decode().strip()


async def test_two_throwaway_postgres_servers_run_side_by_side() -> None:
    # Folders as the test command makes them (mktemp in the temp dir, which the postgres user can
    # reach; pytest's own tmp_path is private to root).
    first, second = Path(tempfile.mkdtemp(prefix="pg-one-")), Path(tempfile.mkdtemp(prefix="pg-two-"))
    urls = await asyncio.gather(script("start", str(first)), script("start", str(second)))
    try:
        assert urls[0] != urls[1], "each server has its own port"
        for url in urls:
            parsed = make_url(url)
            connection = await asyncpg.connect(host=parsed.host, port=parsed.port, user=parsed.username)
            assert await connection.fetchval("SELECT 1") == 1
            await connection.close()
    finally:
        await asyncio.gather(script("stop", str(first)), script("stop", str(second)))
    assert not await asyncio.to_thread(first.exists) and not await asyncio.to_thread(second.exists)

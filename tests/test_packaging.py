"""Installed as a wheel (not editable), the bot runs from any folder with an env file from anywhere."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from scripts.bot_process import ROOT, listening_socket, wait_until_healthy_async


def build_wheel(out: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = out.glob("teams_a2a_handoff-*.whl")
    return wheel


def fresh_venv_with(wheel: Path, where: Path) -> Path:
    """A new venv holding only the wheel; the dependencies come from this interpreter's site-packages
    as a plain path (a .pth line), so the source tree's editable install is not on the path."""
    venv.create(where, with_pip=False)
    python = where / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    return where / "bin" / "teams-handoff-bot"


async def test_the_installed_wheel_serves_from_another_folder_with_its_prompts_and_migrations(
    tmp_path: Path,
) -> None:
    entry_point = fresh_venv_with(build_wheel(tmp_path / "dist"), tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sock = listening_socket()
    port = sock.getsockname()[1]
    env_file = elsewhere / "bob.env"
    env_file.write_text(
        "BOT_NAME=Bob\nBOT_DESCRIPTION=IT and devices\nLOCAL_DEVELOPMENT=true\n"
        f"BOT_SELF_URL=http://127.0.0.1:{port}\nSTATE_URL=sqlite:///{elsewhere / 'bob.db'}\n"
    )
    run_in = tmp_path / "cwd"
    run_in.mkdir()
    process = await asyncio.create_subprocess_exec(
        str(entry_point),
        "--env-file",
        str(env_file),
        cwd=run_in,
        env={"PATH": "/usr/bin:/bin", "LISTEN_FD": str(sock.fileno())},
        pass_fds=(sock.fileno(),),
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_until_healthy_async(url, alive=lambda: process.returncode is None, within=60)
        where = await asyncio.create_subprocess_exec(
            str(tmp_path / "venv" / "bin" / "python"),
            "-c",
            "import bot, bot.prompt_files; print(bot.__file__); print(list(bot.prompt_files.__path__))",
            cwd=run_in,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await where.communicate()
        assert str(ROOT) not in out.decode(), "the bot ran from the wheel, not from the source tree"
        assert "site-packages" in out.decode()
    finally:
        process.terminate()
        _, stderr = await process.communicate()
        sock.close()
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert (elsewhere / "bob.db").exists(), "the migrations ran from the wheel"

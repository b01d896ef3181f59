"""The container files: hadolint finds nothing, and compose wires each bot to its own env and database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_with_a_mounted_env_file() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "\nUSER 10001\n" in text
    assert '"--env-file", "/config/bot.env"' in text


def test_compose_runs_alice_bob_and_postgres_each_bot_with_its_own_state() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"alice", "bob", "postgres"}
    for bot in ("alice", "bob"):
        [mount] = services[bot]["volumes"]
        source = mount.split(":")[0]
        assert (ROOT / source).is_file(), f"{source} is mounted but missing"
        assert services[bot]["environment"]["STATE_URL"].endswith(f"/{bot}")
    assert services["alice"]["environment"]["PEER_URLS"] == "http://bob:3979"
    assert services["bob"]["environment"]["PEER_URLS"] == "http://alice:3978"

"""``python -m bot routes``: a persona author's cases run through the real agent and the peers' live
cards, with nothing sent to Teams or to a peer."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from tests.harness import LoopbackServer, RunningBot, started_bot
from tests.processes import process_env, spawn_bot
from tests.standins.openai_server import StandInOpenAI, call_tool, last_message, say

ROOT = Path(__file__).resolve().parents[1]
ALICE_CASES = ROOT / "prompts" / "routing" / "alice.yaml"
BOB_CASES = ROOT / "prompts" / "routing" / "bob.yaml"


def shipped_description(name: str) -> str:
    """The persona as shipped, so the shipped cases are checked against the shipped words."""
    description = dotenv_values(ROOT / "env" / f"{name}.local.env")["BOT_DESCRIPTION"]
    assert description
    return description


def row(out: str, number: int) -> list[str]:
    """A row of the printed table, cell by cell."""
    line = next(line for line in out.splitlines() if line.startswith(f"{number} "))
    return re.split(r"\s{2,}", line.strip())


async def routes(
    *args: str, peer: RunningBot | None, env_file: str = "env/alice.local.env", **settings: str
) -> tuple[int, str, str]:
    """Run the routing check as an author would; its exit code, standard output and standard error."""
    settings["PEER_URLS"] = peer.url if peer is not None else "http://127.0.0.1:9"
    process = await spawn_bot("routes", "--env-file", env_file, *args, cwd=ROOT, env=process_env(**settings))
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_alices_shipped_cases_all_route_right_with_the_offline_model_and_nothing_is_sent(
    state_dir: Path,
) -> None:
    async with started_bot("Bob", shipped_description("bob"), state_dir=state_dir) as bob:
        code, out, err = await routes(str(ALICE_CASES), "--min-accuracy", "100%", peer=bob)
        assert code == 0, out + err
        assert "accuracy: 12/12 = 100.0% (threshold 100%: pass)" in out
        assert row(out, 8) == [
            "8",
            "My laptop will not turn on after last night's update.",
            "Bob",
            "Bob",
            "ok",
        ]
        # the confusion table: seven travel questions stayed, five IT questions went to Bob
        assert "Alice  7      0" in out and "Bob    0      5" in out
        assert bob.a2a_calls == 0, "the handoff tool call is recorded, not sent to Bob"


async def test_bobs_shipped_cases_all_route_right_with_the_offline_model(state_dir: Path) -> None:
    async with started_bot("Alice", shipped_description("alice"), state_dir=state_dir) as alice:
        code, out, err = await routes(
            str(BOB_CASES), "--min-accuracy", "1", peer=alice, env_file="env/bob.local.env"
        )
        assert code == 0, out + err
        assert "accuracy: 11/11 = 100.0%" in out
        assert alice.a2a_calls == 0


async def test_compare_lists_the_case_a_peers_new_description_takes_away(
    state_dir: Path, tmp_path: Path
) -> None:
    candidate = tmp_path / "bob.candidate.env"
    candidate.write_text(
        "BOT_NAME=Bob\n"
        f"BOT_DESCRIPTION={shipped_description('bob')} We also book flights for engineers on call.\n"
    )
    async with started_bot("Bob", shipped_description("bob"), state_dir=state_dir) as bob:
        code, out, err = await routes(
            str(ALICE_CASES), "--compare", str(candidate), "--min-accuracy", "100%", peer=bob
        )
    assert code == 1, "below the threshold after the change"
    assert "moved: 1 case(s)" in out, out + err
    moved = "#1 'Can you book me a flight to Berlin for next Tuesday?': Alice \u2192 Bob"
    assert f"{moved} (expected Alice: now wrong)" in out
    assert "before: 12/12 = 100.0%" in out
    assert "after:  11/12 = 91.7% (threshold 100%: FAIL)" in out


async def test_compare_with_this_bots_own_description_as_a_text_file(state_dir: Path, tmp_path: Path) -> None:
    """Alice narrowed to visas: the phone bill now matches Bob's words better than hers."""
    candidate = tmp_path / "alice.txt"
    candidate.write_text("Visas and per diems.\n")
    async with started_bot("Bob", shipped_description("bob"), state_dir=state_dir) as bob:
        code, out, err = await routes(str(ALICE_CASES), "--compare", str(candidate), peer=bob)
    assert code == 0, "no threshold given: the check reports only"
    assert "'My phone bill from the business trip is huge, can I expense it?': Alice \u2192 Bob" in out, (
        out + err
    )


async def test_a_peer_without_a_card_is_named_and_its_cases_miss(tmp_path: Path) -> None:
    code, out, err = await routes(str(ALICE_CASES), "--min-accuracy", "0.9", peer=None)
    assert code == 1, out + err
    assert "warning: no card from http://127.0.0.1:9; cases expecting that peer cannot be routed" in out
    assert "warning: expected bot(s) Bob are neither Alice nor a peer with a card" in out
    assert "accuracy: 7/12 = 58.3% (threshold 90%: FAIL)" in out


async def test_a_broken_cases_file_is_refused_with_the_file_and_the_field(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text("cases:\n  - message: Where is my hotel?\n    expected: Alice\n")
    code, _, err = await routes(str(cases), peer=None)
    assert code == 2
    assert f"routing check: {cases}: cases.0.expect: Field required" in err
    wrong_bot = tmp_path / "bob.yaml"
    wrong_bot.write_text(BOB_CASES.read_text())
    code, _, err = await routes(str(wrong_bot), peer=None)
    assert code == 2
    assert "these cases are Bob's; run them with Bob's env file (this one is Alice's)" in err


async def test_the_routes_command_needs_a_cases_file() -> None:
    process = await spawn_bot("routes", "--env-file", "env/alice.local.env", cwd=ROOT, env=process_env())
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert b"a cases file goes with the routes command" in stderr


async def test_a_configured_model_routes_the_cases_and_sees_the_candidate_description(
    state_dir: Path, tmp_path: Path, llm_server: tuple[StandInOpenAI, LoopbackServer]
) -> None:
    """The check runs the model the env file configures: the model's own tool call decides, and the
    candidate's words are what it reads."""
    llm, server = llm_server

    def routing_model(request: dict[str, Any]) -> dict[str, Any]:
        text = str(last_message(request)["content"])
        if last_message(request)["role"] == "tool":
            return say("Bob will take it from here.")
        return call_tool("handoff_to_peer", peer="Bob", summary=text) if "laptop" in text else say("Sure.")

    llm.script("routing-model", routing_model)
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "cases:\n"
        "  - {message: Book me a train to Paris, expect: Alice}\n"
        "  - {message: My laptop is broken, expect: Bob}\n"
    )
    candidate = tmp_path / "alice.txt"
    candidate.write_text("Trains, and nothing but trains.")
    model = {
        "OPENAI_BASE_URL": f"{server.url}/v1",
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_MODEL": "routing-model",
    }
    async with started_bot("Bob", shipped_description("bob"), state_dir=state_dir) as bob:
        code, out, err = await routes(
            str(cases), "--compare", str(candidate), "--min-accuracy", "100%", peer=bob, **model
        )
        assert bob.a2a_calls == 0
    assert code == 0, out + err
    assert "after:  2/2 = 100.0% (threshold 100%: pass)" in out
    systems = [request["messages"][0]["content"] for request in llm.requests_for("routing-model")]
    assert any("Your specialty: Trains, and nothing but trains." in s for s in systems)
    assert all(shipped_description("bob") in s for s in systems), "the peer's live card is in every run"

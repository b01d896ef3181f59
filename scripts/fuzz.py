"""Fuzz one bot over real HTTP: generated cases per endpoint, and what it answered.

    .venv/bin/python -m scripts.fuzz                 # 10,000 cases per endpoint (a few minutes)
    .venv/bin/python -m scripts.fuzz --cases 100     # the short form CI runs

Bob runs as a real process with a peer secret (so every /a2a call must carry a valid token, and the
fuzzer signs them) and the default service-URL allowlist (plus loopback, as in local development);
the cases come from Hypothesis: JSON-RPC bodies and handoff data parts shaped like
A2A's (tests/test_fuzz.py), Teams activities, push notifications, bearer tokens, and hostile
bytes (deep nesting, huge numbers, invalid UTF-8, look-alike hosts). Each case's answer is
classified; a crash is a 5xx, a JSON-RPC -32603, an answer carrying Python's own words, or the
process gone. Exit code 1 if there was any.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from a2a_bridge.auth import SharedSecretSigner
from bench.common import start_bot, stop_bot
from scripts.bot_process import listening_socket
from tests.test_fuzz import activities, handoff_variants, json_values, jsonrpc_bodies

SECRET = "fuzzing-secret-shared-by-alice-and-bob-0123456789"
PYTHON_WORDS = ("Traceback", "Error(", "object has no attribute", "unexpected keyword", "NoneType")

hostile_bytes = st.one_of(
    st.integers(min_value=1, max_value=5000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=6000).map(lambda n: b'{"id": ' + b"9" * n + b"}"),
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda text: text.encode("utf-16")),
    st.builds(
        lambda host: json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "SendMessage",
                "params": {
                    "message": {
                        "role": "ROLE_USER",
                        "messageId": "m",
                        "parts": [
                            {
                                "data": {
                                    "kind": "handoff",
                                    "handoffId": "h",
                                    "from": "Alice",
                                    "aadObjectId": "a",
                                    "tenantId": "t",
                                    "serviceUrl": f"https://{host}/teams",
                                    "summary": "s",
                                    "hops": 1,
                                }
                            }
                        ],
                    }
                },
            }
        ).encode(),
        st.sampled_from(
            [
                "[smba.trafficmanager.net]",
                "smba.trafficmanager.net\uff0fx.example",
                "u:p@x",
                "smba.trafficmanager.net:0",
                "\uff53mba.trafficmanager.net",
                "xn--",
                "[::1]:99999",
            ]
        )
        | st.text(max_size=40),
    ),
)
tokens = st.one_of(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF), max_size=200),
    st.builds(
        lambda claims: SharedSecretSigner("wrong-secret-" + "x" * 40, "Alice").token_for("Bob"), st.none()
    ),
    st.dictionaries(st.sampled_from(["iss", "aud", "exp", "iat", "jti", "nbf"]), json_values).map(
        lambda claims: _signed(claims)
    ),
)


def _signed(claims: dict[str, Any]) -> str:
    import jwt

    try:
        return jwt.encode(claims, SECRET, algorithm="HS256")
    except (TypeError, ValueError):
        return "not.a.token"


@dataclass
class Tally:
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    rpc_errors: Counter[int] = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)

    def record(self, response: httpx.Response | None, what: str) -> None:
        self.cases += 1
        if response is None:
            self.crashes.append(f"no answer: {what}")
            return
        self.statuses[response.status_code] += 1
        text = response.text
        try:
            error = response.json().get("error")
        except (ValueError, AttributeError):
            error = None
        if isinstance(error, dict) and isinstance(error.get("code"), int):
            self.rpc_errors[error["code"]] += 1
        crashed = response.status_code >= 500 or any(words in text for words in PYTHON_WORDS)
        if response.headers.get("content-type", "").startswith(
            "application/json"
        ) and '"code":-32603' in text.replace(" ", ""):
            crashed = True
        if crashed:
            self.crashes.append(f"{response.status_code} {text[:200]!r} for {what[:200]}")


@dataclass
class Target:
    name: str
    strategy: Any
    send: Callable[[httpx.Client, str, Any, Callable[[], str]], httpx.Response]


def _a2a(client: httpx.Client, url: str, body: Any, token: Callable[[], str]) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json", "A2A-Version": "1.0", "Authorization": f"Bearer {token()}"}
    return client.post(f"{url}/a2a", content=raw, headers=headers)


def _handoff(client: httpx.Client, url: str, handoff: Any, token: Callable[[], str]) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendMessage",
        "params": {"message": {"role": "ROLE_USER", "messageId": "fuzz", "parts": [{"data": handoff}]}},
    }
    return _a2a(client, url, body, token)


def _activity(client: httpx.Client, url: str, activity: Any, token: Callable[[], str]) -> httpx.Response:
    raw = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
    return client.post(f"{url}/api/messages", content=raw, headers={"content-type": "application/json"})


def _push(client: httpx.Client, url: str, body: Any, token: Callable[[], str]) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "content-type": "application/json",
        "Authorization": f"Bearer {token()}",
        "X-A2A-Notification-Token": "fuzz",
    }
    return client.post(f"{url}/a2a/push/fuzz-handoff", content=raw, headers=headers)


def _authorization(client: httpx.Client, url: str, value: str, token: Callable[[], str]) -> httpx.Response:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}).encode()
    headers = {
        b"content-type": b"application/json",
        b"A2A-Version": b"1.0",
        b"Authorization": f"Bearer {value}".encode("latin-1"),
    }
    return client.post(f"{url}/a2a", content=body, headers=headers)


TARGETS = [
    Target("/a2a JSON-RPC bodies", jsonrpc_bodies | hostile_bytes, _a2a),
    Target("/a2a handoff data parts", handoff_variants, _handoff),
    Target("/a2a bearer tokens", tokens, _authorization),
    Target("/a2a/push notifications", json_values | hostile_bytes, _push),
    Target("/api/messages activities", activities | hostile_bytes, _activity),
]


def run_target(target: Target, url: str, cases: int, signer: SharedSecretSigner) -> Tally:
    tally = Tally()
    with httpx.Client(timeout=30) as client:

        @settings(
            max_examples=cases,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=target.strategy)
        def one(case: Any) -> None:
            try:
                response = target.send(client, url, case, lambda: signer.token_for("Bob"))
            except httpx.LocalProtocolError:
                return  # not a request HTTP can carry: nothing was sent
            except httpx.HTTPError:
                response = None
            tally.record(response, repr(case))

        one()
    return tally


async def fuzz(cases: int) -> int:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
        bob = await start_bot(
            "Bob",
            "IT and devices: laptops, VPN, passwords.",
            listening_socket(),
            [],
            Path(folder) / "bob.db",
            A2A_AUTH_SECRET=SECRET,
            A2A_RATE_LIMIT_PER_MINUTE="1000000",
            CONNECTOR_TIMEOUT_SECONDS="2",
            PERSONA_WATCH="false",
        )
        signer = SharedSecretSigner(SECRET, "Alice")
        before = bob.rss_mb()
        failures = 0
        started = time.perf_counter()
        print(f"fuzzing Bob at {bob.url}, {cases} cases per endpoint")
        header = f"{'endpoint':26} {'cases':>6}  {'4xx by code':24} {'JSON-RPC errors':44}"
        print(f"{header} {'5xx':>4} {'crashes':>7}")
        try:
            for target in TARGETS:
                tally = await asyncio.to_thread(run_target, target, bob.url, cases, signer)
                if bob.process.returncode is not None:
                    tally.crashes.append(f"the process exited with {bob.process.returncode}")
                fours = ", ".join(
                    f"{code}: {n}" for code, n in sorted(tally.statuses.items()) if 400 <= code < 500
                )
                fives = sum(n for code, n in tally.statuses.items() if code >= 500)
                rpc = ", ".join(f"{code}: {n}" for code, n in sorted(tally.rpc_errors.items()))
                row = f"{target.name:26} {tally.cases:>6}  {fours:24} {rpc:44}"
                print(f"{row} {fives:>4} {len(tally.crashes):>7}")
                for crash in tally.crashes[:5]:
                    print(f"    crash: {crash}")
                failures += len(tally.crashes) + fives
            elapsed = time.perf_counter() - started
            print(f"RSS before {before:.0f} MB, after {bob.rss_mb():.0f} MB; {elapsed:.0f} s")
        finally:
            await stop_bot(bob)
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=10_000, help="generated cases per endpoint")
    return asyncio.run(fuzz(parser.parse_args().cases))


if __name__ == "__main__":
    sys.exit(main())

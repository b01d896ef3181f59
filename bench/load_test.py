"""Load test: N simulated users talk to Alice at once, half of them are handed to Bob.

    .venv/bin/python -m bench.load_test --users 200

Alice and Bob run as real processes (built-in offline model), the Bot Connector is the stand-in
in this process. Every user posts one message at the same moment; the run waits until each has
Alice's answer (and, for the IT half, Bob's greeting in a new chat), then reports lost user
messages, lost greetings and duplicates (all must be zero; the exit code says whether they are),
throughput, and p50/p99 latency from posting to Alice's answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import account, ask, clear_the_stage, dump, new_users, percentile, set_the_stage


async def run(users_count: int, handoff_share: float, settle_seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="handoff-load-") as folder:
        stage = await set_the_stage(Path(folder), model="offline")
        try:
            users = new_users(users_count, handoff_share=handoff_share)
            limits = httpx.Limits(max_connections=users_count, max_keepalive_connections=users_count)
            async with httpx.AsyncClient(limits=limits) as http:
                started = time.perf_counter()
                await asyncio.gather(*(ask(http, stage, user) for user in users))
                accepted = time.perf_counter() - started
                conversations = {u.conversation_id for u in users}
                wanted_greetings = sum(1 for u in users if u.wants_handoff)

                def complete(connector: Any) -> bool:
                    answered = {
                        c.conversation_id for c in connector.sent() if c.conversation_id in conversations
                    }
                    greeted = sum(1 for c in connector.sent() if c.conversation_id not in conversations)
                    return len(answered) == len(conversations) and greeted >= wanted_greetings

                with contextlib.suppress(TimeoutError):  # what never arrived is reported as lost below
                    await stage.connector.wait_for(complete, within=settle_seconds)
                finished = time.perf_counter() - started
            result = account(stage, users)
            first_reply: dict[str | None, float] = {}
            for call in stage.connector.sent():
                first_reply.setdefault(call.conversation_id, call.at)
            latencies = [
                (first_reply[u.conversation_id] - u.posted_at) * 1000
                for u in users
                if u.conversation_id in first_reply
            ]
            result.update(
                handoffs_requested=sum(1 for u in users if u.wants_handoff),
                seconds_to_accept_all=round(accepted, 3),
                seconds_to_answer_all=round(finished, 3),
                throughput_users_per_s=round(len(users) / finished, 1),
                latency_ms_p50=round(percentile(latencies, 0.50), 1),
                latency_ms_p99=round(percentile(latencies, 0.99), 1),
                alice_peak_rss_mb=round(stage.alice.peak_rss_mb(), 1),
                bob_peak_rss_mb=round(stage.bob.peak_rss_mb(), 1),
            )
            return result
        finally:
            await clear_the_stage(stage)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--handoff-share", type=float, default=0.5)
    parser.add_argument("--settle-seconds", type=float, default=120.0)
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args()
    result = asyncio.run(run(args.users, args.handoff_share, args.settle_seconds))
    if args.json:
        print(dump(result))
    else:
        width = max(len(key) for key in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    clean = not (
        result["lost_user_messages"]
        or result["lost_greetings"]
        or result["duplicates"]
        or result["unexpected_greetings"]
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())

"""Where Bob may post the end of a caller's handoff task: that caller's own origins, over https
(loopback too in local development), never anywhere a caller names."""

from __future__ import annotations

import pytest

from a2a_bridge.push import PushOrigins

ALICE = ["https://alice.example.com", "https://alice.example.com/a2a"]


def origins(*, loopback: bool = False) -> PushOrigins:
    return PushOrigins(lambda caller: ALICE if caller == "Alice" else [], allow_loopback=loopback)


@pytest.mark.parametrize(
    ("url", "caller", "allowed"),
    [
        ("https://alice.example.com/a2a/push/h-1", "Alice", True),
        ("https://alice.example.com:8443/a2a/push/h-1", "Alice", False),
        ("http://alice.example.com/a2a/push/h-1", "Alice", False),
        ("https://carol.example.com/a2a/push/h-1", "Alice", False),
        ("https://alice.example.com/a2a/push/h-1", "Carol", False),
        ("https://alice.example.com/a2a/push/h-1", "", False),
        ("http://169.254.169.254/latest/meta-data", "Alice", False),
        ("ftp://alice.example.com/x", "Alice", False),
        ("not a url", "Alice", False),
    ],
)
def test_a_push_goes_only_to_the_callers_own_origin(url: str, caller: str, allowed: bool) -> None:
    assert origins().allows(url, caller) is allowed


def test_local_development_also_allows_loopback_and_nothing_else() -> None:
    assert origins(loopback=True).allows("http://127.0.0.1:3978/a2a/push/h-1", "")
    assert not origins(loopback=True).allows("http://10.0.0.5:3978/a2a/push/h-1", "")

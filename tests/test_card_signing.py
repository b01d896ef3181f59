"""Signed agent cards: a peer whose card does not verify is not offered to the model."""

from __future__ import annotations

from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import ALICE_DESCRIPTION, BOB_DESCRIPTION
from tests.harness import started_bot, user_says
from tests.standins.connector import StandInConnector


def key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private = folder / f"{name}.key.pem"
    public = folder / f"{name}.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


async def test_alice_trusts_bobs_signed_card_and_hands_off(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path, tmp_path: Path
) -> None:
    bob_private, bob_public = key_pair(tmp_path, "Bob")
    async with (
        started_bot(
            "Bob", BOB_DESCRIPTION, state_dir=state_dir, agent_card_signing_key_file=bob_private
        ) as bob,
        started_bot(
            "Alice",
            ALICE_DESCRIPTION,
            state_dir=state_dir,
            peer_urls=[bob.url],
            peer_card_public_key_files=[str(bob_public)],
        ) as alice,
    ):
        card = (await http.get(f"{bob.url}/.well-known/agent-card.json")).json()
        assert card["signatures"][0]["protected"]
        await user_says(
            http,
            connector,
            alice.url,
            "My laptop can't connect to the VPN",
            conversation_id="a:dana",
            service_url=service_url,
        )
        assert bob.a2a_calls == 1
        assert "Bob will message you directly" in connector.sent("a:dana")[-1].text


async def test_card_signed_by_another_key_or_unsigned_leaves_bob_out(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path, tmp_path: Path
) -> None:
    impostor_private, _ = key_pair(tmp_path / "", "Impostor")
    _, bob_public = key_pair(tmp_path, "Bob")
    async with (
        started_bot(
            "Bob", BOB_DESCRIPTION, state_dir=state_dir, agent_card_signing_key_file=impostor_private
        ) as forged,
        started_bot("Carol", "HR and people", state_dir=state_dir) as unsigned,
        started_bot(
            "Alice",
            ALICE_DESCRIPTION,
            state_dir=state_dir,
            peer_urls=[forged.url, unsigned.url],
            peer_card_public_key_files=[str(bob_public)],
        ) as alice,
    ):
        await alice.service.peers.refresh()
        assert alice.service.peers.available() == []
        await user_says(
            http,
            connector,
            alice.url,
            "My laptop can't connect to the VPN",
            conversation_id="a:dana",
            service_url=service_url,
        )
        assert forged.a2a_calls == 0 and unsigned.a2a_calls == 0
        assert connector.sent("a:dana")[-1].text.startswith("**Alice:** [offline model]")

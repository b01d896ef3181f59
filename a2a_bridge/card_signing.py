"""Signed agent cards (JWS, ES256): a bot can sign its card, and check that peers' cards are signed.

A card tells a peer's model what this bot is for and where to send users; signing it lets a bot
trust a card fetched over a network it does not control. Keys are PEM files: the signer's own
private key (its ``kid`` is the bot's name) and, on the verifying side, one public key per peer,
looked up by the ``kid`` in the signature's protected header.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from a2a.types import AgentCard
from a2a.utils.signing import create_agent_card_signer, create_signature_verifier
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

ALGORITHM = "ES256"


class CardKeyError(Exception):
    pass


def sign_card(card: AgentCard, *, private_key_pem: bytes, kid: str) -> AgentCard:
    try:
        key = load_pem_private_key(private_key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise CardKeyError(f"not a readable unencrypted PEM private key ({type(error).__name__})") from None
    signer = create_agent_card_signer(
        signing_key=key,  # type: ignore[arg-type]
        protected_header={"kid": kid, "alg": ALGORITHM, "jku": None, "typ": "JOSE"},
    )
    return signer(card)


def card_verifier(public_keys_pem: Mapping[str, bytes]) -> Callable[[AgentCard], None]:
    """A verifier accepting cards signed by one of the given keys, keyed by ``kid`` (peer name)."""
    keys = {}
    for kid, pem in public_keys_pem.items():
        try:
            keys[kid] = load_pem_public_key(pem)
        except (ValueError, TypeError) as error:
            raise CardKeyError(f"{kid}: not a readable PEM public key ({type(error).__name__})") from None

    def key_for(kid: str | None, jku: str | None) -> object:
        if kid is None or kid not in keys:
            raise CardKeyError("no public key configured for this card's signer")
        return keys[kid]

    return create_signature_verifier(key_for, [ALGORITHM])  # type: ignore[arg-type]


def read_public_keys(paths: list[str]) -> dict[str, bytes]:
    """``Bob.pem`` holds Bob's public key: the file name (without suffix) is the signer's kid."""
    keys = {}
    for path in paths:
        file = Path(path)
        try:
            keys[file.stem] = file.read_bytes()
        except OSError:
            raise CardKeyError(f"{path}: cannot be read") from None
    return keys

"""The AgentCard a bot publishes at /.well-known/agent-card.json.

Peers' LLMs read ``description`` to decide when to hand a user over, so the persona's specialty is
the card's description. The card lists the JSON-RPC endpoint twice: protocol 1.0 for current
clients and 0.3 for bots built on the 0.3 SDK (the well-known Teams sample). A handoff is a task
whose end the bot pushes to the caller if asked, so the card declares push notifications.
"""

from __future__ import annotations

from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)

CARD_VERSION = "1.0.0"
HANDOFF_SKILL_ID = "handoff"
CONSULT_SKILL_ID = "consult"
BEARER_SCHEME_NAME = "peerBearer"
DATA_MEDIA_TYPE = "application/json"
TEXT_MEDIA_TYPE = "text/plain"


def build_agent_card(*, name: str, description: str, a2a_url: str, requires_bearer_token: bool) -> AgentCard:
    card = AgentCard(
        name=name,
        description=description,
        version=CARD_VERSION,
        supported_interfaces=[
            AgentInterface(protocol_binding="JSONRPC", protocol_version="1.0", url=a2a_url),
            AgentInterface(protocol_binding="JSONRPC", protocol_version="0.3", url=a2a_url),
        ],
        capabilities=AgentCapabilities(streaming=False, push_notifications=True),
        default_input_modes=[DATA_MEDIA_TYPE, TEXT_MEDIA_TYPE],
        default_output_modes=[DATA_MEDIA_TYPE, TEXT_MEDIA_TYPE],
        skills=[
            AgentSkill(
                id=HANDOFF_SKILL_ID,
                name="Handoff",
                description=(
                    f"Takes over a Microsoft Teams user from a peer bot: {name} opens a 1:1 chat with "
                    f"the user and carries on with the context. {description}"
                ),
                tags=["handoff", "teams"],
                examples=[],
                input_modes=[DATA_MEDIA_TYPE],
                output_modes=[DATA_MEDIA_TYPE],
            ),
            AgentSkill(
                id=CONSULT_SKILL_ID,
                name="Consult",
                description=(
                    f"Answers a peer bot's question in one message; the user stays put. {description}"
                ),
                tags=["consult", "question"],
                examples=[],
                input_modes=[TEXT_MEDIA_TYPE],
                output_modes=[TEXT_MEDIA_TYPE],
            ),
        ],
    )
    if requires_bearer_token:
        card.security_schemes[BEARER_SCHEME_NAME].CopyFrom(
            SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="bearer",
                    bearer_format="JWT",
                    description=(
                        "Short-lived JWT signed by the calling bot: iss = caller, aud = this bot, "
                        "exp within 60 s, unique jti."
                    ),
                )
            )
        )
        card.security_requirements.append(
            SecurityRequirement(schemes={BEARER_SCHEME_NAME: StringList(list=[])})
        )
    return card

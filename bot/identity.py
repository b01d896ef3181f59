"""Who the user of a turn is and where to reach them, read off the inbound Teams activity."""

from __future__ import annotations

import re
from dataclasses import dataclass

from microsoft_teams.api.activities.message import MessageActivity, MessageUpdateActivity
from microsoft_teams.api.models import ConversationReference

from a2a_bridge.handoff import normal_service_url

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def clean_user_name(name: str | None) -> str:
    return _CONTROL_CHARS.sub(" ", name or "").strip()[:100]


@dataclass(frozen=True)
class TurnIdentity:
    conversation_id: str
    user_name: str
    aad_object_id: str
    tenant_id: str
    service_url: str
    hops: int = 0
    conversation_type: str = "personal"
    """personal, groupChat or channel: outside a personal chat the bot answers only when mentioned,
    and a handoff's notice there names no private details."""
    turn_id: str = ""
    """The activity that started the turn: what the turn does once (a handoff) is keyed by it, so a
    turn run again after a crash does not do it twice."""

    @property
    def personal(self) -> bool:
        return self.conversation_type == "personal"

    @property
    def can_be_handed_off(self) -> bool:
        """A peer can only open a 1:1 with a user it can address (aadObjectId, tenant, serviceUrl)."""
        return bool(self.aad_object_id and self.tenant_id and self.service_url)


def identity_of(activity: MessageActivity | MessageUpdateActivity) -> TurnIdentity:
    tenant = activity.conversation.tenant_id or ""
    if not tenant and activity.channel_data is not None and activity.channel_data.tenant is not None:
        tenant = activity.channel_data.tenant.id or ""
    return TurnIdentity(
        conversation_id=activity.conversation.id,
        user_name=clean_user_name(activity.from_.name),
        aad_object_id=activity.from_.aad_object_id or "",
        tenant_id=tenant,
        service_url=normal_service_url(activity.service_url or ""),
        conversation_type=activity.conversation.conversation_type or "personal",
    )


def addressed(reference: ConversationReference, identity: TurnIdentity) -> ConversationReference:
    """The turn's reference as every reply is sent through it: at the serviceUrl written once, and
    naming the user's tenant (some tenants refuse a bot's post to a conversation without it)."""
    conversation = reference.conversation
    if not conversation.tenant_id and identity.tenant_id:
        conversation = conversation.model_copy(update={"tenant_id": identity.tenant_id})
    return reference.model_copy(update={"service_url": identity.service_url, "conversation": conversation})

"""The HandoffMessage wire contract and the outcome a receiver answers with.

Field names on the wire are camelCase (``handoffId``, ``aadObjectId``...). Every id is a string:
A2A data parts are protobuf Structs, in which every number comes back as a float.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

HANDOFF_KIND = "handoff"
OUTCOME_KIND = "handoffOutcome"
MAX_SUMMARY_CHARS = 4000
_MESSAGE_ID_NAMESPACE = uuid.UUID("6c1f8f0e-3f43-4b7e-9a55-2f3f0c9a1d21")


class _WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", str_strip_whitespace=True
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


class HandoffMessage(_WireModel):
    """What one bot tells another when it hands a user over."""

    kind: Literal["handoff"] = "handoff"
    handoff_id: str = Field(min_length=1, max_length=100)
    from_: str = Field(alias="from", min_length=1, max_length=100)
    user_name: str = Field(default="", max_length=200)
    aad_object_id: str = Field(min_length=1, max_length=100)
    tenant_id: str = Field(min_length=1, max_length=100)
    service_url: str = Field(min_length=1, max_length=500, pattern=r"^https?://")
    summary: str = Field(min_length=1, max_length=MAX_SUMMARY_CHARS)
    hops: int = Field(ge=1, le=100)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> HandoffMessage:
        """Parse a data part; a whole-number float (how Structs carry ints) counts as an int."""
        normalised = dict(data)
        hops = normalised.get("hops")
        if isinstance(hops, float) and hops.is_integer():
            normalised["hops"] = int(hops)
        return cls.model_validate(normalised, strict=False)

    def a2a_message_id(self) -> str:
        """Derived from handoffId, so a retried send is the same A2A message."""
        return str(uuid.uuid5(_MESSAGE_ID_NAMESPACE, f"handoff:{self.handoff_id}"))


class HandoffStatus(StrEnum):
    DELIVERED = "delivered"
    REJECTED = "rejected"
    FAILED = "failed"


class HandoffOutcome(_WireModel):
    """The receiver's answer. ``reason`` is written for the user: no internals, no secrets."""

    kind: Literal["handoffOutcome"] = "handoffOutcome"
    handoff_id: str
    status: HandoffStatus
    peer: str
    conversation_id: str | None = None
    reason: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is HandoffStatus.DELIVERED


def describe_validation_error(error: ValidationError) -> str:
    """One line naming the offending wire field(s), without echoing the submitted values."""
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(message)"
        problems.append(f"{field}: {item['msg']}")
    return "invalid handoff: " + "; ".join(problems)

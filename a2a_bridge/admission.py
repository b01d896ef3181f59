"""Whether a received handoff may be carried out, decided before any task exists for it.

A handoff whose ``from`` is not its authenticated caller is -32602; one that policy refuses (hop
limit, service URL, tenant) is answered with a ``rejected`` outcome. Neither leaves anything
behind: no task, no ledger row, no payload, no outbound call. A handoff that passes is claimed in
the ledger under (caller, handoff id), and the claim says whether this request now owns it,
another is carrying it out, or it has ended (a retried send).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from a2a.utils.errors import InvalidParamsError

from a2a_bridge.handoff import HandoffOutcome, HandoffStatus, ReasonCode
from a2a_bridge.jobs import Claim, HandoffJob, HandoffLedger
from a2a_bridge.policy import HandoffPolicy
from a2a_bridge.telemetry import A2AMetrics

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Refused:
    outcome: HandoffOutcome


Admission = Claim | Refused


class HandoffAdmission:
    def __init__(
        self, *, policy: HandoffPolicy, ledger: HandoffLedger, metrics: A2AMetrics | None = None
    ) -> None:
        self._policy = policy
        self._ledger = ledger
        self._metrics = metrics

    @property
    def receiver(self) -> str:
        return self._policy.receiver_name

    async def admit(self, job: HandoffJob, *, authenticated: bool) -> Admission:
        handoff = job.handoff
        if authenticated and job.caller != handoff.from_:
            log.warning("handoff_rejected", reason="from does not match the authenticated caller")
            raise InvalidParamsError(message="invalid handoff: from: does not match the authenticated caller")
        refusal = self._policy.refusal(handoff)
        if refusal is not None:
            log.warning("handoff_rejected", reason=refusal)
            if self._metrics is not None:
                sender = self._metrics.peer_label(handoff.from_)
                self._metrics.handoffs_received.labels(sender, HandoffStatus.REJECTED.value).inc()
            return Refused(
                HandoffOutcome(
                    handoff_id=handoff.handoff_id,
                    status=HandoffStatus.REJECTED,
                    peer=self._policy.receiver_name,
                    reason=refusal,
                    reason_code=ReasonCode.POLICY_REJECTED,
                )
            )
        return await self._ledger.claim(job)

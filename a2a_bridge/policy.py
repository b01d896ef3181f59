"""What a receiver allows: how many hops, which Teams service addresses, which tenants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from a2a_bridge.handoff import HandoffMessage

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class HandoffPolicy:
    receiver_name: str
    max_hops: int = 1
    service_url_hosts: Sequence[str] = ("smba.trafficmanager.net",)
    allow_loopback_service_urls: bool = False
    tenant_allowlist: Sequence[str] = field(default_factory=tuple)

    def refusal(self, handoff: HandoffMessage) -> str | None:
        """Why this handoff may not be carried out, or None when it may."""
        if handoff.hops > self.max_hops:
            return (
                f"{self.receiver_name} does not take handoffs that were already passed on "
                f"{handoff.hops - 1} time(s); ask {self.receiver_name} directly instead."
            )
        host, port, scheme = _service_address(handoff.service_url)
        loopback_ok = self.allow_loopback_service_urls and host in LOOPBACK_HOSTS
        allowed = scheme == "https" and port in (None, 443) and host in self.service_url_hosts
        if not loopback_ok and not allowed:
            return (
                f"the Teams service address in this handoff is not one {self.receiver_name} is "
                "allowed to contact."
            )
        if self.tenant_allowlist and handoff.tenant_id not in self.tenant_allowlist:
            return f"{self.receiver_name} is not enabled for your organisation."
        return None


def _service_address(url: str) -> tuple[str, int | None, str]:
    """(host, port, scheme) of a Teams service URL, the host as the network would resolve it; an
    empty host when the URL is anything but plain: unparseable, with user info or brackets, or a
    host whose IDNA/NFKC form differs from what is written (a look-alike of an allowed host)."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname or ""
    except ValueError:
        return "", None, ""
    if "@" in parts.netloc or "[" in parts.netloc or not host.isascii():
        return "", None, ""
    try:
        resolved = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return "", None, ""
    return (resolved if resolved == host.lower() else ""), port, parts.scheme

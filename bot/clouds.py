"""The Microsoft clouds a Teams bot can live in, and what each one means for this bot.

A cloud decides three things: where tokens come from (Entra's login host, the Bot Framework scope,
the keys Teams signs with), which hosts Teams' serviceUrls use (the handoff allowlist), and where
the Teams client lives (deep links). The Teams SDK knows the first for four clouds; GCC (Moderate)
is not one of them because it uses the public cloud's identity endpoints with its own Teams hosts.

Note on names: the Teams SDK's ``CLOUD=USGov`` means GCC High. Here ``USGov`` is GCC (Moderate)
and GCC High is ``USGovHigh``, the names the Teams admin centre and Microsoft's cloud docs use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from microsoft_teams.api.auth.cloud_environment import CloudEnvironment

CloudName = Literal["Public", "USGov", "USGovHigh", "USGovDoD", "China"]
CLOUD_NAMES: tuple[CloudName, ...] = ("Public", "USGov", "USGovHigh", "USGovDoD", "China")


@dataclass(frozen=True)
class Cloud:
    name: CloudName
    label: str
    sdk_cloud: Literal["public", "usgov", "usgovdod", "china"]
    """The Teams SDK's name for the cloud whose identity endpoints this one uses."""
    service_url_hosts: tuple[str, ...]
    """Teams' serviceUrl hosts in this cloud (empty: not published; the operator names them)."""
    teams_web: str
    """The Teams client's origin, for links that open a chat."""
    graph_url: str

    def sdk_environment(self) -> CloudEnvironment:
        from microsoft_teams.api.auth.cloud_environment import from_name

        return from_name(self.sdk_cloud)


CLOUDS: dict[CloudName, Cloud] = {
    "Public": Cloud(
        "Public",
        "Microsoft 365 (commercial)",
        "public",
        ("smba.trafficmanager.net",),
        "https://teams.microsoft.com",
        "https://graph.microsoft.com",
    ),
    "USGov": Cloud(
        "USGov",
        "GCC (US Government Community Cloud, Moderate)",
        "public",
        ("smba.infra.gcc.teams.microsoft.com",),
        "https://teams.microsoft.com",
        "https://graph.microsoft.com",
    ),
    "USGovHigh": Cloud(
        "USGovHigh",
        "GCC High",
        "usgov",
        ("smba.infra.gov.teams.microsoft.us",),
        "https://gov.teams.microsoft.us",
        "https://graph.microsoft.us",
    ),
    "USGovDoD": Cloud(
        "USGovDoD",
        "DoD",
        "usgovdod",
        ("smba.infra.dod.teams.microsoft.us",),
        "https://dod.teams.microsoft.us",
        "https://dod-graph.microsoft.us",
    ),
    "China": Cloud(
        "China",
        "Microsoft 365 operated by 21Vianet",
        "china",
        (),
        "https://teams.microsoftonline.cn",
        "https://microsoftgraph.chinacloudapi.cn",
    ),
}


def cloud_named(name: str) -> CloudName:
    """The canonical spelling of a cloud name given in any case; ValueError naming the choices."""
    for known in CLOUD_NAMES:
        if known.lower() == name.strip().lower():
            return known
    raise ValueError(f"{name!r} is not a cloud; use one of {', '.join(CLOUD_NAMES)}")

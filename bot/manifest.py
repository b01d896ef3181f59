"""The Teams app package of one bot: manifest.json plus its two icons, zipped.

Everything comes from the instance's settings: the bot id is CLIENT_ID, names and descriptions
come from the persona, validDomains from BOT_SELF_URL. Values the manifest schema would reject
(too long, missing) stop with an error naming the setting, rather than producing a package Teams
refuses at upload.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.config import Settings

# The newest schema the offline npm package @microsoft/app-manifest carries (the tests validate
# against it).
MANIFEST_VERSION = "1.30"
SCHEMA_URL = (
    f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


class ManifestError(Exception):
    pass


def short_description(description: str) -> str:
    """The persona's headline: the text before the first ':' or '.' (e.g. 'Travel and expenses')."""
    return re.split(r"[:.]", description, maxsplit=1)[0].strip()


def bumped(version: str) -> str:
    """The next patch version (Teams takes an updated package only with a higher version)."""
    major, minor, patch = (int(part) for part in _check_version(version).split("."))
    return f"{major}.{minor}.{patch + 1}"


def packaged_version(package: Path) -> str | None:
    """The app version in a package written before, if there is one and it can be read."""
    try:
        with zipfile.ZipFile(package) as existing:
            version = json.loads(existing.read("manifest.json")).get("version")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return version if isinstance(version, str) and _SEMVER.match(version) else None


def _check_version(version: str) -> str:
    if not _SEMVER.match(version):
        raise ManifestError(f"app version {version!r}: must be MAJOR.MINOR.PATCH, e.g. 1.0.3")
    return version


def build_manifest(settings: Settings, *, app_version: str | None = None) -> dict[str, Any]:
    app_version = _check_version(app_version or settings.manifest_app_version)
    if not settings.client_id:
        raise ManifestError("CLIENT_ID: required for a Teams app package (it is the bot id)")
    if not _GUID.match(settings.client_id):
        raise ManifestError("CLIENT_ID: must be the bot's Microsoft App ID, a GUID")
    headline = short_description(settings.bot_description)
    if len(headline) > 80:
        raise ManifestError(
            f"BOT_DESCRIPTION: its headline (the text before the first ':' or '.') is {len(headline)} "
            "characters; the manifest's short description allows 80"
        )
    if len(settings.bot_description) > 4000:
        raise ManifestError("BOT_DESCRIPTION: longer than the manifest's 4000 characters")
    if len(settings.manifest_developer_name) > 32:
        raise ManifestError("MANIFEST_DEVELOPER_NAME: the manifest allows at most 32 characters")
    site = settings.manifest_developer_url or settings.bot_self_url
    if not site.startswith("https://"):
        raise ManifestError("MANIFEST_DEVELOPER_URL: must be an https URL (defaults to BOT_SELF_URL)")
    privacy = settings.manifest_privacy_url or f"{settings.bot_self_url}/privacy"
    terms = settings.manifest_terms_url or f"{settings.bot_self_url}/terms"
    for name, url in (("MANIFEST_PRIVACY_URL", privacy), ("MANIFEST_TERMS_URL", terms)):
        if not url.startswith("https://"):
            raise ManifestError(f"{name}: must be an https URL (defaults to BOT_SELF_URL's page)")
    host = urlsplit(settings.bot_self_url).hostname or ""
    return {
        "$schema": SCHEMA_URL,
        "manifestVersion": MANIFEST_VERSION,
        "version": app_version,
        "id": settings.client_id,
        "developer": {
            "name": settings.manifest_developer_name,
            "websiteUrl": site,
            "privacyUrl": privacy,
            "termsOfUseUrl": terms,
        },
        "name": {"short": settings.bot_name, "full": f"{settings.bot_name}, {headline}"[:100]},
        "description": {"short": headline, "full": settings.bot_description},
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": accent_color(settings.bot_name),
        "bots": [
            {
                "botId": settings.client_id,
                "scopes": ["personal", "groupChat", "team"] if settings.group_chats else ["personal"],
                "supportsFiles": False,
                "isNotificationOnly": False,
            }
        ],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [host],
    }


def accent_color(name: str) -> str:
    digest = hashlib.sha256(name.encode()).digest()
    # Keep the colour dark enough for white to read on it.
    return "#" + "".join(f"{40 + byte % 120:02X}" for byte in digest[:3])


def write_package(
    settings: Settings, out_dir: Path, *, app_version: str | None = None, bump: bool = False
) -> tuple[Path, str]:
    """Write ``<bot>.zip``; with ``bump``, at the version after the one packaged there before (or
    after MANIFEST_APP_VERSION, whichever is higher). The package's path and its version."""
    target = out_dir / f"{settings.bot_name.lower()}.zip"
    if bump:
        base = _check_version(app_version or settings.manifest_app_version)
        before = packaged_version(target)
        if before is not None and _semver(before) > _semver(base):
            base = before
        app_version = bumped(base)
    manifest = build_manifest(settings, app_version=app_version)
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", json.dumps(manifest, indent=2))
        package.writestr("color.png", color_icon(manifest["accentColor"]))
        package.writestr("outline.png", outline_icon())
    return target, str(manifest["version"])


def _semver(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


# Icons: drawn here (a white ring on the persona's colour; a white ring on transparency), written
# as PNG with zlib, so no imaging library is needed for two small pictures.


def color_icon(accent: str, size: int = 192) -> bytes:
    red, green, blue = (int(accent[i : i + 2], 16) for i in (1, 3, 5))
    return _png(
        size,
        lambda x, y: (255, 255, 255, 255) if _on_ring(x, y, size, 0.30, 0.40) else (red, green, blue, 255),
    )


def outline_icon(size: int = 32) -> bytes:
    return _png(size, lambda x, y: (255, 255, 255, 255) if _on_ring(x, y, size, 0.28, 0.42) else (0, 0, 0, 0))


def _on_ring(x: int, y: int, size: int, inner: float, outer: float) -> bool:
    centre = (size - 1) / 2
    distance = ((x - centre) ** 2 + (y - centre) ** 2) ** 0.5 / size
    return inner <= distance <= outer


def _png(size: int, pixel: Any) -> bytes:
    rows = b"".join(
        b"\x00" + b"".join(struct.pack("BBBB", *pixel(x, y)) for x in range(size)) for y in range(size)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )

"""The Teams app package: valid against the official manifest schema, real icons, clear errors."""

from __future__ import annotations

import asyncio
import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from bot.config import Settings
from bot.manifest import MANIFEST_VERSION, ManifestError, build_manifest, write_package
from scripts.bot_process import ROOT
from tests.conftest import ALICE_DESCRIPTION
from tests.harness import started_bot
from tests.processes import process_env, spawn_bot

APP_ID = "3f2a6c1e-8b7d-4e5f-9a0b-1c2d3e4f5a6b"
SCHEMA = (
    ROOT
    / ".run"
    / "playground"
    / "node_modules"
    / "@microsoft"
    / "app-manifest"
    / "build"
    / "json-schemas"
    / "teams"
    / f"v{MANIFEST_VERSION}"
    / "MicrosoftTeams.schema.json"
)


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "bot_name": "Alice",
        "bot_description": ALICE_DESCRIPTION,
        "bot_self_url": "https://alice.contoso.com",
        "client_id": APP_ID,
        "tenant_id": "tenant-contoso",
        "client_secret": "secret",
        "a2a_auth_secret": "x" * 40,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def read_png(data: bytes) -> tuple[int, int, list[tuple[int, int, int, int]]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (depth, colour) == (8, 6), "8-bit RGBA"
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    raw = zlib.decompress(idat)
    stride = 1 + 4 * width
    pixels = [
        struct.unpack("BBBB", raw[y * stride + 1 + 4 * x : y * stride + 5 + 4 * x])
        for y in range(height)
        for x in range(width)
    ]
    return width, height, pixels


def test_package_is_valid_against_the_official_schema_with_real_icons(tmp_path: Path) -> None:
    package, version = write_package(settings(), tmp_path)
    assert package.name == "alice.zip"
    assert version == "1.0.0"
    with zipfile.ZipFile(package) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        color = read_png(archive.read("color.png"))
        outline = read_png(archive.read("outline.png"))
    schema = json.loads(SCHEMA.read_text(encoding="utf-8-sig"))
    jsonschema.Draft4Validator(schema).validate(manifest)

    assert manifest["id"] == APP_ID and manifest["bots"][0]["botId"] == APP_ID
    assert manifest["bots"][0]["scopes"] == ["personal"] and manifest["bots"][0]["supportsFiles"] is False
    assert manifest["name"]["short"] == "Alice"
    assert manifest["description"] == {"short": "Travel and expenses", "full": ALICE_DESCRIPTION}
    assert manifest["validDomains"] == ["alice.contoso.com"]
    assert manifest["manifestVersion"] == MANIFEST_VERSION == "1.30"
    assert manifest["developer"]["privacyUrl"] == "https://alice.contoso.com/privacy"
    assert manifest["developer"]["termsOfUseUrl"] == "https://alice.contoso.com/terms"

    assert color[:2] == (192, 192)
    assert outline[:2] == (32, 32)
    assert outline[2][0][3] == 0, "outline corner is transparent"
    assert {p for p in outline[2] if p[3]} == {(255, 255, 255, 255)}, "outline is white only"


def test_the_schema_rejects_what_the_builder_must_never_produce() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8-sig"))
    broken = build_manifest(settings())
    broken["description"]["short"] = "x" * 81
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(broken)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bot_description": "A" * 90 + ": the rest"}, "BOT_DESCRIPTION: its headline"),
        ({"manifest_developer_name": "D" * 33}, "MANIFEST_DEVELOPER_NAME: the manifest allows at most 32"),
        ({"client_id": "not-a-guid"}, "CLIENT_ID: must be the bot's Microsoft App ID, a GUID"),
        ({"bot_self_url": "http://alice.local"}, "MANIFEST_DEVELOPER_URL: must be an https URL"),
    ],
)
def test_values_the_schema_would_refuse_are_named(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=message.replace("(", r"\(")):
        build_manifest(settings(**overrides))


async def test_manifest_command_writes_the_zip(tmp_path: Path) -> None:
    env = process_env(
        BOT_NAME="Bob",
        BOT_DESCRIPTION="IT and devices: laptops",
        BOT_SELF_URL="https://bob.contoso.com",
        CLIENT_ID=APP_ID,
        TENANT_ID="tenant-contoso",
        CLIENT_SECRET="s",
        A2A_AUTH_SECRET="y" * 40,
    )
    process = await spawn_bot("manifest", "--out", str(tmp_path), cwd=tmp_path, env=env)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    assert Path(stdout.decode().strip()) == tmp_path / "bob.zip"
    assert zipfile.ZipFile(tmp_path / "bob.zip").testzip() is None
    assert "app version 1.0.0" in stderr.decode()


def packaged(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        return dict(json.loads(archive.read("manifest.json")))


async def test_an_update_is_written_at_the_next_version_and_a_chosen_one_is_kept(tmp_path: Path) -> None:
    env = process_env(
        BOT_NAME="Bob",
        BOT_DESCRIPTION="IT and devices: laptops",
        BOT_SELF_URL="https://bob.contoso.com",
        CLIENT_ID=APP_ID,
        TENANT_ID="tenant-contoso",
        CLIENT_SECRET="s",
        A2A_AUTH_SECRET="y" * 40,
        MANIFEST_PRIVACY_URL="https://contoso.com/privacy",
    )
    versions = []
    for args in (["--app-version", "2.4.0"], ["--bump"], ["--bump"], ["--app-version", "v3"]):
        process = await spawn_bot("manifest", "--out", str(tmp_path), *args, cwd=tmp_path, env=env)
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
        versions.append((process.returncode, packaged(tmp_path / "bob.zip")["version"], stderr.decode()))
    assert [(code, version) for code, version, _ in versions] == [
        (0, "2.4.0"),
        (0, "2.4.1"),
        (0, "2.4.2"),
        (2, "2.4.2"),
    ], "an update goes up from what was packaged; a bad version writes nothing"
    assert "app version 'v3': must be MAJOR.MINOR.PATCH" in versions[-1][2]
    developer = packaged(tmp_path / "bob.zip")["developer"]
    assert developer["privacyUrl"] == "https://contoso.com/privacy"
    assert developer["termsOfUseUrl"] == "https://bob.contoso.com/terms"


async def test_the_privacy_and_terms_pages_the_package_links_to_are_served(
    http: httpx.AsyncClient, state_dir: Path
) -> None:
    async with started_bot("Alice", ALICE_DESCRIPTION, state_dir=state_dir) as alice:
        privacy = await http.get(f"{alice.url}/privacy")
        terms = await http.get(f"{alice.url}/terms")
    assert privacy.status_code == terms.status_code == 200
    assert privacy.headers["content-type"].startswith("text/html")
    assert "<h1>Alice: privacy statement</h1>" in privacy.text
    assert "Teams handoff bots" in privacy.text, "run by MANIFEST_DEVELOPER_NAME"
    assert "<h1>Alice: terms of use</h1>" in terms.text


def test_group_chats_add_the_group_and_team_scopes_and_stay_valid() -> None:
    manifest = build_manifest(settings(group_chats=True))
    assert manifest["bots"][0]["scopes"] == ["personal", "groupChat", "team"]
    jsonschema.Draft4Validator(json.loads(SCHEMA.read_text(encoding="utf-8-sig"))).validate(manifest)

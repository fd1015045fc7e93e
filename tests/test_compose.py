"""docker-compose.yml agrees with hotline's settings, keeps AMI off the host and secrets out of the file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotline.settings import PbxSettings, Settings

ROOT = Path(__file__).resolve().parents[1]
AMI_PORT = "5038"
_SUBSTITUTION = re.compile(r"\$\{[A-Z][A-Z0-9_]*(?::?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whichever of compose's two spellings (mapping or list) it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """volume name -> container path, for the named volumes a service mounts (short syntax)."""
    mounts: dict[str, str] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts[volume["source"]] = volume["target"]
            continue
        source, target = volume.split(":")[:2]
        mounts[source] = target
    return mounts


def test_the_three_services_exist(compose: dict[str, Any]) -> None:
    assert {"postgres", "asterisk", "hotline"} <= set(compose["services"])
    assert compose["services"]["postgres"]["image"].startswith("postgres:16")
    assert compose["services"]["asterisk"]["build"] in ("./dialplan", {"context": "./dialplan"})
    assert compose["services"]["hotline"]["build"] in (".", "./", {"context": "."})


def test_asterisk_does_not_publish_ami(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                published = {str(port.get("target")), str(port.get("published"))}
            else:
                # "[ip:]host[-range]:container[-range][/proto]": no 5038 on either side, nor inside a range
                published = set(re.split(r"[:/-]", str(port)))
                for low, high in re.findall(r"(\d+)-(\d+)", str(port)):
                    assert not int(low) <= int(AMI_PORT) <= int(high), (name, port)
            assert AMI_PORT not in published, (name, port)
    assert "network_mode" not in compose["services"]["asterisk"]


def test_hotline_waits_for_a_healthy_postgres(compose: dict[str, Any]) -> None:
    depends = compose["services"]["hotline"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in compose["services"]["postgres"]


def test_rendered_dialplan_volume_is_shared_at_the_dialplan_dir(compose: dict[str, Any]) -> None:
    hotline_env = _environment(compose["services"]["hotline"])
    dialplan_dir = hotline_env["HOTLINE_DIALPLAN_DIR"]
    hotline_mounts = _mounts(compose["services"]["hotline"])
    asterisk_mounts = _mounts(compose["services"]["asterisk"])
    shared = [name for name, target in hotline_mounts.items() if target == dialplan_dir]
    assert shared, f"no volume mounted at HOTLINE_DIALPLAN_DIR={dialplan_dir} in hotline"
    (volume,) = shared
    assert volume in compose["volumes"]
    assert asterisk_mounts.get(volume) == dialplan_dir
    # Asterisk's image #includes the rendered files from that very path.
    dockerfile = (ROOT / "dialplan" / "Dockerfile").read_text(encoding="utf-8")
    assert f"{dialplan_dir}/extensions_rendered.conf" in dockerfile
    assert f"{dialplan_dir}/queues_rendered.conf" in dockerfile


def test_recordings_volume_is_shared(compose: dict[str, Any]) -> None:
    hotline_env = _environment(compose["services"]["hotline"])
    hotline_mounts = _mounts(compose["services"]["hotline"])
    asterisk_mounts = _mounts(compose["services"]["asterisk"])
    (volume,) = [
        name for name, target in hotline_mounts.items() if target == hotline_env["HOTLINE_RECORDINGS_DIR"]
    ]
    # MixMonitor's relative file names land in Asterisk's monitor directory.
    assert asterisk_mounts.get(volume) == "/var/spool/asterisk/monitor"


def test_every_hotline_variable_is_a_setting(compose: dict[str, Any]) -> None:
    used = 0
    for name, service in compose["services"].items():
        for key in _environment(service):
            if not key.startswith("HOTLINE_"):
                continue
            used += 1
            field = key.removeprefix("HOTLINE_").lower()
            if "__" in field:
                parent, child = field.split("__", 1)
                assert parent == "ami", (name, key)
                assert child in PbxSettings.model_fields, (name, key)
            else:
                assert field in Settings.model_fields, (name, key)
    assert used >= 10


def test_hotline_points_at_the_compose_services(compose: dict[str, Any]) -> None:
    env = _environment(compose["services"]["hotline"])
    assert env["HOTLINE_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in env["HOTLINE_DATABASE_URL"]
    assert env["HOTLINE_AMI__HOST"] == "asterisk"
    assert env["HOTLINE_AMI__PORT"] == AMI_PORT
    assert env["HOTLINE_API_HOST"] == "0.0.0.0"


def test_secrets_come_from_the_environment(compose: dict[str, Any]) -> None:
    checked = 0
    for name, service in compose["services"].items():
        for key, value in _environment(service).items():
            if re.search(r"SECRET|PASSWORD|TOKEN", key):
                checked += 1
                assert _SUBSTITUTION.fullmatch(value), f"{name}: {key} must be ${{...}}, not a literal"
            if key.endswith("DATABASE_URL"):
                checked += 1
                password = re.match(r"^[a-z+]+://[^:/@]+:(.*)@[^@]+$", value)
                assert password, f"{name}: {key} must carry its password as ${{...}}"
                assert _SUBSTITUTION.fullmatch(password.group(1)), f"{name}: {key} has a literal password"
    assert checked >= 4


def test_hotline_image_migrates_then_serves() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert "pip install ." in dockerfile
    assert "hotline migrate && exec hotline serve --host 0.0.0.0" in dockerfile

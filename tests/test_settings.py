"""Settings: defaults, HOTLINE_ environment variables, and clear refusals of invalid values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hotline.settings import DEFAULT_DATABASE_URL, Settings


def _settings(**kwargs: object) -> Settings:
    return Settings(_env_file=None, **kwargs)  # type: ignore[arg-type]


def test_defaults_are_embedded_sqlite_and_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HOTLINE_DATABASE_URL", "HOTLINE_AMI__HOST", "HOTLINE_AUTO_MIGRATE"):
        monkeypatch.delenv(name, raising=False)
    settings = _settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.auto_migrate is True
    assert settings.ami.simulated


def test_environment_is_read_with_prefix_and_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_DATABASE_URL", "postgresql+asyncpg://u@db:5432/hotline")
    monkeypatch.setenv("HOTLINE_AMI__HOST", "asterisk")
    monkeypatch.setenv("HOTLINE_AMI__SECRET", "s3cret-value")
    monkeypatch.setenv("HOTLINE_API_PORT", "9000")
    settings = _settings()
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.auto_migrate is False  # PostgreSQL is migrated explicitly
    assert settings.ami.host == "asterisk" and not settings.ami.simulated
    assert settings.api_port == 9000
    assert settings.ami.secret.get_secret_value() == "s3cret-value"


def test_secret_never_printed() -> None:
    settings = _settings(ami={"host": "pbx", "secret": "s3cret-value"})
    assert "s3cret-value" not in repr(settings)
    assert "s3cret-value" not in str(settings.model_dump())
    assert "s3cret-value" not in settings.model_dump_json()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("database_url", "mysql://x", "database_url must start with"),
        ("timezone", "Mars/Olympus", "unknown time zone"),
        ("api_port", 70000, "less than or equal to 65535"),
        ("log_level", "LOUD", "log_level must be one of"),
        ("ami", {"port": 0}, "greater than or equal to 1"),
        ("ami", {"id": "bad id;"}, "PBX id must be"),
    ],
)
def test_invalid_values_are_refused_with_a_clear_message(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _settings(**{field: value})


def test_each_pbx_has_its_own_dialplan_directory(tmp_path: Path) -> None:
    base = tmp_path
    settings = _settings(
        dialplan_dir=base / "dialplan",
        ami={"id": "bucharest"},
        extra_pbxs=[
            {"id": "cluj", "host": "10.0.0.2"},
            {"id": "iasi", "host": "10.0.0.3", "dialplan_dir": str(base / "nfs" / "iasi")},
        ],
    )
    assert settings.pbx_ids == ["bucharest", "cluj", "iasi"]
    assert settings.dialplan_dir_of("bucharest") == base / "dialplan"  # where a one-PBX hotline always wrote
    assert settings.dialplan_dir_of("cluj") == base / "dialplan" / "cluj"
    assert settings.dialplan_dir_of("iasi") == base / "nfs" / "iasi"
    with pytest.raises(KeyError):
        settings.dialplan_dir_of("pbx1")
    with pytest.raises(ValidationError, match="its own dialplan directory"):
        _settings(dialplan_dir=base, extra_pbxs=[{"id": "cluj", "host": "10.0.0.2", "dialplan_dir": str(base)}])

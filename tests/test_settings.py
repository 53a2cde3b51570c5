"""Settings are parsed from an explicit environment, never at import time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from marketplace.settings import Mode, Settings, SettingsError


def test_embedded_mode_generates_secrets_once_and_keeps_them(tmp_path: Path) -> None:
    env = {"MARKETPLACE_VAR_DIR": str(tmp_path)}
    first = Settings.from_env(env)
    second = Settings.from_env(env)
    assert first.mode is Mode.EMBEDDED
    assert first.security.secret_key
    assert first.security.pii_hmac_key
    assert first.security == second.security
    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert stored["secret_key"] == first.security.secret_key
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0


def test_production_mode_names_every_missing_secret_in_one_line(tmp_path: Path) -> None:
    env = {"MARKETPLACE_MODE": "production", "MARKETPLACE_VAR_DIR": str(tmp_path)}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert "\n" not in message
    for name in ("SECRET_KEY", "PII_HMAC_KEY", "PII_ENCRYPTION_KEY", "DATABASE_URL", "REDIS_URL"):
        assert name in message
    assert not (tmp_path / "secrets.json").exists()


def test_production_mode_reads_everything_from_the_environment(tmp_path: Path) -> None:
    env = {
        "MARKETPLACE_MODE": "production",
        "DATABASE_URL": "postgresql://u:p@db:5432/mp",
        "REDIS_URL": "redis://redis:6379/0",
        "SECRET_KEY": "s" * 40,
        "PII_HMAC_KEY": "h" * 40,
        "PII_ENCRYPTION_KEY": "e" * 44,
        "S3_ENDPOINT": "minio:9000",
        "S3_ACCESS_KEY": "minio",
        "S3_SECRET_KEY": "minio-secret",
        "S3_BUCKET": "media",
        "PLATFORM_FEE_BPS": "300",
    }
    settings = Settings.from_env(env)
    assert settings.database.url == "postgresql+asyncpg://u:p@db:5432/mp"
    assert settings.redis.url == "redis://redis:6379/0"
    assert settings.storage.backend == "s3"
    assert settings.storage.bucket == "media"
    assert settings.payments.platform_fee_bps == 300
    assert settings.security.secret_key == "s" * 40


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("PORT", "eighty", id="integer"),
        pytest.param("LOG_JSON", "maybe", id="boolean"),
        pytest.param("MARKETPLACE_MODE", "staging", id="mode"),
    ],
)
def test_a_malformed_value_is_named_in_the_error(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"MARKETPLACE_VAR_DIR": str(tmp_path), name: value})


def test_s3_endpoint_without_keys_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="S3_ACCESS_KEY"):
        Settings.from_env({"MARKETPLACE_VAR_DIR": str(tmp_path), "S3_ENDPOINT": "minio:9000"})


def test_a_public_s3_endpoint_is_read_and_needs_the_s3_endpoint(tmp_path: Path) -> None:
    env = {
        "MARKETPLACE_VAR_DIR": str(tmp_path),
        "S3_ENDPOINT": "minio:9000",
        "S3_ACCESS_KEY": "minio",
        "S3_SECRET_KEY": "minio-secret",
        "S3_PUBLIC_ENDPOINT": "https://media.choque.vn",
    }

    settings = Settings.from_env(env)
    without_s3 = {k: v for k, v in env.items() if not k.startswith("S3_") or "PUBLIC" in k}

    assert settings.storage.endpoint == "minio:9000"
    assert settings.storage.public_endpoint == "https://media.choque.vn"
    assert Settings.from_env({**env, "S3_PUBLIC_ENDPOINT": ""}).storage.public_endpoint == ""
    with pytest.raises(SettingsError, match="S3_PUBLIC_ENDPOINT"):
        Settings.from_env(without_s3)


def test_importing_every_module_reads_no_environment_and_connects_to_nothing(
    tmp_path: Path,
) -> None:
    """Import all packages in a clean interpreter whose environment points at dead services."""
    code = (
        "import importlib, pkgutil, marketplace, media, workers\n"
        "for pkg in (marketplace, media, workers):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if m.name != 'marketplace.__main__':\n"
        "            importlib.import_module(m.name)\n"
        "import os; print(sorted(os.listdir('.')))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": "postgresql://nobody@203.0.113.1:1/none",
        "REDIS_URL": "redis://203.0.113.1:1/0",
        "PYTHONPATH": str(Path.cwd()),
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # nothing was created in the working directory (no var/, no secrets) by importing
    assert result.stdout.strip() == "[]"

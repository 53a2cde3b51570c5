"""One typed settings object, built explicitly from an environment mapping.

Nothing here runs at import time: `Settings.from_env()` is called by the app factory,
the CLI and the worker bootstrap, never by a module body.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

DEFAULT_VAR_DIR = Path("var")


class SettingsError(Exception):
    """A configuration problem worth one clear line at start-up."""


class Mode(StrEnum):
    """`embedded` generates its own secrets under var/; `production` demands them."""

    EMBEDDED = "embedded"
    PRODUCTION = "production"


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = ""
    pool_size: int = 20
    max_overflow: int = 0
    """A fixed pool: connections opened beyond `pool_size` are closed as soon as they come
    back, and under a steady load above it every request paid a connect (a fifth of a
    flash-sale request's CPU, bench/request_cost.py). Waiters are served in order instead."""
    echo: bool = False


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str = ""
    broker_visibility_timeout: int = 3600
    """Seconds after which a task message a worker took but never acknowledged (the worker
    was killed mid-task) goes to another worker. Longer than any task plus its retry
    countdown, or a slow task runs twice at once."""


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """`s3` when S3_ENDPOINT is set (MinIO in compose), else a filesystem store under var/media."""

    backend: str = "filesystem"
    endpoint: str = ""
    access_key: str = ""
    secret_key: str = ""
    bucket: str = "marketplace"
    secure: bool = False
    region: str = "us-east-1"
    public_endpoint: str = ""
    """Where browsers reach the store, when not at `endpoint` (compose: `minio:9000` for the
    API, `http://localhost:9000` for browsers). Presigned URLs are signed for this host."""
    root: Path = DEFAULT_VAR_DIR / "media"
    max_upload_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PaymentSettings:
    stripe_api_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = ""
    bank_webhook_secret: str = ""
    platform_fee_bps: int = 500
    """Platform fee in basis points (500 = 5%); 0 for poor and near-poor households."""
    collection_bank_bin: str = ""
    collection_account_number: str = ""
    """The platform's account buyers transfer to (VietQR); sellers are paid out from it."""


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    secret_key: str = ""
    pii_hmac_key: str = ""
    pii_encryption_key: str = ""
    token_ttl_seconds: int = 7 * 24 * 3600
    login_attempts_per_account: int = 5
    login_attempts_per_ip: int = 20
    login_window_seconds: int = 300
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536
    """Argon2id cost (iterations, KiB); hashes made with other costs are upgraded at login."""


@dataclass(frozen=True, slots=True)
class Settings:
    mode: Mode = Mode.EMBEDDED
    var_dir: Path = DEFAULT_VAR_DIR
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    payments: PaymentSettings = field(default_factory=PaymentSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the environment; in embedded mode fill missing secrets from var/secrets.json."""
        env = dict(os.environ if environ is None else environ)
        mode_raw = env.get("MARKETPLACE_MODE", Mode.EMBEDDED.value).strip().lower()
        try:
            mode = Mode(mode_raw)
        except ValueError:
            raise SettingsError(
                f"MARKETPLACE_MODE must be 'embedded' or 'production', got {mode_raw!r}"
            ) from None
        var_dir = Path(env.get("MARKETPLACE_VAR_DIR", str(DEFAULT_VAR_DIR)))

        secret_names = {
            "SECRET_KEY": "secret_key",
            "PII_HMAC_KEY": "pii_hmac_key",
            "PII_ENCRYPTION_KEY": "pii_encryption_key",
        }
        secret_values = {attr: env.get(name, "") for name, attr in secret_names.items()}
        if mode is Mode.PRODUCTION:
            missing = [name for name, attr in secret_names.items() if not secret_values[attr]]
            if not env.get("DATABASE_URL"):
                missing.append("DATABASE_URL")
            if not env.get("REDIS_URL"):
                missing.append("REDIS_URL")
            if missing:
                raise SettingsError(
                    "production mode needs these environment variables: " + ", ".join(missing)
                )
        else:
            stored = load_or_create_embedded_secrets(var_dir)
            secret_values = {k: v or stored[k] for k, v in secret_values.items()}

        s3_endpoint = env.get("S3_ENDPOINT", "")
        storage = StorageSettings(
            backend="s3" if s3_endpoint else "filesystem",
            endpoint=s3_endpoint,
            access_key=env.get("S3_ACCESS_KEY", ""),
            secret_key=env.get("S3_SECRET_KEY", ""),
            bucket=env.get("S3_BUCKET", "marketplace"),
            secure=_bool(env, "S3_SECURE", default=False),
            region=env.get("S3_REGION", "us-east-1"),
            public_endpoint=env.get("S3_PUBLIC_ENDPOINT", "").strip(),
            root=Path(env.get("MEDIA_ROOT", str(var_dir / "media"))),
            max_upload_bytes=_int(env, "MAX_UPLOAD_BYTES", 10 * 1024 * 1024),
        )
        if storage.backend == "s3" and not (storage.access_key and storage.secret_key):
            raise SettingsError("S3_ENDPOINT is set but S3_ACCESS_KEY or S3_SECRET_KEY is missing")
        if storage.public_endpoint and storage.backend != "s3":
            raise SettingsError("S3_PUBLIC_ENDPOINT is set but S3_ENDPOINT is not")

        return cls(
            mode=mode,
            var_dir=var_dir,
            host=env.get("HOST", "127.0.0.1"),
            port=_int(env, "PORT", 8000),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            log_json=_bool(env, "LOG_JSON", default=True),
            database=DatabaseSettings(
                url=normalise_database_url(env.get("DATABASE_URL", "")),
                pool_size=_int(env, "DATABASE_POOL_SIZE", 20),
                max_overflow=_int(env, "DATABASE_MAX_OVERFLOW", 0),
                echo=_bool(env, "DATABASE_ECHO", default=False),
            ),
            redis=RedisSettings(
                url=env.get("REDIS_URL", ""),
                broker_visibility_timeout=_int(env, "BROKER_VISIBILITY_TIMEOUT", 3600),
            ),
            storage=storage,
            payments=PaymentSettings(
                stripe_api_key=env.get("STRIPE_API_KEY", ""),
                stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET", ""),
                stripe_api_base=env.get("STRIPE_API_BASE", ""),
                bank_webhook_secret=env.get("BANK_WEBHOOK_SECRET", ""),
                platform_fee_bps=_int(env, "PLATFORM_FEE_BPS", 500),
                collection_bank_bin=env.get("COLLECTION_BANK_BIN", ""),
                collection_account_number=env.get("COLLECTION_ACCOUNT_NUMBER", ""),
            ),
            security=SecuritySettings(
                **secret_values,
                token_ttl_seconds=_int(env, "TOKEN_TTL_SECONDS", 7 * 24 * 3600),
                login_attempts_per_account=_int(env, "LOGIN_ATTEMPTS_PER_ACCOUNT", 5),
                login_attempts_per_ip=_int(env, "LOGIN_ATTEMPTS_PER_IP", 20),
                login_window_seconds=_int(env, "LOGIN_WINDOW_SECONDS", 300),
                argon2_time_cost=_int(env, "ARGON2_TIME_COST", 3),
                argon2_memory_cost=_int(env, "ARGON2_MEMORY_COST", 65536),
            ),
        )

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with top-level fields replaced (tests and the CLI use this, never mutation)."""
        return replace(self, **changes)


def normalise_database_url(url: str) -> str:
    """Accept the usual `postgresql://` spelling and use the asyncpg driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def load_or_create_embedded_secrets(var_dir: Path) -> dict[str, str]:
    """Embedded mode keeps its generated secrets so tokens and PII stay readable across runs."""
    path = var_dir / "secrets.json"
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    var_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "secret_key": secrets.token_urlsafe(48),
        "pii_hmac_key": secrets.token_urlsafe(48),
        # Fernet wants 32 url-safe base64-encoded bytes.
        "pii_encryption_key": _fernet_key(),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)
    return data


def _fernet_key() -> str:
    import base64  # noqa: PLC0415 - only the embedded first run needs it

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


def _bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")

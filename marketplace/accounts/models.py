"""Accounts, their roles and the bearer tokens they log in with.

A login is an e-mail address or a Vietnamese mobile number, kept in one normalised spelling
(lower case; a phone as `0xxxxxxxxx`) so uniqueness is case-insensitive by construction and
the database refuses any other spelling. Officials see households of one commune or one
province: their jurisdiction is part of the account, and only officials have one.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Enum, ForeignKey, String, true
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base


class Role(StrEnum):
    ADMIN = "admin"
    FARMER = "farmer"
    """A farming household's own account."""
    COOPERATIVE_MANAGER = "cooperative_manager"
    HOST = "host"
    """Runs livestream sessions."""
    BUYER = "buyer"
    HELPER = "helper"
    """Community digital helper: acts for households that gave recorded consent."""
    OFFICIAL = "official"
    """Commune or province official: reads reports of one jurisdiction."""


class JurisdictionLevel(StrEnum):
    COMMUNE = "commune"
    PROVINCE = "province"


def _stored_as_string(enum: type[StrEnum], length: int) -> Enum:
    """A VARCHAR holding the enum's value (not its name), read back as the enum."""
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()]")
_VN_MOBILE = re.compile(r"^0\d{9}$")


def normalise_phone(raw: str) -> str:
    """Separators dropped and the country code `+84`/`84` written as the leading `0`."""
    digits = _PHONE_SEPARATORS.sub("", raw.strip())
    if digits.startswith("+84"):
        return "0" + digits[3:]
    if digits.startswith("84") and len(digits) == 11:
        return "0" + digits[2:]
    return digits


def is_valid_phone(phone: str) -> bool:
    return bool(_VN_MOBILE.match(phone))


def normalise_login(raw: str) -> str:
    """The one spelling a login is stored and looked up under: e-mails lower-cased, phone
    numbers as `0xxxxxxxxx`, so "+84 912 345 678" and "0912345678" are one account."""
    login = raw.strip().lower()
    return login if "@" in login else normalise_phone(login)


def is_valid_login(login: str) -> bool:
    """A normalised login must be an e-mail address or a 10-digit Vietnamese number."""
    return len(login) <= 254 and bool(_EMAIL.match(login) or _VN_MOBILE.match(login))


_ROLE_VALUES = ", ".join(f"'{role.value}'" for role in Role)
_LEVEL_VALUES = ", ".join(f"'{level.value}'" for level in JurisdictionLevel)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("login = lower(login)", name="login_normalised"),
        CheckConstraint(f"role IN ({_ROLE_VALUES})", name="role_known"),
        CheckConstraint(
            f"jurisdiction_level IS NULL OR jurisdiction_level IN ({_LEVEL_VALUES})",
            name="jurisdiction_level_known",
        ),
        CheckConstraint(
            "(role = 'official' AND jurisdiction_level IS NOT NULL"
            " AND jurisdiction_code IS NOT NULL AND admin_version IS NOT NULL)"
            " OR (role <> 'official' AND jurisdiction_level IS NULL"
            " AND jurisdiction_code IS NULL AND admin_version IS NULL)",
            name="official_jurisdiction",
        ),
    )

    login: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    role: Mapped[Role] = mapped_column(_stored_as_string(Role, 32))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    jurisdiction_level: Mapped[JurisdictionLevel | None] = mapped_column(
        _stored_as_string(JurisdictionLevel, 16), default=None
    )
    jurisdiction_code: Mapped[str | None] = mapped_column(String(16), default=None)
    """A province or commune code exactly as the geo tables store it."""
    admin_version: Mapped[str | None] = mapped_column(String(16), default=None)
    """The administrative version the jurisdiction code belongs to (e.g. "2025-07")."""
    deactivated_at: Mapped[datetime | None] = mapped_column(default=None)

    def deactivate(self, now: datetime) -> None:
        """A deactivated account cannot log in; its tokens are revoked by the service."""
        if self.is_active:
            self.is_active = False
            self.deactivated_at = now


class ApiToken(Base):
    """An opaque bearer token, known to us only by its SHA-256: a database leak yields no
    usable token."""

    __tablename__ = "api_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    created_ip: Mapped[str | None] = mapped_column(String(45), default=None)

    def is_usable(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at

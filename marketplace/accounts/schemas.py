"""Request and response bodies. No schema carries a password hash or a stored token digest."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from marketplace.accounts.models import JurisdictionLevel, Role, User

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 256

Login = Annotated[str, msgspec.Meta(min_length=1, max_length=254, examples=["an@example.vn"])]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=PASSWORD_MAX_LENGTH)]
NewPassword = Annotated[
    str, msgspec.Meta(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)
]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=120, examples=["Nguyễn Văn An"])]
Phone = Annotated[str, msgspec.Meta(max_length=20, examples=["0912345678"])]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=16, examples=["92"])]


class TokenCreate(msgspec.Struct, forbid_unknown_fields=True):
    login: Login
    password: Password


class RegistrationCreate(msgspec.Struct, forbid_unknown_fields=True):
    login: Login
    password: NewPassword
    display_name: DisplayName
    phone: Phone | None = None


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    login: Login
    password: NewPassword
    display_name: DisplayName
    role: Role
    phone: Phone | None = None
    jurisdiction_level: JurisdictionLevel | None = None
    jurisdiction_code: Code | None = None


class UserRead(msgspec.Struct):
    id: uuid.UUID
    login: str
    display_name: str
    phone: str | None
    role: Role
    is_active: bool
    jurisdiction_level: JurisdictionLevel | None
    jurisdiction_code: str | None
    admin_version: str | None
    created_at: datetime


class TokenRead(msgspec.Struct):
    token: str
    expires_at: datetime
    user: UserRead
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name, not a secret


class UserPage(msgspec.Struct):
    items: list[UserRead]
    total: int
    limit: int
    offset: int


def user_read(user: User) -> UserRead:
    return UserRead(
        id=user.id,
        login=user.login,
        display_name=user.display_name,
        phone=user.phone,
        role=user.role,
        is_active=user.is_active,
        jurisdiction_level=user.jurisdiction_level,
        jurisdiction_code=user.jurisdiction_code,
        admin_version=user.admin_version,
        created_at=user.created_at,
    )

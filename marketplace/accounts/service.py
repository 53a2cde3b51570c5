"""Account rules: who may register, how credentials are checked, how tokens live and die.

Self-service registration makes buyers only; every other role is created by an admin (or
the CLI), and officials always with a jurisdiction the geo domain knows. Tokens are opaque
random strings kept only as digests; revocation and deactivation act on the next request.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from redis.asyncio import Redis

from marketplace.accounts.credentials import new_token, passwords_for, token_digest
from marketplace.accounts.errors import (
    CannotDeactivateSelf,
    InvalidCredentials,
    InvalidToken,
    LoginTaken,
    UserNotFound,
)
from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import (
    ApiToken,
    JurisdictionLevel,
    Role,
    User,
    is_valid_login,
    is_valid_phone,
    normalise_login,
    normalise_phone,
)
from marketplace.accounts.repository import TokenOwner, TokenRepository, UserRepository
from marketplace.accounts.schemas import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from marketplace.accounts.throttle import LoginThrottle
from marketplace.accounts.token_uses import TokenUses
from marketplace.db import utcnow
from marketplace.errors import NotFound, ValidationFailed
from marketplace.geo.service import GeoService
from marketplace.resources import Clock
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

LAST_USED_GRANULARITY = timedelta(minutes=1)
"""`last_used_at` is refreshed at most this often, so an active token costs one read per
request and a write only once a minute."""

MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str = field(repr=False)
    """The only moment the clear token exists on our side: it goes into the response."""
    token_id: uuid.UUID
    expires_at: datetime
    user: User


class AccountService:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        redis: Redis | None,
        clock: Clock = utcnow,
        *,
        uses: TokenUses | None = None,
    ) -> None:
        self._uow = uow
        self._uses = uses
        """Where token last-use times go when set (the API's token check), else written."""
        self._settings = settings
        self._clock = clock
        self._users = UserRepository(uow.session)
        self._tokens = TokenRepository(uow.session)
        self._passwords = passwords_for(settings.security)
        self._throttle = None if redis is None else LoginThrottle(redis, settings.security)

    @classmethod
    def for_cli(cls, uow: UnitOfWork, settings: Settings) -> AccountService:
        """The CLI creates accounts but logs nobody in, so it needs no Redis."""
        return cls(uow, settings, redis=None)

    # Accounts

    async def create_user(
        self,
        *,
        login: str,
        password: str,
        display_name: str,
        role: Role,
        phone: str | None = None,
        jurisdiction_level: str | None = None,
        jurisdiction_code: str | None = None,
    ) -> User:
        """Create an account of any role; an official needs a jurisdiction (a commune or a
        province of the current administrative version) and nobody else may have one."""
        normalised = self._checked_login(login)
        self._check_password(password)
        name = display_name.strip()
        if not name:
            raise ValidationFailed.for_field("display_name", "must not be blank")
        level, code, version = await self._checked_jurisdiction(
            role, jurisdiction_level, jurisdiction_code
        )
        if await self._users.get_by_login(normalised) is not None:
            raise LoginTaken()
        user = User(
            login=normalised,
            display_name=name,
            phone=self._checked_phone(phone),
            role=role,
            password_hash=await self._passwords.hash(password),
            is_active=True,
            jurisdiction_level=level,
            jurisdiction_code=code,
            admin_version=version,
        )
        await self._users.add(user)
        log.info("account_created", user_id=str(user.id), role=role.value)
        return user

    async def register_buyer(
        self, *, login: str, password: str, display_name: str, phone: str | None = None
    ) -> User:
        """Self-service sign-up: always a buyer, whatever else the client sends."""
        return await self.create_user(
            login=login,
            password=password,
            display_name=display_name,
            role=Role.BUYER,
            phone=phone,
        )

    async def create_admin(self, *, login: str, password: str, display_name: str) -> User:
        return await self.create_user(
            login=login, password=password, display_name=display_name, role=Role.ADMIN
        )

    async def ensure_demo_user(
        self,
        *,
        login: str,
        password: str,
        display_name: str,
        role: Role,
        jurisdiction_level: str | None = None,
        jurisdiction_code: str | None = None,
    ) -> User:
        """Idempotent for demo seeding: an existing login is returned untouched (its
        password is not reset)."""
        existing = await self._users.get_by_login(normalise_login(login))
        if existing is not None:
            return existing
        return await self.create_user(
            login=login,
            password=password,
            display_name=display_name,
            role=role,
            jurisdiction_level=jurisdiction_level,
            jurisdiction_code=jurisdiction_code,
        )

    async def get_user(self, user_id: uuid.UUID) -> User:
        user = await self._users.get(user_id)
        if user is None:
            raise UserNotFound()
        return user

    async def list_users(
        self, *, limit: int, offset: int, role: Role | None = None
    ) -> tuple[Sequence[User], int]:
        return await self._users.page(
            limit=max(1, min(limit, MAX_PAGE)), offset=max(0, offset), role=role
        )

    async def deactivate(self, user_id: uuid.UUID, *, by: AuthenticatedUser) -> User:
        """Deactivation ends every session of the account at once."""
        if user_id == by.id:
            raise CannotDeactivateSelf()
        user = await self.get_user(user_id)
        now = self._clock()
        user.deactivate(now)
        await self._users.flush()
        revoked = await self._tokens.revoke_all(user.id, now)
        log.info("account_deactivated", user_id=str(user.id), tokens_revoked=revoked)
        return user

    # Logging in

    async def authenticate(self, login: str, password: str, ip: str) -> User:
        """Check a login and password under the rate limits.

        The same `invalid_credentials` answers an unknown login, a wrong password and a
        deactivated account, after the same argon2 work in each case.
        """
        if self._throttle is None:
            raise RuntimeError("logging in needs Redis for the login rate limit")
        normalised = normalise_login(login)
        await self._throttle.attempt(normalised, ip)
        user = await self._users.get_by_login(normalised)
        ok = await self._passwords.verify(user.password_hash if user else None, password)
        if user is None or not ok or not user.is_active:
            log.info("login_refused", ip=ip, known_account=user is not None)
            raise InvalidCredentials()
        await self._throttle.succeeded(normalised)
        if self._passwords.needs_rehash(user.password_hash):
            user.password_hash = await self._passwords.hash(password)
            await self._users.flush()
        return user

    async def log_in(self, login: str, password: str, ip: str) -> IssuedToken:
        user = await self.authenticate(login, password, ip)
        return await self.issue_token(user, ip=ip)

    # Tokens

    async def issue_token(self, user: User, *, ip: str | None) -> IssuedToken:
        now = self._clock()
        token = new_token()
        row = await self._tokens.add(
            ApiToken(
                user_id=user.id,
                token_hash=token_digest(token),
                expires_at=now + timedelta(seconds=self._settings.security.token_ttl_seconds),
                created_ip=ip,
            )
        )
        log.info("token_issued", user_id=str(user.id), token_id=str(row.id))
        return IssuedToken(token=token, token_id=row.id, expires_at=row.expires_at, user=user)

    async def resolve_token(self, token: str) -> AuthenticatedUser:
        """The caller behind a bearer token, read from the database on every request."""
        found = await self._tokens.find_with_user(token_digest(token))
        now = self._clock()
        user = authenticated(found, now, self._uses)
        if self._uses is None and found is not None and last_use_is_stale(found, now):
            await self._tokens.touch(found.token_id, now)
        return user

    async def revoke_token(self, token_id: uuid.UUID) -> None:
        await self._tokens.revoke(token_id, self._clock())

    async def revoke_all(self, user_id: uuid.UUID) -> int:
        return await self._tokens.revoke_all(user_id, self._clock())

    # Input rules

    @staticmethod
    def _checked_login(login: str) -> str:
        normalised = normalise_login(login)
        if not is_valid_login(normalised):
            raise ValidationFailed.for_field(
                "login", "must be an e-mail address or a Vietnamese mobile number"
            )
        return normalised

    @staticmethod
    def _check_password(password: str) -> None:
        if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
            raise ValidationFailed.for_field(
                "password",
                f"must be {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters long",
            )

    @staticmethod
    def _checked_phone(phone: str | None) -> str | None:
        if phone is None or not phone.strip():
            return None
        normalised = normalise_phone(phone)
        if not is_valid_phone(normalised):
            raise ValidationFailed.for_field("phone", "must be a Vietnamese mobile number")
        return normalised

    async def _checked_jurisdiction(
        self, role: Role, level: str | None, code: str | None
    ) -> tuple[JurisdictionLevel | None, str | None, str | None]:
        """The code as the geo tables store it and its administrative version."""
        if role is not Role.OFFICIAL:
            if level is not None or code is not None:
                raise ValidationFailed.for_field(
                    "jurisdiction_level", "only officials have a jurisdiction"
                )
            return None, None, None
        if level is None or level not in set(JurisdictionLevel):
            raise ValidationFailed.for_field(
                "jurisdiction_level", "an official needs 'commune' or 'province'"
            )
        if not code:
            raise ValidationFailed.for_field("jurisdiction_code", "an official needs a code")
        geo = GeoService(self._uow)
        if JurisdictionLevel(level) is JurisdictionLevel.COMMUNE:
            commune = await geo.require_commune(code, field="jurisdiction_code")
            return JurisdictionLevel.COMMUNE, commune.code, commune.admin_version
        try:
            province = await geo.get_province(code)
        except NotFound:
            raise ValidationFailed.for_field(
                "jurisdiction_code", f"{code!r} is not a province of the current version"
            ) from None
        return JurisdictionLevel.PROVINCE, province.code, province.admin_version


def last_use_is_stale(found: TokenOwner, now: datetime) -> bool:
    return found.last_used_at is None or now - found.last_used_at >= LAST_USED_GRANULARITY


def authenticated(
    found: TokenOwner | None, now: datetime, uses: TokenUses | None
) -> AuthenticatedUser:
    """The rule of a bearer token: known, not revoked, not expired, its owner active. The
    last-use time is noted for `uses` (written later, many at once) when it is stale."""
    if found is None or not found.is_usable(now):
        raise InvalidToken()
    if uses is not None and last_use_is_stale(found, now):
        uses.record(found.token_id, now)
    return AuthenticatedUser(
        id=found.user_id,
        role=found.role,
        display_name=found.display_name,
        jurisdiction_level=found.jurisdiction_level,
        jurisdiction_code=found.jurisdiction_code,
        token_id=found.token_id,
    )

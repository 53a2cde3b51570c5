"""AccountService rules the CLI and demo seeding rely on, and the table's own guarantees."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.errors import LoginTaken
from marketplace.accounts.models import JurisdictionLevel, Role, User
from marketplace.accounts.repository import UserRepository
from marketplace.accounts.service import AccountService
from marketplace.errors import ValidationFailed
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from tests.accounts.factories import PHUONG_NINH_KIEU, password_hash, unique_ip, unique_login


@pytest.fixture
def accounts(uow: UnitOfWork, settings: Settings, redis: Redis) -> AccountService:
    return AccountService(uow, settings, redis)


async def test_create_admin_makes_an_admin_who_can_authenticate(
    accounts: AccountService,
) -> None:
    login = unique_login()
    admin = await accounts.create_admin(
        login=login, password="quan-tri-he-thong", display_name="Quản trị viên"
    )

    assert admin.role is Role.ADMIN
    assert await accounts.authenticate(login, "quan-tri-he-thong", unique_ip()) == admin


async def test_ensure_demo_user_returns_the_existing_account_untouched(
    accounts: AccountService,
) -> None:
    login = unique_login()
    first = await accounts.ensure_demo_user(
        login=login,
        password="demo-mat-khau-1",
        display_name="Huỳnh Văn Phúc",
        role=Role.OFFICIAL,
        jurisdiction_level="commune",
        jurisdiction_code=PHUONG_NINH_KIEU,
    )
    again = await accounts.ensure_demo_user(
        login=login.upper(),
        password="demo-mat-khau-2",
        display_name="Someone Else",
        role=Role.BUYER,
    )

    assert again.id == first.id
    assert again.role is Role.OFFICIAL
    assert again.jurisdiction_level is JurisdictionLevel.COMMUNE
    assert again.jurisdiction_code == PHUONG_NINH_KIEU
    await accounts.authenticate(login, "demo-mat-khau-1", unique_ip())


async def test_for_cli_creates_accounts_without_redis(uow: UnitOfWork, settings: Settings) -> None:
    accounts = AccountService.for_cli(uow, settings)

    user = await accounts.ensure_demo_user(
        login=unique_login(),
        password="demo-mat-khau-nong-dan",
        display_name="Nguyễn Văn Hùng",
        role=Role.FARMER,
    )

    assert user.role is Role.FARMER
    with pytest.raises(RuntimeError, match="Redis"):
        await accounts.authenticate(user.login, "demo-mat-khau-nong-dan", "127.0.0.1")


async def test_a_taken_login_is_refused(accounts: AccountService) -> None:
    login = unique_login()
    await accounts.create_user(
        login=login, password="mat-khau-dau-tien", display_name="Lê Văn Cường", role=Role.HOST
    )

    with pytest.raises(LoginTaken):
        await accounts.create_user(
            login=login, password="mat-khau-thu-hai", display_name="Lê Văn C", role=Role.HOST
        )


async def test_a_duplicate_insert_that_slipped_past_the_check_is_a_conflict(
    session: AsyncSession,
) -> None:
    """What a concurrent sign-up with the same login meets at insert time."""
    users = UserRepository(session)
    login = unique_login()
    await users.add(User(login=login, display_name="A", role=Role.BUYER, password_hash="h"))

    with pytest.raises(LoginTaken):
        await users.add(User(login=login, display_name="B", role=Role.BUYER, password_hash="h"))

    # The savepoint kept the transaction usable.
    assert (await users.get_by_login(login)) is not None


async def test_a_short_password_is_refused_even_from_the_cli(accounts: AccountService) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await accounts.create_admin(login=unique_login(), password="123456", display_name="A")

    assert refused.value.errors[0].field == "password"


@pytest.mark.parametrize(
    "changes",
    [
        {"role": Role.OFFICIAL},
        {
            "role": Role.FARMER,
            "jurisdiction_level": JurisdictionLevel.COMMUNE,
            "jurisdiction_code": PHUONG_NINH_KIEU,
            "admin_version": "2025-07",
        },
        {"login": "Nong.Dan@Example.vn"},
    ],
    ids=["official-without-jurisdiction", "farmer-with-jurisdiction", "login-not-lower-case"],
)
async def test_the_table_itself_refuses_inconsistent_accounts(
    session: AsyncSession, changes: dict[str, object]
) -> None:
    fields: dict[str, object] = {
        "login": unique_login(),
        "display_name": "Trần Thị Bích",
        "role": Role.BUYER,
        "password_hash": password_hash(),
    }
    fields.update(changes)

    with pytest.raises(IntegrityError):
        async with session.begin_nested():
            session.add(User(**fields))

"""Role guards and the jurisdiction rule: for each guard, every role is tried, allowed or
refused; anonymous callers are always asked to authenticate."""

from __future__ import annotations

import uuid

import httpx
import pytest
from litestar import get
from litestar.connection import ASGIConnection
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.guards import (
    RoleGuard,
    allow,
    authenticated,
    ensure_jurisdiction,
)
from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import JurisdictionLevel, Role
from marketplace.errors import NotAuthenticated, PermissionDenied
from tests.accounts.factories import CAN_THO, PHUONG_NINH_KIEU, auth_headers, create_user

PHUONG_CAI_KHE = "31120"  # another commune of Cần Thơ
HUE = "46"
PHUONG_HUONG_TRA = "19996"  # a commune of Huế


@get("/probe", sync_to_thread=False)
def probe() -> None:
    """A route handler to hand to guards, which receive the handler they protect."""


def caller(
    role: Role,
    level: JurisdictionLevel | None = None,
    code: str | None = None,
) -> AuthenticatedUser:
    return AuthenticatedUser(
        id=uuid.uuid4(),
        role=role,
        display_name="Nguyễn Văn An",
        jurisdiction_level=level,
        jurisdiction_code=code,
        token_id=uuid.uuid4(),
    )


def connection_of(user: AuthenticatedUser | None) -> ASGIConnection[object, object, object, object]:
    return ASGIConnection(scope={"type": "http", "user": user})  # type: ignore[typeddict-item]


GUARDS: dict[str, RoleGuard] = {
    "admin-only": allow(Role.ADMIN),
    "farmer-or-helper": allow(Role.FARMER, Role.HELPER),
    "officials-and-admin": allow(Role.OFFICIAL, Role.ADMIN),
    "authenticated": authenticated(),
}


def verdict(guard: RoleGuard, role: Role) -> str:
    return "allowed" if role in guard.roles else "refused"


CASES = [
    pytest.param(guard, role, id=f"{name}/{role.value}-{verdict(guard, role)}")
    for name, guard in GUARDS.items()
    for role in Role
]


@pytest.mark.parametrize(("guard", "role"), CASES)
async def test_a_guard_lets_its_roles_through_and_refuses_the_others(
    guard: RoleGuard, role: Role
) -> None:
    connection = connection_of(caller(role))

    if role in guard.roles:
        await guard(connection, probe)
    else:
        with pytest.raises(PermissionDenied) as refused:
            await guard(connection, probe)
        assert refused.value.status_code == 403
        assert refused.value.code == "forbidden"


@pytest.mark.parametrize("guard", GUARDS.values(), ids=GUARDS.keys())
async def test_a_guard_asks_anonymous_callers_to_authenticate(guard: RoleGuard) -> None:
    with pytest.raises(NotAuthenticated) as refused:
        await guard(connection_of(None), probe)
    assert refused.value.status_code == 401


def test_a_guard_says_which_roles_it_lets_through() -> None:
    assert allow(Role.FARMER, Role.HELPER).roles == frozenset({Role.FARMER, Role.HELPER})
    assert authenticated().roles == frozenset(Role)


def test_a_guard_without_roles_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="at least one role"):
        allow()


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
async def test_me_is_open_to_every_role(
    session: AsyncSession, client: httpx.AsyncClient, role: Role
) -> None:
    user = await create_user(session, role=role)

    response = await client.get("/api/auth/me", headers=await auth_headers(session, user))

    assert response.status_code == 200
    assert response.json()["role"] == role.value


COMMUNE_OFFICIAL = caller(Role.OFFICIAL, JurisdictionLevel.COMMUNE, PHUONG_NINH_KIEU)
PROVINCE_OFFICIAL = caller(Role.OFFICIAL, JurisdictionLevel.PROVINCE, CAN_THO)
JURISDICTION_CASES = [
    pytest.param(COMMUNE_OFFICIAL, PHUONG_NINH_KIEU, CAN_THO, True, id="commune-official/own"),
    pytest.param(COMMUNE_OFFICIAL, PHUONG_CAI_KHE, CAN_THO, False, id="commune-official/neighbour"),
    pytest.param(COMMUNE_OFFICIAL, None, CAN_THO, False, id="commune-official/whole-province"),
    pytest.param(
        COMMUNE_OFFICIAL, PHUONG_HUONG_TRA, HUE, False, id="commune-official/other-province"
    ),
    pytest.param(
        PROVINCE_OFFICIAL, PHUONG_NINH_KIEU, CAN_THO, True, id="province-official/commune"
    ),
    pytest.param(PROVINCE_OFFICIAL, None, CAN_THO, True, id="province-official/whole-province"),
    pytest.param(
        PROVINCE_OFFICIAL, PHUONG_HUONG_TRA, HUE, False, id="province-official/other-province"
    ),
    pytest.param(caller(Role.ADMIN), PHUONG_HUONG_TRA, HUE, True, id="admin/anywhere"),
    pytest.param(caller(Role.ADMIN), None, CAN_THO, True, id="admin/whole-province"),
    *[
        pytest.param(caller(role), PHUONG_NINH_KIEU, CAN_THO, False, id=f"{role.value}/refused")
        for role in Role
        if role not in {Role.ADMIN, Role.OFFICIAL}
    ],
]


@pytest.mark.parametrize(("user", "commune", "province", "allowed"), JURISDICTION_CASES)
def test_officials_see_only_their_jurisdiction(
    user: AuthenticatedUser, commune: str | None, province: str, allowed: bool
) -> None:
    if allowed:
        ensure_jurisdiction(user, commune_code=commune, province_code=province)
    else:
        with pytest.raises(PermissionDenied):
            ensure_jurisdiction(user, commune_code=commune, province_code=province)

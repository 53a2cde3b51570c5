"""Helpers act for a household only under its recorded, revocable consent, and every act
is recorded as taken on its behalf."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import JurisdictionLevel, Role
from marketplace.errors import PermissionDenied
from marketplace.sellers.errors import ConsentRequired, HouseholdNotFound
from marketplace.sellers.models import ConsentScope, HelperAction, HelperConsent
from marketplace.sellers.service import SellersService
from tests.accounts.factories import create_user
from tests.sellers.factories import (
    HUONG_THUY,
    HUONG_TRA,
    MakeCaller,
    create_cooperative,
    create_household,
    grant_consent,
    identity,
)


def consent_body(helper_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "helper_user_id": str(helper_id),
        "scopes": ["manage_products", "manage_orders"],
        "evidence": "Biên bản đồng ý số 07/BB-UBND, ký ngày 02/03/2026 tại UBND phường",
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize("keeper", ["own_farmer", "commune_official", "admin"])
async def test_the_household_its_official_or_an_admin_records_consent_for_a_helper(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession, keeper: str
) -> None:
    farmer = await caller(Role.FARMER)
    helper = await create_user(session, role=Role.HELPER)
    household = await create_household(session, farmer=farmer.user)
    recorder = {
        "own_farmer": farmer,
        "commune_official": await caller(Role.OFFICIAL, commune=HUONG_TRA),
        "admin": await caller(Role.ADMIN),
    }[keeper]

    response = await client.post(
        f"/api/households/{household.id}/consents",
        json=consent_body(helper.id),
        headers=recorder.headers,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["helper_user_id"] == str(helper.id)
    assert body["scopes"] == ["manage_orders", "manage_products"]
    assert body["recorded_by_user_id"] == str(recorder.user.id)
    assert body["active"] is True
    assert body["evidence"].startswith("Biên bản")


@pytest.mark.parametrize(
    ("role", "commune"),
    [
        pytest.param(Role.FARMER, None, id="other-farmer"),
        pytest.param(Role.OFFICIAL, HUONG_THUY, id="other-commune-official"),
        pytest.param(Role.HELPER, None, id="helper"),
        pytest.param(Role.COOPERATIVE_MANAGER, None, id="cooperative-manager"),
    ],
)
async def test_no_one_else_records_consent(
    client: httpx.AsyncClient,
    caller: MakeCaller,
    session: AsyncSession,
    role: Role,
    commune: str | None,
) -> None:
    helper = await create_user(session, role=Role.HELPER)
    household = await create_household(session)
    recorder = await caller(role, commune=commune)

    response = await client.post(
        f"/api/households/{household.id}/consents",
        json=consent_body(helper.id),
        headers=recorder.headers,
    )

    assert response.status_code == 403
    assert await session.scalar(select(func.count()).select_from(HelperConsent)) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"scopes": []}, "scopes", id="no-scope"),
        pytest.param({"scopes": ["sell_land"]}, "scopes", id="unknown-scope"),
        pytest.param({"evidence": ""}, "evidence", id="no-evidence"),
    ],
)
async def test_consent_needs_scopes_and_evidence(
    client: httpx.AsyncClient,
    caller: MakeCaller,
    session: AsyncSession,
    body: dict[str, Any],
    field: str,
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)
    helper = await create_user(session, role=Role.HELPER)
    household = await create_household(session)

    response = await client.post(
        f"/api/households/{household.id}/consents",
        json=consent_body(helper.id, **body),
        headers=official.headers,
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith(field)


async def test_consent_names_a_helper_account_and_only_one_active_consent_per_helper(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)
    helper = await create_user(session, role=Role.HELPER)
    buyer = await create_user(session, role=Role.BUYER)
    household = await create_household(session)
    url = f"/api/households/{household.id}/consents"

    not_a_helper = await client.post(url, json=consent_body(buyer.id), headers=official.headers)
    first = await client.post(url, json=consent_body(helper.id), headers=official.headers)
    second = await client.post(url, json=consent_body(helper.id), headers=official.headers)

    assert not_a_helper.status_code == 422
    assert not_a_helper.json()["errors"][0]["field"] == "helper_user_id"
    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["code"] == "active_consent_exists"


async def test_revoking_consent_stops_the_helper_at_once(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    farmer = await caller(Role.FARMER)
    helper = await caller(Role.HELPER)
    household = await create_household(session, farmer=farmer.user)
    consent = await grant_consent(session, household, helper.user)
    url = f"/api/households/{household.id}"

    before = await client.get(url, headers=helper.headers)
    revoked = await client.post(f"{url}/consents/{consent.id}/revoke", headers=farmer.headers)
    again = await client.post(f"{url}/consents/{consent.id}/revoke", headers=farmer.headers)
    after = await client.get(url, headers=helper.headers)
    edit = await client.patch(url, json={"village": "Ấp 3"}, headers=helper.headers)

    assert before.status_code == 200
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert after.status_code == 403
    assert edit.status_code == 403


async def test_after_revoking_a_new_consent_may_be_recorded_and_history_is_kept(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)
    helper = await caller(Role.HELPER)
    household = await create_household(session)
    url = f"/api/households/{household.id}/consents"
    first = await client.post(url, json=consent_body(helper.user.id), headers=official.headers)

    await client.post(f"{url}/{first.json()['id']}/revoke", headers=helper.headers)
    second = await client.post(
        url, json=consent_body(helper.user.id, scopes=["view_income"]), headers=official.headers
    )
    listed = await client.get(url, headers=official.headers)
    own_view = await client.get(url, headers=helper.headers)

    assert second.status_code == 201
    assert [(c["scopes"], c["active"]) for c in listed.json()] == [
        (["manage_orders", "manage_products"], False),
        (["view_income"], True),
    ]
    assert len(own_view.json()) == 2


async def test_a_helper_sees_only_its_own_consents_and_none_of_other_households(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    helper = await caller(Role.HELPER)
    other_helper = await create_user(session, role=Role.HELPER)
    household = await create_household(session)
    stranger = await create_household(session)
    await grant_consent(session, household, helper.user)
    await grant_consent(session, household, other_helper)

    mine = await client.get(f"/api/households/{household.id}/consents", headers=helper.headers)
    theirs = await client.get(f"/api/households/{stranger.id}/consents", headers=helper.headers)

    assert [c["helper_user_id"] for c in mine.json()] == [str(helper.user.id)]
    assert theirs.status_code == 403


async def test_require_helper_consent_checks_role_activity_and_scope(
    sellers: SellersService, session: AsyncSession
) -> None:
    helper = await create_user(session, role=Role.HELPER)
    farmer = await create_user(session, role=Role.FARMER)
    household = await create_household(session, farmer=farmer)
    consent = await grant_consent(session, household, helper, scopes=[ConsentScope.MANAGE_ORDERS])

    found = await sellers.require_helper_consent(
        identity(helper), household.id, ConsentScope.MANAGE_ORDERS
    )
    with pytest.raises(ConsentRequired):
        await sellers.require_helper_consent(
            identity(helper), household.id, ConsentScope.MANAGE_PRODUCTS
        )
    with pytest.raises(ConsentRequired):
        await sellers.require_helper_consent(
            identity(farmer), household.id, ConsentScope.MANAGE_ORDERS
        )

    assert found.id == consent.id


async def test_a_helpers_product_edit_is_recorded_on_behalf_of_the_household(
    client: httpx.AsyncClient,
    caller: MakeCaller,
    sellers: SellersService,
    session: AsyncSession,
) -> None:
    farmer = await caller(Role.FARMER)
    helper = await create_user(session, role=Role.HELPER)
    household = await create_household(session, farmer=farmer.user)
    consent = await grant_consent(session, household, helper)
    product_id = uuid.uuid4()

    acting = await sellers.require_household_manager(identity(helper), household.id)
    await sellers.record_action(acting, "product.update", product_id)
    own = await sellers.require_household_manager(farmer.me, household.id)
    await sellers.record_action(own, "product.update", product_id)
    await sellers.record_helper_action(consent, "order.confirm")

    actions = await client.get(
        f"/api/households/{household.id}/helper-actions", headers=farmer.headers
    )

    assert acting.on_behalf
    assert not own.on_behalf
    assert [(a["action"], a["target_id"], a["consent_id"]) for a in actions.json()] == [
        ("order.confirm", None, str(consent.id)),
        ("product.update", str(product_id), str(consent.id)),
    ]
    rows = (await session.scalars(select(HelperAction))).all()
    assert {row.helper_user_id for row in rows} == {helper.id}


async def test_only_the_household_its_officials_and_admins_read_helper_actions(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    helper = await caller(Role.HELPER)
    manager = await caller(Role.COOPERATIVE_MANAGER)
    household = await create_household(session)
    await grant_consent(session, household, helper.user)
    await create_cooperative(session, managers=[manager.user], members=[household])
    url = f"/api/households/{household.id}/helper-actions"

    by_helper = await client.get(url, headers=helper.headers)
    by_manager = await client.get(url, headers=manager.headers)

    assert by_helper.status_code == 403
    assert by_manager.status_code == 403


async def test_who_manages_a_households_products(
    sellers: SellersService, session: AsyncSession
) -> None:
    farmer = await create_user(session, role=Role.FARMER)
    other_farmer = await create_user(session, role=Role.FARMER)
    products_helper = await create_user(session, role=Role.HELPER)
    profile_helper = await create_user(session, role=Role.HELPER)
    revoked_helper = await create_user(session, role=Role.HELPER)
    manager = await create_user(session, role=Role.COOPERATIVE_MANAGER)
    admin = await create_user(session, role=Role.ADMIN)
    official = await create_user(
        session,
        role=Role.OFFICIAL,
        jurisdiction_code=HUONG_TRA,
        jurisdiction_level=JurisdictionLevel.COMMUNE,
    )
    household = await create_household(session, farmer=farmer)
    await grant_consent(session, household, products_helper, scopes=[ConsentScope.MANAGE_PRODUCTS])
    await grant_consent(session, household, profile_helper, scopes=[ConsentScope.MANAGE_PROFILE])
    await grant_consent(session, household, revoked_helper, revoked_at=household.created_at)
    await create_cooperative(session, managers=[manager], members=[household])

    allowed = {
        name: await sellers.can_manage_household(identity(user), household.id)
        for name, user in {
            "farmer": farmer,
            "other_farmer": other_farmer,
            "products_helper": products_helper,
            "profile_helper": profile_helper,
            "revoked_helper": revoked_helper,
            "coop_manager": manager,
            "admin": admin,
            "official": official,
        }.items()
    }

    assert allowed == {
        "farmer": True,
        "other_farmer": False,
        "products_helper": True,
        "profile_helper": False,
        "revoked_helper": False,
        "coop_manager": False,
        "admin": True,
        "official": False,
    }
    assert await sellers.can_manage_household(identity(admin), uuid.uuid4()) is False
    assert await sellers.can_manage_household(identity(farmer), uuid.uuid4()) is False
    with pytest.raises(PermissionDenied):
        await sellers.require_household_manager(identity(manager), household.id)
    with pytest.raises(HouseholdNotFound):
        await sellers.require_household_manager(identity(farmer), uuid.uuid4())

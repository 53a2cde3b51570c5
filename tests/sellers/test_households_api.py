"""Registering, reading, listing and editing households over HTTP."""

from __future__ import annotations

import logging
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.sellers.models import (
    ConsentScope,
    Household,
    HouseholdStatusEntry,
    PovertyStatus,
)
from tests.accounts.factories import create_user
from tests.sellers.factories import (
    CAN_THO,
    HUE,
    HUONG_THUY,
    HUONG_TRA,
    PHONG_DIEN,
    MakeCaller,
    add_member,
    add_review,
    create_cooperative,
    create_household,
    grant_consent,
)


def registration(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "head_name": "Nguyễn Văn Thành",
        "members_count": 5,
        "commune_code": HUONG_TRA,
        "village": "Tổ dân phố Xuân Tháp",
        "phone": "0905 123 401",
        "national_id": "046072001234",
        "bank_bin": "970405",
        "bank_account_number": "3901205123456",
        "bank_account_name": "NGUYEN VAN THANH",
    }
    body.update(overrides)
    return body


async def household_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Household)) or 0)


# ---- Registering ---------------------------------------------------------------------------


async def test_a_commune_official_registers_a_household_and_sees_its_national_id(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)

    response = await client.post("/api/households", json=registration(), headers=official.headers)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["commune_code"] == HUONG_TRA
    assert body["province_code"] == HUE
    assert body["phone"] == "0905123401"
    assert body["phone_masked"] is False
    assert body["national_id"] == "046072001234"
    assert body["created_by_user_id"] == str(official.user.id)
    assert body["status_today"] is None
    row = await session.get(Household, uuid.UUID(body["id"]))
    assert row is not None
    assert "046072001234" not in row.national_id_hash + row.national_id_encrypted


async def test_an_admin_registers_a_household_but_reads_it_masked_and_without_national_id(
    client: httpx.AsyncClient, caller: MakeCaller
) -> None:
    admin = await caller(Role.ADMIN)

    response = await client.post("/api/households", json=registration(), headers=admin.headers)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["phone"] == "0905***401"
    assert body["phone_masked"] is True
    assert body["national_id"] is None
    assert body["bank_account_number"] == "*********3456"


async def test_registering_with_an_initial_review_records_the_status(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)
    review = {
        "status": "poor",
        "review_date": "2025-12-15",
        "decision_number": "1520/QĐ-UBND",
        "deciding_authority": "UBND Phường Hương Trà",
    }

    response = await client.post(
        "/api/households", json=registration(initial_review=review), headers=official.headers
    )

    assert response.status_code == 201, response.text
    assert response.json()["status_today"] == "poor"
    entries = (await session.scalars(select(HouseholdStatusEntry))).all()
    assert [(e.status, e.standard_code) for e in entries] == [("poor", "07/2021/ND-CP")]


async def test_an_admin_cannot_decide_a_status_at_registration(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    admin = await caller(Role.ADMIN)
    review = {
        "status": "poor",
        "review_date": "2025-12-15",
        "decision_number": "1520/QĐ-UBND",
        "deciding_authority": "UBND Phường Hương Trà",
    }

    response = await client.post(
        "/api/households", json=registration(initial_review=review), headers=admin.headers
    )

    assert response.status_code == 403
    assert await household_count(session) == 0


async def test_a_duplicate_national_id_is_a_409_on_the_field_and_nothing_is_written(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    official = await caller(Role.OFFICIAL, province=HUE)
    await create_household(session, national_id="046072001234")
    before = await household_count(session)
    review = {
        "status": "near_poor",
        "review_date": "2025-12-15",
        "decision_number": "1521/QĐ-UBND",
        "deciding_authority": "UBND Phường Hương Trà",
    }

    response = await client.post(
        "/api/households",
        json=registration(national_id="046 072 001 234", phone="0911222333", initial_review=review),
        headers=official.headers,
    )

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "duplicate_national_id"
    assert body["errors"] == [{"field": "national_id", "message": "already registered"}]
    assert "046072001234" not in response.text
    assert await household_count(session) == before
    statuses = await session.scalar(select(func.count()).select_from(HouseholdStatusEntry))
    assert statuses == 1  # the existing household's own review, nothing more


async def test_a_review_dated_in_the_future_refuses_the_whole_registration(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)
    review = {
        "status": "poor",
        "review_date": "2099-12-15",
        "decision_number": "1522/QĐ-UBND",
        "deciding_authority": "UBND Phường Hương Trà",
    }

    response = await client.post(
        "/api/households", json=registration(initial_review=review), headers=official.headers
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "review_date"
    assert await household_count(session) == 0


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        pytest.param({"commune_code": "99999"}, "commune_code", "unknown_commune", id="commune"),
        pytest.param({"national_id": "046072001"}, "national_id", "validation_failed", id="cmnd"),
        pytest.param({"national_id": "04607200"}, "national_id", "validation_failed", id="short"),
        pytest.param({"phone": "0212345678"}, "phone", "validation_failed", id="landline"),
        pytest.param({"members_count": 0}, "members_count", "validation_failed", id="members"),
        pytest.param({"head_name": ""}, "head_name", "validation_failed", id="name"),
        pytest.param({"bank_bin": "97040"}, "bank_bin", "validation_failed", id="bin"),
        pytest.param(
            {"bank_account_number": None},
            "bank_account_number",
            "validation_failed",
            id="bin-without-account",
        ),
        pytest.param(
            {"farmer_user_id": str(uuid.uuid4())},
            "farmer_user_id",
            "validation_failed",
            id="unknown-farmer",
        ),
    ],
)
async def test_bad_registration_fields_are_named_and_nothing_is_written(
    *,
    client: httpx.AsyncClient,
    caller: MakeCaller,
    session: AsyncSession,
    overrides: dict[str, Any],
    field: str,
    code: str,
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)

    response = await client.post(
        "/api/households", json=registration(**overrides), headers=official.headers
    )

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == code
    assert [e["field"] for e in body["errors"]] == [field]
    assert await household_count(session) == 0


async def test_an_official_cannot_register_a_household_outside_their_jurisdiction(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)

    response = await client.post(
        "/api/households", json=registration(commune_code=PHONG_DIEN), headers=official.headers
    )

    assert response.status_code == 403
    assert await household_count(session) == 0


async def test_a_farmer_account_is_linked_once_only(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    official = await caller(Role.OFFICIAL, province=HUE)
    farmer = await create_user(session, role=Role.FARMER)
    buyer = await create_user(session, role=Role.BUYER)
    await create_household(session, farmer=farmer)

    twice = await client.post(
        "/api/households",
        json=registration(farmer_user_id=str(farmer.id)),
        headers=official.headers,
    )
    not_a_farmer = await client.post(
        "/api/households",
        json=registration(farmer_user_id=str(buyer.id)),
        headers=official.headers,
    )

    assert twice.status_code == 409
    assert twice.json()["code"] == "farmer_already_linked"
    assert not_a_farmer.status_code == 422
    assert not_a_farmer.json()["errors"][0]["field"] == "farmer_user_id"


async def test_registering_logs_neither_the_national_id_nor_the_phone(
    client: httpx.AsyncClient,
    caller: MakeCaller,
    session: AsyncSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)
    await create_household(session, national_id="046185009876")
    caplog.set_level(logging.DEBUG)

    with structlog.testing.capture_logs() as events:
        created = await client.post(
            "/api/households",
            json=registration(national_id="046072001234", phone="0905123401"),
            headers=official.headers,
        )
        duplicate = await client.post(
            "/api/households",
            json=registration(national_id="046185009876", phone="0905123402"),
            headers=official.headers,
        )
        read = await client.get(f"/api/households/{created.json()['id']}", headers=official.headers)

    assert (created.status_code, duplicate.status_code, read.status_code) == (201, 409, 200)
    assert any(e["event"] == "household_registered" for e in events)
    logged = repr(events) + caplog.text
    for secret in ("046072001234", "046185009876", "0905123401", "0905123402", "905123401"):
        assert secret not in logged


# ---- Reading -------------------------------------------------------------------------------


async def reader(
    kind: str, caller: MakeCaller, session: AsyncSession, household: Household
) -> dict[str, str]:
    """Headers of a reader standing in relation `kind` to the household."""
    if kind == "own_farmer":
        c = await caller(Role.FARMER)
        household.farmer_user_id = c.user.id
        await session.flush()
    elif kind == "helper_with_consent":
        c = await caller(Role.HELPER)
        await grant_consent(session, household, c.user, scopes=[ConsentScope.MANAGE_PRODUCTS])
    elif kind == "coop_manager_of_member":
        c = await caller(Role.COOPERATIVE_MANAGER)
        await create_cooperative(session, managers=[c.user], members=[household])
    elif kind == "commune_official":
        c = await caller(Role.OFFICIAL, commune=HUONG_TRA)
    elif kind == "province_official":
        c = await caller(Role.OFFICIAL, province=HUE)
    elif kind == "admin":
        c = await caller(Role.ADMIN)
    elif kind == "other_farmer":
        c = await caller(Role.FARMER)
    elif kind == "helper_without_consent":
        c = await caller(Role.HELPER)
    elif kind == "manager_of_former_member":
        c = await caller(Role.COOPERATIVE_MANAGER)
        coop = await create_cooperative(session, managers=[c.user])
        await add_member(
            session, coop, household, joined_on=date(2023, 1, 1), left_on=date(2024, 1, 1)
        )
    elif kind == "other_commune_official":
        c = await caller(Role.OFFICIAL, commune=HUONG_THUY)
    elif kind == "other_province_official":
        c = await caller(Role.OFFICIAL, province=CAN_THO)
    else:
        c = await caller(Role(kind))
    return c.headers


@pytest.mark.parametrize(
    ("kind", "phone", "national_id"),
    [
        pytest.param("own_farmer", "0905123401", None, id="the-household-itself"),
        pytest.param("helper_with_consent", "0905123401", None, id="its-helper"),
        pytest.param("coop_manager_of_member", "0905123401", None, id="its-coop-manager"),
        pytest.param("commune_official", "0905123401", "046072001234", id="commune-official"),
        pytest.param("province_official", "0905123401", "046072001234", id="province-official"),
        pytest.param("admin", "0905***401", None, id="admin-masked"),
    ],
)
async def test_the_detail_view_shows_the_phone_and_national_id_by_reader(
    *,
    client: httpx.AsyncClient,
    caller: MakeCaller,
    session: AsyncSession,
    kind: str,
    phone: str,
    national_id: str | None,
) -> None:
    household = await create_household(
        session, phone="0905123401", national_id="046072001234", bank_account_number="3901205123456"
    )
    headers = await reader(kind, caller, session, household)

    response = await client.get(f"/api/households/{household.id}", headers=headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["phone"] == phone
    assert body["national_id"] == national_id
    assert (body["bank_account_number"] == "3901205123456") == (phone == "0905123401")
    if national_id is None:
        assert "046072001234" not in response.text
    assert body["status_today"] == "poor"


@pytest.mark.parametrize(
    "kind",
    [
        "other_farmer",
        "helper_without_consent",
        "manager_of_former_member",
        "other_commune_official",
        "other_province_official",
    ],
)
async def test_readers_without_a_link_to_the_household_get_403(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession, kind: str
) -> None:
    household = await create_household(session, phone="0905123401")
    headers = await reader(kind, caller, session, household)

    response = await client.get(f"/api/households/{household.id}", headers=headers)

    assert response.status_code == 403
    assert "0905" not in response.text


@pytest.mark.parametrize("role", [Role.BUYER, Role.HOST], ids=["buyer", "host"])
async def test_buyers_and_hosts_never_read_households(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession, role: Role
) -> None:
    household = await create_household(session)
    c = await caller(role)

    response = await client.get(f"/api/households/{household.id}", headers=c.headers)

    assert response.status_code == 403


async def test_an_unknown_household_is_a_404(client: httpx.AsyncClient, caller: MakeCaller) -> None:
    admin = await caller(Role.ADMIN)

    response = await client.get(f"/api/households/{uuid.uuid4()}", headers=admin.headers)

    assert response.status_code == 404
    assert response.json()["code"] == "household_not_found"


async def test_a_farmer_and_a_helper_find_their_households_under_mine(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    farmer = await caller(Role.FARMER)
    helper = await caller(Role.HELPER)
    own = await create_household(session, farmer=farmer.user, phone="0905123401")
    helped = await create_household(session, phone="0905123402")
    revoked = await create_household(session)
    await grant_consent(session, helped, helper.user)
    await grant_consent(session, revoked, helper.user, revoked_at=own.created_at)

    mine = await client.get("/api/households/mine", headers=farmer.headers)
    assisted = await client.get("/api/households/mine", headers=helper.headers)

    assert [(h["id"], h["phone"]) for h in mine.json()] == [(str(own.id), "0905123401")]
    assert [(h["id"], h["phone"]) for h in assisted.json()] == [(str(helped.id), "0905123402")]


# ---- Listing -------------------------------------------------------------------------------


async def test_officials_list_only_their_jurisdiction_with_full_phones(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    commune = await caller(Role.OFFICIAL, commune=HUONG_TRA)
    province = await caller(Role.OFFICIAL, province=HUE)
    huong_tra = await create_household(session, commune_code=HUONG_TRA, phone="0905123401")
    huong_thuy = await create_household(session, commune_code=HUONG_THUY)
    await create_household(session, commune_code=PHONG_DIEN)

    by_commune = await client.get("/api/households", headers=commune.headers)
    by_province = await client.get("/api/households", headers=province.headers)

    assert [h["id"] for h in by_commune.json()["items"]] == [str(huong_tra.id)]
    assert by_commune.json()["items"][0]["phone"] == "0905123401"
    assert {h["id"] for h in by_province.json()["items"]} == {str(huong_tra.id), str(huong_thuy.id)}
    assert "national_id" not in by_province.json()["items"][0]


async def test_an_official_filtering_on_another_commune_gets_403(
    client: httpx.AsyncClient, caller: MakeCaller
) -> None:
    commune = await caller(Role.OFFICIAL, commune=HUONG_TRA)

    response = await client.get(
        "/api/households", params={"commune_code": PHONG_DIEN}, headers=commune.headers
    )

    assert response.status_code == 403


async def test_admins_list_everything_with_masked_phones(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    admin = await caller(Role.ADMIN)
    hue = await create_household(session, commune_code=HUONG_TRA, phone="0905123401")
    can_tho = await create_household(session, commune_code=PHONG_DIEN)

    response = await client.get("/api/households", headers=admin.headers)

    items = response.json()["items"]
    assert {h["id"] for h in items} == {str(hue.id), str(can_tho.id)}
    assert {h["phone_masked"] for h in items} == {True}
    assert "0905123401" not in response.text


async def test_the_list_filters_on_the_status_on_a_given_day(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)
    escaped = await create_household(
        session, status=PovertyStatus.POOR, review_date=date(2022, 12, 15)
    )
    await create_household(session, status=PovertyStatus.NOT_POOR, review_date=date(2024, 12, 15))
    await add_review(
        session, escaped, status=PovertyStatus.NOT_POOR, review_date=date(2024, 12, 15)
    )

    poor_2023 = await client.get(
        "/api/households",
        params={"status": "poor", "on": "2023-06-01"},
        headers=official.headers,
    )
    poor_2025 = await client.get(
        "/api/households",
        params={"status": "poor", "on": "2025-06-01"},
        headers=official.headers,
    )

    assert [h["id"] for h in poor_2023.json()["items"]] == [str(escaped.id)]
    assert poor_2023.json()["items"][0]["status"] == "poor"
    assert poor_2025.json()["items"] == []


async def test_pages_follow_the_cursor_without_repeats_or_gaps_under_inserts(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)
    created = [await create_household(session) for _ in range(5)]

    first = await client.get("/api/households", params={"limit": 2}, headers=official.headers)
    inserted = await create_household(session)
    seen = [h["id"] for h in first.json()["items"]]
    cursor = first.json()["next_cursor"]
    while cursor:
        page = await client.get(
            "/api/households", params={"limit": 2, "cursor": cursor}, headers=official.headers
        )
        seen += [h["id"] for h in page.json()["items"]]
        cursor = page.json()["next_cursor"]

    assert seen == [str(h.id) for h in [*created, inserted]]


async def test_a_forged_cursor_is_a_422_on_the_cursor(
    client: httpx.AsyncClient, caller: MakeCaller
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)

    response = await client.get(
        "/api/households", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=official.headers
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "cursor"


# ---- Editing -------------------------------------------------------------------------------


async def test_the_household_edits_its_profile_but_not_its_status_or_official_fields(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    farmer = await caller(Role.FARMER)
    household = await create_household(session, farmer=farmer.user)
    url = f"/api/households/{household.id}"

    profile = await client.patch(
        url,
        json={"village": "Tổ dân phố Long Khê", "phone": "+84 905 999 888", "members_count": 6},
        headers=farmer.headers,
    )
    status = await client.patch(url, json={"status": "not_poor"}, headers=farmer.headers)
    commune = await client.patch(url, json={"commune_code": HUONG_THUY}, headers=farmer.headers)
    review = await client.post(
        f"{url}/reviews",
        json={
            "status": "not_poor",
            "review_date": "2025-12-20",
            "decision_number": "1/QĐ",
            "deciding_authority": "Tự khai",
        },
        headers=farmer.headers,
    )

    assert profile.status_code == 200, profile.text
    assert (profile.json()["village"], profile.json()["phone"]) == (
        "Tổ dân phố Long Khê",
        "0905999888",
    )
    assert status.status_code == 422
    assert commune.status_code == 403
    assert review.status_code == 403
    await session.refresh(household)
    assert household.commune_code == HUONG_TRA
    assert household.members_count == 6


async def test_an_official_corrects_a_national_id_unless_another_household_has_it(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)
    household = await create_household(session, national_id="046072001234")
    await create_household(session, national_id="046185009876")
    url = f"/api/households/{household.id}"

    taken = await client.patch(url, json={"national_id": "046185009876"}, headers=official.headers)
    corrected = await client.patch(
        url, json={"national_id": "046072001299"}, headers=official.headers
    )

    assert taken.status_code == 409
    assert taken.json()["errors"][0]["field"] == "national_id"
    assert corrected.status_code == 200
    assert corrected.json()["national_id"] == "046072001299"


async def test_a_helper_edits_the_profile_only_with_manage_profile_consent_and_is_recorded(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    products_only = await caller(Role.HELPER)
    profile_helper = await caller(Role.HELPER)
    household = await create_household(session)
    await grant_consent(
        session, household, products_only.user, scopes=[ConsentScope.MANAGE_PRODUCTS]
    )
    await grant_consent(
        session, household, profile_helper.user, scopes=[ConsentScope.MANAGE_PROFILE]
    )
    url = f"/api/households/{household.id}"

    refused = await client.patch(url, json={"village": "Ấp 1"}, headers=products_only.headers)
    done = await client.patch(url, json={"village": "Ấp 2"}, headers=profile_helper.headers)
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)
    actions = await client.get(f"{url}/helper-actions", headers=official.headers)

    assert refused.status_code == 403
    assert done.status_code == 200
    assert [(a["action"], a["helper_user_id"], a["target_id"]) for a in actions.json()] == [
        ("household.update", str(profile_helper.user.id), str(household.id))
    ]


async def test_an_admin_clears_bank_details_together_or_not_at_all(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    admin = await caller(Role.ADMIN)
    household = await create_household(session)
    url = f"/api/households/{household.id}"

    half = await client.patch(url, json={"bank_bin": None}, headers=admin.headers)
    both = await client.patch(
        url, json={"bank_bin": None, "bank_account_number": None}, headers=admin.headers
    )

    assert half.status_code == 422
    assert half.json()["errors"][0]["field"] == "bank_account_number"
    assert both.status_code == 200
    assert both.json()["bank_bin"] is None

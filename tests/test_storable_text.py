"""A NUL character (which PostgreSQL text cannot hold) anywhere in a request's text is a 422
naming the field, on every route, and nothing is written; the same request without it works."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import JurisdictionLevel, Role, User
from marketplace.catalog.models import Product
from marketplace.sellers.models import Cooperative, Household
from tests.accounts.factories import auth_headers, create_user, unique_login
from tests.sellers.factories import HUONG_TRA, create_household

NUL = "\x00"


@dataclass(frozen=True)
class Callers:
    admin: dict[str, str]
    official: dict[str, str]
    farmer: dict[str, str]
    household_id: uuid.UUID


@pytest.fixture
async def callers(session: AsyncSession) -> Callers:
    admin = await create_user(session, role=Role.ADMIN)
    official = await create_user(
        session,
        role=Role.OFFICIAL,
        jurisdiction_level=JurisdictionLevel.COMMUNE,
        jurisdiction_code=HUONG_TRA,
    )
    farmer = await create_user(session, role=Role.FARMER)
    household = await create_household(session, farmer=farmer, head_name="Nguyễn Bá Lộc")
    return Callers(
        admin=await auth_headers(session, admin),
        official=await auth_headers(session, official),
        farmer=await auth_headers(session, farmer),
        household_id=household.id,
    )


def _household(text: str) -> dict[str, Any]:
    return {
        "head_name": "Nguyễn Văn Thành",
        "members_count": 5,
        "commune_code": HUONG_TRA,
        "village": "Tổ dân phố Xuân Tháp",
        "phone": "0905 123 401",
        "national_id": "046072001234",
        "initial_review": {
            "status": "poor",
            "review_date": "2025-12-15",
            "decision_number": f"1520/QĐ-UBND{text}",
            "deciding_authority": "UBND Phường Hương Trà",
        },
    }


def _product(household_id: uuid.UUID, text: str) -> dict[str, Any]:
    return {
        "seller_kind": "household",
        "household_id": str(household_id),
        "name": "Bưởi da xanh",
        "category": "fruit",
        "variants": [
            {"label": "hộp 2 kg", "price_amount": 180_000, "available": 40},
            {"label": f"thùng 10 kg{text}", "price_amount": 800_000, "available": 10},
        ],
    }


@dataclass(frozen=True)
class Case:
    path: str
    field: str
    body: Callable[[Callers, str], dict[str, Any]]
    """The request body with `text` appended to the field under test ("" or a NUL)."""
    headers: Callable[[Callers], dict[str, str]]
    rows: Callable[[AsyncSession], Awaitable[int]]


def _count(model: type[Any]) -> Callable[[AsyncSession], Awaitable[int]]:
    async def count(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    return count


CASES = [
    pytest.param(
        Case(
            "/api/auth/register",
            "display_name",
            lambda _, text: {
                "login": unique_login(),
                "password": "mat-khau-vuon-cam-2026",
                "display_name": f"Trần Thị{text} Bích",
            },
            lambda _: {},
            _count(User),
        ),
        id="registration",
    ),
    pytest.param(
        Case(
            "/api/households",
            "initial_review.decision_number",
            lambda _, text: _household(text),
            lambda c: c.official,
            _count(Household),
        ),
        id="nested-object",
    ),
    pytest.param(
        Case(
            "/api/products",
            "variants[1].label",
            lambda c, text: _product(c.household_id, text),
            lambda c: c.farmer,
            _count(Product),
        ),
        id="nested-list",
    ),
    pytest.param(
        Case(
            "/api/cooperatives",
            "description",
            lambda _, text: {
                "name": "HTX Nông nghiệp Hương Trà",
                "commune_code": HUONG_TRA,
                "registration_number": uuid.uuid4().hex[:10],
                "description": f"Cam, bưởi da xanh{text}",
            },
            lambda c: c.admin,
            _count(Cooperative),
        ),
        id="cooperative",
    ),
]


@pytest.mark.parametrize("case", CASES)
async def test_a_nul_in_a_json_field_is_refused_naming_it_and_nothing_is_written(
    client: httpx.AsyncClient, session: AsyncSession, callers: Callers, case: Case
) -> None:
    before = await case.rows(session)

    refused = await client.post(
        case.path, json=case.body(callers, NUL), headers=case.headers(callers)
    )
    after_refusal = await case.rows(session)
    accepted = await client.post(
        case.path, json=case.body(callers, ""), headers=case.headers(callers)
    )

    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["code"] == "validation_failed"
    assert [e["field"] for e in problem["errors"]] == [case.field]
    assert after_refusal == before
    assert accepted.status_code == 201, accepted.text
    assert await case.rows(session) == before + 1


async def test_every_field_with_a_nul_is_named_and_an_escaped_backslash_u_is_not_one(
    client: httpx.AsyncClient, callers: Callers
) -> None:
    body = _product(callers.household_id, NUL)
    body["name"] = f"Bưởi{NUL}"
    body["description"] = "Nhãn ghi \\u0000 theo nghĩa đen"  # a backslash, not a NUL

    response = await client.post("/api/products", json=body, headers=callers.farmer)

    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"name", "variants[1].label"}


async def test_a_patch_with_a_nul_leaves_the_row_as_it_was(
    client: httpx.AsyncClient, session: AsyncSession, callers: Callers
) -> None:
    created = await client.post(
        "/api/products", json=_product(callers.household_id, ""), headers=callers.farmer
    )
    product_id = created.json()["id"]

    response = await client.patch(
        f"/api/products/{product_id}",
        json={"description": f"Ngọt{NUL}"},
        headers=callers.farmer,
    )

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "description", "message": "must not contain the NUL character (U+0000)"}
    ]
    product = await session.get(Product, uuid.UUID(product_id))
    assert product is not None
    assert NUL not in product.description


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        pytest.param("/api/products", {"q": f"bưởi{NUL}"}, "q", id="search-words"),
        pytest.param("/api/products", {"province": f"4{NUL}6"}, "province", id="place-code"),
        pytest.param(
            "/api/cooperatives", {"province_code": f"9{NUL}2"}, "province_code", id="code"
        ),
        pytest.param("/api/livestreams", {"x": NUL}, "x", id="undeclared-parameter"),
    ],
)
async def test_a_nul_in_a_query_parameter_is_refused_naming_it(
    client: httpx.AsyncClient, path: str, params: dict[str, str], field: str
) -> None:
    response = await client.get(path, params=params)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_a_nul_in_a_path_parameter_is_refused_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/trace/LO%00T-1")

    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["code"]


async def test_a_nul_in_a_form_field_is_refused_naming_it(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    official = await create_user(session, role=Role.OFFICIAL)

    response = await client.post(
        "/impact/login", data={"login": f"{official.login}{NUL}", "password": "x" * 12}
    )

    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["login"]


async def test_a_guarded_route_still_asks_an_anonymous_caller_to_authenticate_first(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/cooperatives", json={"name": NUL})

    assert response.status_code == 401

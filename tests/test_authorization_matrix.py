"""The authorization matrix: every route of the app called as every role, the outcome
compared with what the route declares (issue 9, "Authorization").

A route's declaration is its guard (`route_table(app)`): an anonymous caller of a guarded
route gets 401, a role the guard does not name gets 403, and a role it names gets past the
guard (whatever the handler then answers: 404 for an id that exists nowhere, 422 for the
empty body, 409 ...). Only the status family is compared. The object-level tests below
check what a guard cannot: whose household, order or commune it is.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.accounts.guards import AccessDeclaration, RouteAccess, route_table
from marketplace.accounts.models import JurisdictionLevel, Role, User
from marketplace.app import create_app
from marketplace.catalog.models import ProductStatus
from marketplace.db import utcnow
from marketplace.orders.service import OrderService
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from tests.accounts.factories import auth_headers, create_user, unique_ip, unique_login
from tests.catalog.factories import create_product
from tests.orders.factories import catalog_order, create_variant
from tests.sellers.factories import (
    CAN_THO,
    HUONG_THUY,
    HUONG_TRA,
    NINH_KIEU,
    create_household,
)


@dataclass(frozen=True, slots=True)
class Caller:
    """One column of the matrix: a role, and for officials the level of jurisdiction."""

    name: str
    role: Role | None
    level: JurisdictionLevel | None = None


CALLERS = (
    Caller("anonymous", None),
    Caller("buyer", Role.BUYER),
    Caller("farmer", Role.FARMER),
    Caller("cooperative_manager", Role.COOPERATIVE_MANAGER),
    Caller("host", Role.HOST),
    Caller("helper", Role.HELPER),
    Caller("official commune", Role.OFFICIAL, JurisdictionLevel.COMMUNE),
    Caller("official province", Role.OFFICIAL, JurisdictionLevel.PROVINCE),
    Caller("admin", Role.ADMIN),
)

# The route table read once at collection: create_app builds routes without its lifespan,
# so default settings touch neither the network nor a database here.
ROUTES = route_table(create_app(Settings(), skip_logging_setup=True))

# Path parameters the callers' jurisdiction covers (Cần Thơ, Phường Ninh Kiều), so that an
# official's request is judged by the guard and not refused as outside the jurisdiction.
_PARAMETER_VALUES = {
    "code": NINH_KIEU,
    "province_code": CAN_THO,
    "commune_code": NINH_KIEU,
    "width": "320",
    "category": "fruit",
    "key": "products/x.jpg",
    "file_path": "dashboard.css",
    "path": "openapi.json",
}
_PATH_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
# Logging out revokes the caller's token: those routes run last in a caller's walk, each
# with a token of its own.
_TOKEN_REVOKING = {"/api/auth/logout", "/api/auth/logout-all"}


def concrete_path(template: str) -> str:
    def value(match: re.Match[str]) -> str:
        name, kind = match.group(1), match.group(2) or "str"
        if kind == "uuid":
            return str(uuid.uuid4())
        if kind == "int":
            return "1"
        return _PARAMETER_VALUES.get(name, "x")

    return _PATH_PARAM.sub(value, template)


def http_cases(table: list[RouteAccess]) -> list[tuple[str, str, AccessDeclaration | None]]:
    """(method, path template, declaration) for every HTTP route; HEAD only where it is the
    route's own method (Litestar adds HEAD next to GET on nothing but static files)."""
    cases = []
    for entry in table:
        if entry.methods & {"websocket", "asgi"}:
            continue
        methods = entry.methods - {"HEAD"} if entry.methods - {"HEAD"} else entry.methods
        cases.extend((method, entry.path, entry.declaration) for method in sorted(methods))
    return sorted(cases, key=lambda case: (case[1] in _TOKEN_REVOKING, case[1], case[0]))


HTTP_CASES = http_cases(ROUTES)


OFFICIALS = frozenset({"official commune", "official province"})
EVERYONE = frozenset(caller.name for caller in CALLERS)
DOMAIN_ANSWERS: dict[tuple[str, str], tuple[str, frozenset[str]]] = {
    # The dashboard's login form answers wrong credentials with 401 itself.
    ("POST", "/impact/login"): ("401", EVERYONE),
    # Public routes whose authority is the signed URL, not a token: an unsigned one is 403.
    ("GET", "/media/{key:path}"): ("403", EVERYONE),
    ("PUT", "/media/{key:path}"): ("403", EVERYONE),
    # The dashboard's forms carry a CSRF token; a request without one is refused.
    ("POST", "/impact/dashboard/exports"): ("403", OFFICIALS),
    ("POST", "/impact/logout"): ("403", OFFICIALS),
    # A province's figures are not tied to one commune: beyond a commune official's reach.
    ("GET", "/api/impact/provinces/{province_code:str}/summary"): (
        "403",
        frozenset({"official commune"}),
    ),
}
"""Callers a guard lets through whom the handler then refuses by a documented rule of its
own (credentials, signature, CSRF, jurisdiction): the expected answer is that refusal."""


def expected_outcome(
    method: str, template: str, declaration: AccessDeclaration | None, caller: Caller
) -> str:
    if declaration is None:
        return "declared"
    if declaration.public:
        allowed = True
    elif caller.role is None:
        return "401"
    else:
        allowed = caller.role in declaration.roles
    if not allowed:
        return "403"
    status, callers = DOMAIN_ANSWERS.get((method, template), ("allowed", EVERYONE))
    return status if caller.name in callers else "allowed"


def actual_outcome(status: int) -> str:
    return str(status) if status in (401, 403) else "allowed"


def request_body(method: str, template: str) -> dict[str, Any]:
    """An empty JSON object for writes; the dashboard's login is a form, sent with a login
    of its own (login attempts are counted per login in Redis, shared by every run)."""
    if (method, template) == ("POST", "/impact/login"):
        return {"data": {"login": unique_login(), "password": "sai-mat-khau"}}
    return {"json": {}} if method in {"POST", "PUT", "PATCH"} else {}


async def create_caller(session: AsyncSession, caller: Caller) -> User | None:
    if caller.role is None:
        return None
    code = {JurisdictionLevel.COMMUNE: NINH_KIEU, JurisdictionLevel.PROVINCE: CAN_THO}
    return await create_user(
        session,
        role=caller.role,
        jurisdiction_level=caller.level,
        jurisdiction_code=code[caller.level] if caller.level else None,
    )


@pytest.fixture
async def caller_client(
    app: Litestar, client: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """A client from an address of its own (the app is started by `client`): the login
    routes' rate limit lives in Redis, shared by every run, and must not answer for them."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(unique_ip(), 50123)),
        base_url="http://testserver",
    ) as own:
        yield own


@pytest.fixture
def orders(
    uow: UnitOfWork,
    settings: Settings,
    redis: Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> OrderService:
    return OrderService(uow, settings, redis, utcnow, claims=sessionmaker)


def test_the_matrix_covers_every_http_route_and_declares_every_websocket() -> None:
    undeclared = [f"{m} {p}" for m, p, d in HTTP_CASES if d is None]
    websockets = [e for e in ROUTES if e.methods & {"websocket"}]

    assert len(HTTP_CASES) > 100
    assert undeclared == []
    assert [e.path for e in websockets if e.declaration is None] == []


@pytest.mark.parametrize("caller", CALLERS, ids=[f"as {c.name}" for c in CALLERS])
async def test_every_route_answers_each_role_as_its_guard_declares(
    session: AsyncSession, caller_client: httpx.AsyncClient, caller: Caller
) -> None:
    user = await create_caller(session, caller)
    headers = await auth_headers(session, user) if user else {}

    mismatches = []
    for method, template, declaration in HTTP_CASES:
        if user is not None and template in _TOKEN_REVOKING:
            headers = await auth_headers(session, user)
        expected = expected_outcome(method, template, declaration, caller)
        response = await caller_client.request(
            method, concrete_path(template), headers=headers, **request_body(method, template)
        )
        actual = actual_outcome(response.status_code)
        if actual != expected:
            mismatches.append(
                f"{method} {template} as {caller.name}: expected {expected}, "
                f"got {response.status_code} {response.text[:160]}"
            )

    assert mismatches == [], "\n".join(mismatches)


def test_the_expected_outcome_follows_the_guard_of_placing_an_order() -> None:
    [declaration] = [d for m, p, d in HTTP_CASES if (m, p) == ("POST", "/api/orders")]
    by_name = {caller.name: caller for caller in CALLERS}

    def outcome(name: str) -> str:
        return expected_outcome("POST", "/api/orders", declaration, by_name[name])

    assert outcome("buyer") == "allowed"
    assert outcome("farmer") == "403"
    assert outcome("anonymous") == "401"
    # A guard refusing an allowed role shows as a mismatch, 404/422 as passing the guard.
    assert actual_outcome(403) != outcome("buyer")
    assert actual_outcome(422) == outcome("buyer")


# ---- Object level: whose product, order, household or commune it is ------------------------


async def official_headers(session: AsyncSession, commune_code: str) -> dict[str, str]:
    official = await create_user(
        session,
        role=Role.OFFICIAL,
        jurisdiction_level=JurisdictionLevel.COMMUNE,
        jurisdiction_code=commune_code,
    )
    return await auth_headers(session, official)


async def test_a_farmer_cannot_read_or_change_another_households_products(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    owner, other = (
        await create_user(session, role=Role.FARMER),
        await create_user(session, role=Role.FARMER),
    )
    household = await create_household(session, farmer=owner)
    await create_household(session, farmer=other)
    listed = await create_product(session, household=household)
    draft = await create_product(session, household=household, status=ProductStatus.DRAFT)
    owner_headers = await auth_headers(session, owner)
    other_headers = await auth_headers(session, other)
    rename = {"name": "Cam sành đổi tên"}

    own_read = await client.get(f"/api/seller/products/{draft.id}", headers=owner_headers)
    draft_read = await client.get(f"/api/seller/products/{draft.id}", headers=other_headers)
    draft_change = await client.patch(
        f"/api/products/{draft.id}", json=rename, headers=other_headers
    )
    listed_read = await client.get(f"/api/seller/products/{listed.id}", headers=other_headers)
    listed_change = await client.patch(
        f"/api/products/{listed.id}", json=rename, headers=other_headers
    )
    their_list = await client.get(
        f"/api/seller/products?household_id={household.id}", headers=other_headers
    )

    # The catalog's rule: a product on public sale is 403, anything else 404 (not probeable).
    assert own_read.status_code == 200, own_read.text
    assert (draft_read.status_code, draft_change.status_code) == (404, 404)
    assert (listed_read.status_code, listed_change.status_code) == (403, 403)
    assert their_list.status_code == 403
    assert (await client.get(f"/api/products/{listed.id}")).json()["name"] == listed.name


async def test_a_farmer_cannot_see_or_ship_another_households_orders(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    owner, other = (
        await create_user(session, role=Role.FARMER),
        await create_user(session, role=Role.FARMER),
    )
    household = await create_household(session, farmer=owner)
    await create_household(session, farmer=other)
    buyer = await create_user(session, role=Role.BUYER)
    order = await orders.place_order(
        catalog_order(
            buyer, await create_variant(session, household=household), payment_method="cod"
        )
    )
    owner_headers = await auth_headers(session, owner)
    other_headers = await auth_headers(session, other)

    [mine] = (await client.get("/api/fulfilments", headers=owner_headers)).json()["items"]
    fulfilment_id = mine["fulfilment"]["id"]
    theirs = await client.get("/api/fulfilments", headers=other_headers)
    named = await client.get(f"/api/fulfilments?household_id={household.id}", headers=other_headers)
    ship = await client.post(
        f"/api/fulfilments/{fulfilment_id}/ship",
        json={"carrier": "GHTK", "tracking_number": "S123456789"},
        headers=other_headers,
    )
    deliver = await client.post(
        f"/api/fulfilments/{fulfilment_id}/deliver", json={}, headers=other_headers
    )
    order_read = await client.get(f"/api/orders/{order.id}", headers=other_headers)
    other_buyer = await client.get(
        f"/api/orders/{order.id}",
        headers=await auth_headers(session, await create_user(session, role=Role.BUYER)),
    )

    assert mine["fulfilment"]["order_id"] == str(order.id)
    assert theirs.json()["items"] == []
    assert named.status_code == 403
    # A fulfilment of another seller answers 404, as if it did not exist.
    assert (ship.status_code, deliver.status_code) == (404, 404)
    assert order_read.status_code == 403
    assert other_buyer.status_code == 404
    assert (
        await client.get(f"/api/orders/{order.id}", headers=await auth_headers(session, buyer))
    ).status_code == 200


async def test_a_commune_official_gets_403_on_another_communes_households(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    household = await create_household(session, commune_code=HUONG_TRA)
    own_official = await official_headers(session, HUONG_TRA)
    neighbour = await official_headers(session, HUONG_THUY)

    allowed = await client.get(f"/api/households/{household.id}", headers=own_official)
    read = await client.get(f"/api/households/{household.id}", headers=neighbour)
    change = await client.patch(
        f"/api/households/{household.id}", json={"members_count": 5}, headers=neighbour
    )
    status = await client.get(f"/api/households/{household.id}/status", headers=neighbour)
    listing = await client.get(f"/api/households?commune_code={HUONG_TRA}", headers=neighbour)

    assert allowed.status_code == 200, allowed.text
    assert (read.status_code, change.status_code, status.status_code) == (403, 403, 403)
    assert listing.status_code == 403


async def test_a_commune_official_gets_403_on_another_communes_reports(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    own_official = await official_headers(session, HUONG_TRA)
    neighbour = await official_headers(session, HUONG_THUY)
    summary = f"/api/impact/communes/{HUONG_TRA}/summary"

    allowed = await client.get(summary, headers=own_official)
    refused = await client.get(summary, headers=neighbour)
    households = await client.get(
        f"/api/impact/households?commune_code={HUONG_TRA}", headers=neighbour
    )
    export_body = {"format": "csv", "commune_code": HUONG_TRA}
    own_export = await client.post("/api/impact/exports", json=export_body, headers=own_official)
    export = await client.post("/api/impact/exports", json=export_body, headers=neighbour)

    assert (allowed.status_code, own_export.status_code) == (200, 202), own_export.text
    assert (refused.status_code, households.status_code) == (403, 403)
    assert export.status_code == 403, export.text

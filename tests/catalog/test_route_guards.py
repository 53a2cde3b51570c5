"""Who may call each catalog route: sellers' routes let farmers, cooperative managers,
helpers and admins through their guard and refuse buyers, hosts and officials; public routes
need no token. Which product a seller may touch is the service's check (test_products.py)."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from litestar import Litestar

from marketplace.accounts.guards import route_table
from marketplace.accounts.models import Role
from tests.catalog.conftest import MakeCaller

SELLER_ROUTES = [
    ("POST", "/api/products"),
    ("PATCH", "/api/products/{product_id:uuid}"),
    ("POST", "/api/products/{product_id:uuid}/variants"),
    ("PATCH", "/api/products/{product_id:uuid}/variants/{variant_id:uuid}"),
    ("POST", "/api/products/{product_id:uuid}/lots"),
    ("POST", "/api/products/{product_id:uuid}/lots/{lot_id:uuid}/contributions"),
    ("POST", "/api/products/{product_id:uuid}/images/upload-slot"),
    ("POST", "/api/products/{product_id:uuid}/images/{image_id:uuid}/confirm"),
    ("GET", "/api/seller/products"),
    ("GET", "/api/seller/products/{product_id:uuid}"),
    ("GET", "/api/seller/notices"),
    ("POST", "/api/certifications"),
]
PUBLIC_ROUTES = [
    ("GET", "/api/products"),
    ("GET", "/api/products/{product_id:uuid}"),
    ("GET", "/api/images/{image_id:uuid}/{width:str}"),
    ("GET", "/trace/{code:str}"),
    ("GET", "/trace/{code:str}/qr.png"),
    ("GET", "/media/{key:path}"),
    ("PUT", "/media/{key:path}"),
]
SELLER_ROLES = {Role.FARMER, Role.COOPERATIVE_MANAGER, Role.HELPER, Role.ADMIN}
CATALOG_PREFIXES = (
    "/api/products",
    "/api/seller",
    "/api/certifications",
    "/api/images",
    "/trace",
    "/media",
)
_PARAM = re.compile(r"\{(\w+):(\w+)\}")


def concrete(method: str, pattern: str) -> str:
    def value(match: re.Match[str]) -> str:
        name, kind = match.groups()
        if kind == "uuid":
            return str(uuid.uuid4())
        if kind == "path":
            return "uploads/x/y" if method == "PUT" else "renditions/x/320.webp"
        return {"code": "ABCD2345", "width": "320"}[name]

    return _PARAM.sub(value, pattern)


def test_these_lists_are_every_catalog_route_and_its_declared_access(app: Litestar) -> None:
    declared = {
        (method, entry.path): entry.declaration
        for entry in route_table(app)
        if entry.path.startswith(CATALOG_PREFIXES)
        for method in entry.methods - {"HEAD"}
    }

    assert set(declared) == set(SELLER_ROUTES) | set(PUBLIC_ROUTES)
    for route in PUBLIC_ROUTES:
        assert declared[route] is not None
        assert declared[route].public, route
    for route in SELLER_ROUTES:
        assert declared[route] is not None
        assert declared[route].roles == SELLER_ROLES, route


@pytest.mark.parametrize(
    ("method", "pattern", "role"),
    [
        pytest.param(method, pattern, role, id=f"{method} {pattern} as {role.value}")
        for method, pattern in SELLER_ROUTES
        for role in Role
    ],
)
async def test_seller_routes_let_sellers_through_and_refuse_other_roles(
    client: httpx.AsyncClient, caller: MakeCaller, method: str, pattern: str, role: Role
) -> None:
    user = await caller(role)

    response = await client.request(
        method, concrete(method, pattern), headers=user.headers, json={}
    )

    refused_by_guard = response.status_code == 403 and response.json()["code"] == "forbidden"
    assert refused_by_guard is (role not in SELLER_ROLES), response.text
    assert response.status_code not in {401, 500}, response.text


@pytest.mark.parametrize(
    ("method", "pattern"), SELLER_ROUTES, ids=[f"{m} {p}" for m, p in SELLER_ROUTES]
)
async def test_seller_routes_refuse_anonymous_callers(
    client: httpx.AsyncClient, method: str, pattern: str
) -> None:
    response = await client.request(method, concrete(method, pattern), json={})

    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")


@pytest.mark.parametrize(
    ("method", "pattern"), PUBLIC_ROUTES, ids=[f"{m} {p}" for m, p in PUBLIC_ROUTES]
)
async def test_public_routes_answer_without_a_token(
    client: httpx.AsyncClient, method: str, pattern: str
) -> None:
    response = await client.request(method, concrete(method, pattern))

    assert response.status_code not in {401, 500}, response.text

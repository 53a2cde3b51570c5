"""The public geo API: lists, search without diacritics, problem+json misses, conditional GET."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from litestar import Litestar
from litestar.routes import HTTPRoute
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.geo.models import Area, Commune

PROVINCE_KEYS = {"code", "name", "unit_type", "admin_version", "commune_count"}
COMMUNE_KEYS = {
    "code",
    "name",
    "unit_type",
    "area",
    "admin_version",
    "province_code",
    "province_name",
}


async def _ok(client: AsyncClient, url: str, **params: Any) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_provinces_lists_34_with_version_type_and_commune_count(
    client: AsyncClient,
) -> None:
    body = await _ok(client, "/api/geo/provinces")
    assert len(body) == 34
    assert all(set(p) == PROVINCE_KEYS for p in body)
    assert {p["admin_version"] for p in body} == {"2025-07"}
    assert sum(p["commune_count"] for p in body) == 3321
    assert {p["unit_type"] for p in body} == {"province", "municipality"}


async def test_provinces_search_without_diacritics(client: AsyncClient) -> None:
    body = await _ok(client, "/api/geo/provinces", q="can tho")
    assert [(p["code"], p["name"], p["commune_count"]) for p in body] == [
        ("92", "Thành phố Cần Thơ", 103)
    ]


async def test_one_province_by_code(client: AsyncClient) -> None:
    body = await _ok(client, "/api/geo/provinces/92")
    assert body == {
        "code": "92",
        "name": "Thành phố Cần Thơ",
        "unit_type": "municipality",
        "admin_version": "2025-07",
        "commune_count": 103,
    }


async def test_can_tho_lists_103_communes(client: AsyncClient) -> None:
    body = await _ok(client, "/api/geo/provinces/92/communes")
    assert len(body) == 103
    assert all(set(c) == COMMUNE_KEYS for c in body)
    assert {c["province_code"] for c in body} == {"92"}
    assert {(c["unit_type"], c["area"]) for c in body} == {("xa", "rural"), ("phuong", "urban")}


@pytest.mark.parametrize(
    "q",
    [pytest.param("ninh kieu", id="no-marks"), pytest.param("NINH KIỀU", id="marks-upper")],
)
async def test_communes_search_without_diacritics(client: AsyncClient, q: str) -> None:
    body = await _ok(client, "/api/geo/provinces/92/communes", q=q)
    assert [(c["code"], c["name"]) for c in body] == [("31135", "Phường Ninh Kiều")]


async def test_communes_filter_by_unit_type(client: AsyncClient) -> None:
    body = await _ok(client, "/api/geo/provinces/91/communes", unit_type="dac_khu")
    assert sorted(c["name"] for c in body) == [
        "Đặc khu Kiên Hải",
        "Đặc khu Phú Quốc",
        "Đặc khu Thổ Châu",
    ]


async def test_an_unknown_unit_type_is_a_validation_problem(client: AsyncClient) -> None:
    response = await client.get("/api/geo/provinces/92/communes", params={"unit_type": "huyen"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_failed"


async def test_one_commune_with_its_province_and_area(client: AsyncClient) -> None:
    body = await _ok(client, "/api/geo/communes/31078")
    assert body == {
        "code": "31078",
        "name": "Đặc khu Phú Quốc",
        "unit_type": "dac_khu",
        "area": "rural",
        "admin_version": "2025-07",
        "province_code": "91",
        "province_name": "An Giang",
    }


@pytest.mark.parametrize(
    ("url", "code"),
    [
        pytest.param("/api/geo/provinces/03", "province_not_found", id="province"),
        pytest.param("/api/geo/provinces/03/communes", "province_not_found", id="its-communes"),
        pytest.param("/api/geo/communes/99999", "commune_not_found", id="commune"),
    ],
)
async def test_unknown_units_are_404_problem_json_and_not_cached(
    client: AsyncClient, url: str, code: str
) -> None:
    response = await client.get(url)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert (body["code"], body["status"]) == (code, 404)
    assert "etag" not in response.headers
    assert "public" not in response.headers.get("cache-control", "")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("/api/geo/provinces", id="provinces"),
        pytest.param("/api/geo/provinces/92", id="province"),
        pytest.param("/api/geo/provinces/92/communes?q=ninh kieu", id="communes"),
        pytest.param("/api/geo/communes/31135", id="commune"),
    ],
)
async def test_reads_carry_an_etag_and_answer_304_when_it_matches(
    client: AsyncClient, url: str
) -> None:
    first = await client.get(url)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "public, max-age=3600"
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')

    again = await client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == "public, max-age=3600"

    stale = await client.get(url, headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200
    assert stale.json() == first.json()


async def test_different_answers_have_different_etags(client: AsyncClient) -> None:
    all_provinces = await client.get("/api/geo/provinces")
    can_tho = await client.get("/api/geo/provinces", params={"q": "can tho"})
    assert all_provinces.headers["etag"] != can_tho.headers["etag"]


async def test_the_etag_changes_when_a_special_zone_area_changes(
    client: AsyncClient, session: AsyncSession
) -> None:
    before = await client.get("/api/geo/communes/31078")
    await session.execute(update(Commune).where(Commune.code == "31078").values(area=Area.URBAN))
    await session.flush()
    after = await client.get(
        "/api/geo/communes/31078", headers={"If-None-Match": before.headers["etag"]}
    )
    assert after.status_code == 200
    assert after.json()["area"] == "urban"
    assert after.headers["etag"] != before.headers["etag"]


def test_every_geo_route_is_marked_public(app: Litestar) -> None:
    handlers = [
        handler
        for route in app.routes
        if isinstance(route, HTTPRoute) and route.path.startswith("/api/geo")
        for handler in route.route_handlers
        if "GET" in handler.http_methods
    ]
    assert len(handlers) == 4
    assert all(handler.opt.get("public") is True for handler in handlers)


async def test_geo_routes_are_in_the_openapi_schema(client: AsyncClient) -> None:
    paths = (await _ok(client, "/schema/openapi.json"))["paths"]
    assert {
        "/api/geo/provinces",
        "/api/geo/provinces/{code}",
        "/api/geo/provinces/{code}/communes",
        "/api/geo/communes/{code}",
    } <= paths.keys()

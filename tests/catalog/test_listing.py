"""The public listing: every filter, search without diacritics, keyset pages that stay
stable while products are added, conditional GET, and the public product page."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.catalog.certificates import VIETNAM, vietnam_today
from marketplace.catalog.models import (
    Category,
    CertificationKind,
    ImageStatus,
    Product,
    ProductStatus,
    Variant,
)
from marketplace.db import utcnow
from marketplace.sellers.models import PovertyStatus
from tests.catalog.conftest import CooperativeSeller
from tests.catalog.factories import (
    BUOI,
    SEED_PRODUCTS,
    create_certification,
    create_image,
    create_lot,
    create_product,
)
from tests.sellers.factories import PHONG_DIEN, add_review, create_household

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


async def listing(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/products", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def names(client: httpx.AsyncClient, **params: Any) -> list[str]:
    return [item["name"] for item in (await listing(client, **params))["items"]]


async def test_only_listed_products_are_public_newest_first(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_product(session, name="Cũ", created_at=T0)
    await create_product(session, name="Mới", created_at=T0 + timedelta(hours=1))
    await create_product(session, name="Nháp", status=ProductStatus.DRAFT)
    await create_product(session, name="Ngừng bán", status=ProductStatus.UNLISTED)

    assert await names(client) == ["Mới", "Cũ"]


async def test_a_listing_item_carries_price_season_certificates_and_a_thumbnail(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    product = await create_product(session, seed=BUOI)
    await create_certification(session, product=product, kind=CertificationKind.OCOP)
    image = await create_image(session, product)
    await create_image(session, product, status=ImageStatus.REJECTED, position=1)

    [item] = (await listing(client))["items"]

    assert item["min_price_amount"] == 180_000
    assert item["season_months"] == [8, 9, 10, 11, 12]
    assert item["certifications"] == ["ocop"]
    assert item["image_url"] == f"/api/images/{image.id}/320"
    assert item["seller_kind"] == "household"


async def test_filter_by_province_and_commune(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_product(session, name="Bưởi Huế")
    can_tho = await create_household(session, commune_code=PHONG_DIEN)
    await create_product(session, household=can_tho, name="Bưởi Phong Điền")

    assert await names(client, province="46") == ["Bưởi Huế"]
    assert await names(client, province="92") == ["Bưởi Phong Điền"]
    assert await names(client, commune=PHONG_DIEN) == ["Bưởi Phong Điền"]
    assert await names(client, commune="19996") == ["Bưởi Huế"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"commune": "99999"}, "commune", id="unknown-commune"),
        pytest.param({"province": "99"}, "province", id="unknown-province"),
        pytest.param({"price_min": 200_000, "price_max": 100_000}, "price_max", id="max<min"),
        pytest.param({"price_min": -1}, "price_min", id="negative-price"),
        pytest.param({"limit": 500}, "limit", id="page-too-big"),
        pytest.param({"category": "gold"}, "category", id="unknown-category"),
        pytest.param({"cursor": "bm90LWEtY3Vyc29y"}, "cursor", id="forged-cursor"),
    ],
)
async def test_bad_listing_parameters_are_a_422_naming_them(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/api/products", params=params)

    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_filter_by_category(client: httpx.AsyncClient, session: AsyncSession) -> None:
    await create_product(session, seed=SEED_PRODUCTS[7])
    await create_product(session, seed=BUOI)

    assert await names(client, category=Category.PROCESSED.value) == ["Cốm An Thuận"]


async def test_filter_by_certification_valid_today(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    today = vietnam_today(utcnow())
    own = await create_product(session, name="Ổi có VietGAP", created_at=T0)
    await create_certification(session, product=own)
    certified_household = await create_household(session)
    await create_certification(session, household=certified_household)
    await create_product(
        session, household=certified_household, name="Hộ có VietGAP", created_at=T0 + timedelta(1)
    )
    expired = await create_product(session, name="Hết hạn hôm nay")
    await create_certification(session, product=expired, valid_to=today)
    future = await create_product(session, name="Chưa hiệu lực")
    await create_certification(session, product=future, valid_from=today + timedelta(days=1))
    ocop = await create_product(session, name="Bưởi OCOP")
    await create_certification(session, product=ocop, kind=CertificationKind.OCOP)

    assert await names(client, certification="vietgap") == ["Hộ có VietGAP", "Ổi có VietGAP"]
    assert await names(client, certification="ocop") == ["Bưởi OCOP"]


async def test_filter_by_price_range_on_the_lowest_price(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_product(session, name="Rẻ", variants=[("túi 1 kg", 60_000, 5)])
    await create_product(session, name="Vừa", variants=[("hộp 2 kg", 180_000, 5)])
    await create_product(session, name="Đắt", variants=[("thùng 10 kg", 800_000, 5)])

    assert sorted(await names(client, price_min=100_000, price_max=200_000)) == ["Vừa"]
    assert sorted(await names(client, price_max=180_000)) == ["Rẻ", "Vừa"]
    assert sorted(await names(client, price_min=180_001)) == ["Đắt"]


async def test_filter_in_season_this_month(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    month = utcnow().astimezone(VIETNAM).month
    other = month % 12 + 1
    await create_product(session, name="Đang mùa", months=[month])
    await create_product(session, name="Trái mùa", months=[other])

    assert await names(client, in_season="true") == ["Đang mùa"]


async def test_sold_by_poor_uses_each_households_status_on_todays_date(
    client: httpx.AsyncClient, session: AsyncSession, coop: CooperativeSeller
) -> None:
    today = vietnam_today(utcnow())
    poor = await create_household(session, status=PovertyStatus.POOR)
    near_poor = await create_household(session, status=PovertyStatus.NEAR_POOR)
    escaped = await create_household(session, status=PovertyStatus.POOR)
    await add_review(session, escaped, status=PovertyStatus.NOT_POOR, review_date=today)
    poor_from_tomorrow = await create_household(session, status=PovertyStatus.NOT_POOR)
    await add_review(
        session,
        poor_from_tomorrow,
        status=PovertyStatus.POOR,
        review_date=today + timedelta(days=1),
    )
    never_reviewed = await create_household(session, status=None)
    corrected = await create_household(
        session, status=PovertyStatus.NOT_POOR, review_date=date(2025, 12, 15)
    )
    await add_review(
        session, corrected, status=PovertyStatus.NEAR_POOR, review_date=date(2025, 12, 15)
    )
    for household, name in [
        (poor, "Hộ nghèo"),
        (near_poor, "Hộ cận nghèo"),
        (escaped, "Đã thoát nghèo hôm nay"),
        (poor_from_tomorrow, "Nghèo từ ngày mai"),
        (never_reviewed, "Chưa rà soát"),
        (corrected, "Đính chính cận nghèo"),
    ]:
        await create_product(session, household=household, name=name)
    with_poor = await create_product(session, cooperative=coop.cooperative, name="HTX có hộ nghèo")
    await create_lot(session, with_poor, contributions=[(coop.member, 10), (coop.poor_member, 5)])
    without = await create_product(session, cooperative=coop.cooperative, name="HTX không")
    await create_lot(session, without, contributions=[(coop.member, 10)])
    await create_product(session, cooperative=coop.cooperative, name="HTX chưa có lô")

    assert sorted(await names(client, sold_by_poor="true")) == sorted(
        ["Hộ nghèo", "Hộ cận nghèo", "Đính chính cận nghèo", "HTX có hộ nghèo"]
    )


@pytest.mark.parametrize(
    "q", ["buoi da xanh", "BƯỞI DA XANH", "Buoi  da   xanh", "bưởi", "da xanh"]
)
async def test_search_ignores_diacritics_and_case(
    client: httpx.AsyncClient, session: AsyncSession, q: str
) -> None:
    for seed in SEED_PRODUCTS:
        await create_product(session, seed=seed)

    found = await names(client, q=q)

    assert found[0] == "Bưởi da xanh"


async def test_search_ranks_the_closest_match_first(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    for seed in SEED_PRODUCTS:
        await create_product(session, seed=seed)

    found = await names(client, q="cam")

    assert set(found[:2]) == {"Cam V2 Hương Trà", "Cam Xã Đoài"}
    assert "Cốm An Thuận" not in found


async def test_search_finds_nothing_for_words_it_does_not_know(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_product(session, seed=BUOI)

    assert await names(client, q="sầu riêng") == []


async def test_search_combines_with_filters(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_product(session, seed=BUOI, variants=[("hộp 2 kg", 180_000, 5)])
    await create_product(
        session, seed=BUOI, name="Bưởi da xanh loại 1", variants=[("thùng", 900_000, 5)]
    )

    assert await names(client, q="buoi", price_max=200_000) == ["Bưởi da xanh"]


async def _all_pages(client: httpx.AsyncClient, **params: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        body = await listing(client, **params, **({"cursor": cursor} if cursor else {}))
        pages.append([item["name"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


async def test_pages_follow_each_other_without_gaps_or_repeats(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    for n in range(5):
        await create_product(session, name=f"Sản phẩm {n}", created_at=T0 + timedelta(minutes=n))

    pages = await _all_pages(client, limit=2)

    assert pages == [["Sản phẩm 4", "Sản phẩm 3"], ["Sản phẩm 2", "Sản phẩm 1"], ["Sản phẩm 0"]]


async def test_products_listed_while_someone_pages_neither_repeat_nor_hide_others(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    same_instant = T0 + timedelta(minutes=10)
    originals = []
    for n in range(6):
        # Two products share each instant: the id breaks the tie.
        product = await create_product(
            session, name=f"Gốc {n}", created_at=same_instant + timedelta(minutes=n // 2)
        )
        originals.append(product.name)

    first = await listing(client, limit=2)
    for n in range(3):
        await create_product(session, name=f"Mới {n}", created_at=utcnow())
    await create_product(session, name="Cùng lúc", created_at=same_instant + timedelta(minutes=2))
    seen = [item["name"] for item in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        body = await listing(client, limit=2, cursor=cursor)
        seen += [item["name"] for item in body["items"]]
        cursor = body["next_cursor"]

    assert len(seen) == len(set(seen))
    assert set(originals) <= set(seen)
    assert not {name for name in seen if name.startswith("Mới")}


async def test_search_results_page_by_relevance_with_the_same_guarantees(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    for n in range(5):
        await create_product(session, seed=BUOI, name=f"Bưởi da xanh {n}")
    await create_product(session, seed=BUOI, name="Bưởi")

    pages = await _all_pages(client, q="buoi da xanh", limit=2)

    flat = [name for page in pages for name in page]
    assert len(flat) == len(set(flat)) == 6
    cursor = (await listing(client, q="buoi da xanh", limit=2))["next_cursor"]
    without_q = await client.get("/api/products", params={"cursor": cursor})
    assert without_q.status_code == 422


async def test_public_reads_carry_an_etag_and_answer_304_when_unchanged(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    product = await create_product(session)
    first = await client.get("/api/products")
    etag = first.headers["etag"]

    again = await client.get("/api/products", headers={"If-None-Match": etag})
    await session.execute(
        update(Variant).where(Variant.product_id == product.id).values(price_amount=190_000)
    )
    await session.execute(
        update(Product).where(Product.id == product.id).values(min_price_amount=190_000)
    )
    changed = await client.get("/api/products", headers={"If-None-Match": etag})

    assert first.headers["cache-control"] == "public, max-age=30"
    assert (again.status_code, again.content) == (304, b"")
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    detail = await client.get(f"/api/products/{product.id}")
    repeat = await client.get(
        f"/api/products/{product.id}", headers={"If-None-Match": detail.headers["etag"]}
    )
    assert repeat.status_code == 304


async def test_the_product_page_shows_active_variants_ready_images_and_a_discreet_seller(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    household = await create_household(session, head_name="Trần Thị Hoa", phone="0905123401")
    product = await create_product(session, household=household, seed=BUOI)
    await session.execute(
        update(Variant)
        .where(Variant.product_id == product.id, Variant.label == "thùng 10 kg")
        .values(is_active=False)
    )
    ready = await create_image(session, product)
    await create_image(session, product, status=ImageStatus.PENDING, position=1)
    await create_image(session, product, status=ImageStatus.UPLOADED, position=2)
    await create_image(session, product, status=ImageStatus.REJECTED, position=3)
    lot = await create_lot(session, product)

    response = await client.get(f"/api/products/{product.id}")

    body = response.json()
    assert [v["label"] for v in body["variants"]] == ["hộp 2 kg"]
    assert [i["id"] for i in body["images"]] == [str(ready.id)]
    assert body["images"][0]["renditions"] == {
        "320": f"/api/images/{ready.id}/320",
        "1280": f"/api/images/{ready.id}/1280",
    }
    assert body["seller"] == {
        "kind": "household",
        "name": "Hoa",
        "commune_code": "19996",
        "commune_name": "Phường Hương Trà",
        "province_code": "46",
        "province_name": "Thành phố Huế",
    }
    assert body["category_label"] == "Trái cây"
    assert body["lots"][0]["trace_code"] == lot.trace_code
    for secret in ("Trần", "0905123401", str(household.id), "uploads/"):
        assert secret not in response.text


async def test_search_matches_every_word_in_any_order(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    for seed in SEED_PRODUCTS:
        await create_product(session, seed=seed)

    assert await names(client, q="xanh bưởi") == ["Bưởi da xanh"]
    assert (await names(client, q="quyt huong can"))[0] == "Quýt Hương Cần"


async def test_a_misspelt_search_falls_back_to_near_spellings(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    for seed in SEED_PRODUCTS:
        await create_product(session, seed=seed)

    found = await names(client, q="buoi da xahn")

    assert found[0] == "Bưởi da xanh"
    assert "Cốm An Thuận" not in found


async def _tiered_products(session: AsyncSession) -> None:
    """Newest last in the expected order, so only the tiers can put them first."""
    for minutes, name, description in [
        (0, "Bưởi da xanh", "Ruột hồng."),
        (10, "Bưởi da xanh loại 1", "Ruột hồng, vỏ mỏng."),
        (20, "Bưởi ruột hồng da xanh", "Trái to."),
        (30, "Bưởi Năm Roi", "Ghép từ gốc bưởi da xanh."),
        (40, "Cam sành", "Vỏ xanh, ruột cam."),
    ]:
        await create_product(
            session,
            seed=BUOI,
            name=name,
            description=description,
            created_at=T0 + timedelta(minutes=minutes),
        )


async def test_search_shows_the_exact_name_then_names_with_every_word_then_other_mentions(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await _tiered_products(session)

    assert await names(client, q="Buoi da xanh") == [
        "Bưởi da xanh",
        "Bưởi ruột hồng da xanh",
        "Bưởi da xanh loại 1",
        "Bưởi Năm Roi",
    ]


@pytest.mark.parametrize("limit", [1, 2, 3], ids=["one", "two", "three"])
async def test_search_pages_cross_from_names_to_other_mentions_without_gaps_or_repeats(
    client: httpx.AsyncClient, session: AsyncSession, limit: int
) -> None:
    await _tiered_products(session)

    pages = await _all_pages(client, q="buoi da xanh", limit=limit)

    assert [name for page in pages for name in page] == [
        "Bưởi da xanh",
        "Bưởi ruột hồng da xanh",
        "Bưởi da xanh loại 1",
        "Bưởi Năm Roi",
    ]
    assert all(len(page) == limit for page in pages[:-1])


async def test_words_no_name_holds_find_the_products_that_mention_them_newest_first(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    for n in range(4):
        await create_product(
            session,
            seed=BUOI,
            name=f"Sản phẩm {n}",
            description="Trồng trên vườn đồi." if n != 2 else "Trồng dưới ruộng.",
            created_at=T0 + timedelta(minutes=n),
        )

    pages = await _all_pages(client, q="vuon doi", limit=2)

    assert pages == [["Sản phẩm 3", "Sản phẩm 1"], ["Sản phẩm 0"]]


async def test_a_search_filter_that_leaves_few_names_still_finds_the_other_mentions(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await _tiered_products(session)
    for name, description in [
        ("Bưởi Năm Roi thùng", "Thùng 10 kg, cùng vườn với bưởi da xanh."),
        ("Bưởi da xanh thùng", "Thùng 10 kg."),
    ]:
        await create_product(
            session,
            seed=BUOI,
            name=name,
            description=description,
            variants=[("thùng 10 kg", 900_000, 5)],
        )

    found = await names(client, q="buoi da xanh", price_min=500_000)

    assert found == ["Bưởi da xanh thùng", "Bưởi Năm Roi thùng"]


@pytest.mark.parametrize(
    "rank",
    [0.5, 7, "1", None],
    ids=["a-score", "no-such-tier", "a-string", "missing"],
)
async def test_a_word_search_cursor_must_name_a_tier(
    client: httpx.AsyncClient, session: AsyncSession, rank: object
) -> None:
    product = await create_product(session, seed=BUOI)
    payload = [T0.isoformat(), str(product.id), rank, "words"]
    token = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    response = await client.get("/api/products", params={"q": "buoi", "cursor": token})

    assert response.status_code == 422, response.text

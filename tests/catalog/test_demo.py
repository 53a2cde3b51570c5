"""The demo's Hương Trà products: listed with variants, traceable lots, the VietGAP ổi and the
OCOP bưởi da xanh, and loading twice creates nothing new."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.catalog.demo import DEMO_PRODUCTS, load_demo_catalog
from marketplace.catalog.models import Lot, Product
from marketplace.sellers.demo import load_demo_sellers
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from tests.sellers.test_demo import demo_accounts


async def test_the_demo_lists_the_huong_tra_products_with_lots_and_certificates(
    session: AsyncSession, uow: UnitOfWork, settings: Settings, client: httpx.AsyncClient
) -> None:
    accounts = await demo_accounts(session)
    sellers = await load_demo_sellers(uow, settings, accounts)

    report = await load_demo_catalog(uow, settings, sellers, accounts)
    await uow.commit()

    assert report.products_created == len(DEMO_PRODUCTS) == 8
    listing = (await client.get("/api/products", params={"limit": 50})).json()
    assert len(listing["items"]) == 8
    assert {i["name"]: i["certifications"] for i in listing["items"]}["Bưởi da xanh"] == ["ocop"]
    buoi = (await client.get(f"/api/products/{report.products['Bưởi da xanh']}")).json()
    cheapest = buoi["variants"][0]
    assert (cheapest["label"], cheapest["price_amount"]) == ("hộp 2 kg", 180_000)
    [ocop] = buoi["certifications"]
    assert (ocop["stars"], ocop["valid_to"], ocop["valid"]) == (4, "2028-03-10", True)
    oi = (await client.get(f"/api/products/{report.products['Ổi VietGAP Hương Xuân']}")).json()
    assert [c["kind"] for c in oi["certifications"]] == ["vietgap"]
    assert oi["seller"]["name"] == "HTX Nông nghiệp Hương Trà"
    trace = (await client.get(f"/trace/{report.trace_codes['Ổi VietGAP Hương Xuân']}")).json()
    assert trace["producer"]["contributing_households"] == 3
    poor = await client.get("/api/products", params={"sold_by_poor": "true", "limit": 50})
    assert "Cam Xã Đoài" not in {i["name"] for i in poor.json()["items"]}
    assert "Quýt Thanh Bình" in {i["name"] for i in poor.json()["items"]}


async def test_loading_the_demo_catalog_twice_creates_nothing_new(
    session: AsyncSession, uow: UnitOfWork, settings: Settings
) -> None:
    accounts = await demo_accounts(session)
    sellers = await load_demo_sellers(uow, settings, accounts)
    first = await load_demo_catalog(uow, settings, sellers, accounts)

    again = await load_demo_catalog(uow, settings, sellers, accounts)

    assert again.products_created == 0
    assert again.products == first.products
    assert await uow.session.scalar(select(func.count()).select_from(Product)) == 8
    assert await uow.session.scalar(select(func.count()).select_from(Lot)) == 8

"""Demo products of Hương Trà (TP. Huế) for the default run, made through the catalog's rules.

The specialty fruit of seed 003: cam V2, cam Xã Đoài, quýt Thanh Bình, thanh trà and bưởi da
xanh from the demo households; ổi VietGAP Hương Xuân, quýt Hương Cần and cốm An Thuận from
"HTX Nông nghiệp Hương Trà", whose lots record each member's contribution. Each product has
a 2 kg box (180,000 ₫) and a 10 kg crate, one lot with a trace code, and is listed. The ổi
carries a VietGAP certificate and the bưởi da xanh an OCOP 4-star one.

Idempotent: a product the seller already has (same name) is left as it is.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.catalog.certificates import vietnam_today
from marketplace.catalog.models import (
    Category,
    CertificationKind,
    LotUnit,
    ProductStatus,
    SellerKind,
)
from marketplace.catalog.schemas import (
    CertificationCreate,
    ContributionCreate,
    LotCreate,
    ProductCreate,
    ProductUpdate,
    VariantCreate,
)
from marketplace.catalog.service import CatalogService
from marketplace.db import utcnow
from marketplace.sellers.demo import ADMIN_LOGIN, DemoSellersReport
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

COOPERATIVE = "cooperative"


@dataclass(frozen=True)
class SeedProduct:
    name: str
    category: Category
    region: str
    months: tuple[int, ...]
    description: str


CAM_V2 = SeedProduct(
    "Cam V2 Hương Trà",
    Category.FRUIT,
    "Hương Trà, Huế",
    (10, 11, 12, 1),
    "Cam V2 trồng theo hướng hữu cơ trên vườn đồi Hương Trà, mọng nước, ngọt thanh.",
)
CAM_XA_DOAI = SeedProduct(
    "Cam Xã Đoài",
    Category.FRUIT,
    "Hương Trà, Huế",
    (11, 12, 1),
    "Giống cam Xã Đoài vỏ mỏng, trồng xen canh với quýt.",
)
QUYT_THANH_BINH = SeedProduct(
    "Quýt Thanh Bình",
    Category.FRUIT,
    "Hương Trà, Huế",
    (11, 12, 1, 2),
    "Quýt đặc sản Thanh Bình, chín vàng dịp Tết.",
)
THANH_TRA = SeedProduct(
    "Thanh trà Hương Trà",
    Category.FRUIT,
    "Hương Trà, Huế",
    (8, 9, 10),
    "Thanh trà đặc sản xứ Huế, múi giòn, vị ngọt thanh xen chút đắng nhẹ.",
)
BUOI_DA_XANH = SeedProduct(
    "Bưởi da xanh",
    Category.FRUIT,
    "Hương Trà, Huế",
    (8, 9, 10, 11, 12),
    "Bưởi da xanh ruột hồng, trồng theo hướng hữu cơ, thu hoạch tại vườn.",
)
OI_HUONG_XUAN = SeedProduct(
    "Ổi VietGAP Hương Xuân",
    Category.FRUIT,
    "Hương Xuân, Hương Trà, Huế",
    (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12),
    "Ổi trồng theo tiêu chuẩn VietGAP, giòn ngọt, thu hoạch quanh năm.",
)
QUYT_HUONG_CAN = SeedProduct(
    "Quýt Hương Cần",
    Category.FRUIT,
    "Hương Cần, Hương Trà, Huế",
    (10, 11, 12),
    "Quýt Hương Cần vỏ mỏng, thơm, đặc sản vùng đồi Hương Trà.",
)
COM_AN_THUAN = SeedProduct(
    "Cốm An Thuận",
    Category.PROCESSED,
    "An Thuận, Hương Toàn, Huế",
    (9, 10, 11),
    "Cốm làng An Thuận làm thủ công từ lúa nếp non.",
)
SEED_PRODUCTS: tuple[SeedProduct, ...] = (
    CAM_V2,
    CAM_XA_DOAI,
    QUYT_THANH_BINH,
    THANH_TRA,
    BUOI_DA_XANH,
    OI_HUONG_XUAN,
    QUYT_HUONG_CAN,
    COM_AN_THUAN,
)
"""Hương Trà specialty products named in seed 003."""

FRUIT_VARIANTS = (
    VariantCreate(label="hộp 2 kg", price_amount=180_000, available=60, weight_grams=2000),
    VariantCreate(label="thùng 10 kg", price_amount=820_000, available=15, weight_grams=10_000),
)
COM_VARIANTS = (
    VariantCreate(label="gói 500 g", price_amount=65_000, available=80, weight_grams=500),
    VariantCreate(label="hộp 1 kg", price_amount=120_000, available=40, weight_grams=1000),
)


@dataclass(frozen=True)
class DemoProduct:
    seed: SeedProduct
    seller: str
    """A demo household key of `marketplace.sellers.demo`, or `cooperative`."""
    lot_kg: int
    harvested_days_ago: int
    contributions: tuple[tuple[str, int], ...] = ()
    certification: CertificationCreate | None = None


DEMO_PRODUCTS: tuple[DemoProduct, ...] = (
    DemoProduct(CAM_V2, "escaped_2024", 1_800, 12),
    DemoProduct(
        BUOI_DA_XANH,
        "escaped_2024",
        1_200,
        20,
        certification=CertificationCreate(
            kind=CertificationKind.OCOP,
            stars=4,
            certifier="UBND Thành phố Huế",
            number="1268/QĐ-UBND",
            scope="Bưởi da xanh Hương Trà",
            valid_from=date(2025, 3, 10),
        ),
    ),
    DemoProduct(THANH_TRA, "near_poor_huong_tra", 900, 60),
    DemoProduct(QUYT_THANH_BINH, "poor_huong_tra", 700, 5),
    DemoProduct(CAM_XA_DOAI, "never_poor_huong_tra", 1_000, 9),
    DemoProduct(
        OI_HUONG_XUAN,
        COOPERATIVE,
        1_500,
        3,
        contributions=(
            ("escaped_2024", 600),
            ("near_poor_huong_tra", 500),
            ("poor_huong_tra", 400),
        ),
        certification=CertificationCreate(
            kind=CertificationKind.VIETGAP,
            certifier="Trung tâm Chứng nhận Phù hợp (QUACERT)",
            number="VietGAP-TT-12-03-46-0021",
            scope="Ổi: 4,5 ha tại Hương Xuân",
            valid_from=date(2025, 8, 1),
        ),
    ),
    DemoProduct(
        QUYT_HUONG_CAN,
        COOPERATIVE,
        1_100,
        15,
        contributions=(("poor_huong_tra", 650), ("near_poor_huong_tra", 450)),
    ),
    DemoProduct(
        COM_AN_THUAN,
        COOPERATIVE,
        300,
        40,
        contributions=(("escaped_2024", 120), ("near_poor_huong_tra", 180)),
    ),
)


@dataclass
class DemoCatalogReport:
    products: dict[str, uuid.UUID] = field(default_factory=dict)
    """Product name -> id (created now or found)."""
    products_created: int = 0
    trace_codes: dict[str, str] = field(default_factory=dict)
    """Product name -> trace code of the lot created with it."""


async def load_demo_catalog(
    uow: UnitOfWork,
    settings: Settings,
    sellers: DemoSellersReport,
    accounts: Mapping[str, uuid.UUID],
) -> DemoCatalogReport:
    """Products of the demo sellers (`marketplace.sellers.demo.load_demo_sellers`'s report),
    made by the demo admin. `accounts` maps demo logins to user ids. The caller commits."""
    admin = AuthenticatedUser(
        id=accounts[ADMIN_LOGIN],
        role=Role.ADMIN,
        display_name=ADMIN_LOGIN,
        jurisdiction_level=None,
        jurisdiction_code=None,
        token_id=uuid.UUID(int=0),
    )
    catalog = CatalogService(uow, settings)
    today = vietnam_today(utcnow())
    report = DemoCatalogReport()
    existing: dict[tuple[str, str], uuid.UUID] = {}
    for key in {demo.seller for demo in DEMO_PRODUCTS}:
        household_id, cooperative_id = _seller_ids(key, sellers)
        for summary in await catalog.seller_products(admin, household_id, cooperative_id):
            existing[(key, summary.name)] = summary.id

    for demo in DEMO_PRODUCTS:
        found = existing.get((demo.seller, demo.seed.name))
        if found is not None:
            report.products[demo.seed.name] = found
            view = await catalog.owner_view(admin, found)
            if view.lots:
                report.trace_codes[demo.seed.name] = view.lots[0].trace_code
            continue
        household_id, cooperative_id = _seller_ids(demo.seller, sellers)
        variants = COM_VARIANTS if demo.seed.category is Category.PROCESSED else FRUIT_VARIANTS
        product = await catalog.create_product(
            admin,
            ProductCreate(
                seller_kind=SellerKind.COOPERATIVE if cooperative_id else SellerKind.HOUSEHOLD,
                household_id=household_id,
                cooperative_id=cooperative_id,
                name=demo.seed.name,
                category=demo.seed.category,
                region=demo.seed.region,
                description=demo.seed.description,
                season_months=list(demo.seed.months),
                variants=list(variants),
            ),
        )
        lot = await catalog.add_lot(
            admin,
            product.id,
            LotCreate(
                harvest_date=today - timedelta(days=demo.harvested_days_ago),
                quantity=demo.lot_kg,
                unit=LotUnit.KG,
                contributions=[
                    ContributionCreate(household_id=sellers.households[key], quantity=kg)
                    for key, kg in demo.contributions
                ],
            ),
        )
        if demo.certification is not None:
            await catalog.add_certification(
                admin,
                CertificationCreate(
                    kind=demo.certification.kind,
                    certifier=demo.certification.certifier,
                    number=demo.certification.number,
                    scope=demo.certification.scope,
                    stars=demo.certification.stars,
                    valid_from=demo.certification.valid_from,
                    product_id=product.id,
                ),
            )
        await catalog.update_product(admin, product.id, ProductUpdate(status=ProductStatus.LISTED))
        report.products[demo.seed.name] = product.id
        report.trace_codes[demo.seed.name] = lot.trace_code
        report.products_created += 1
    return report


def _seller_ids(key: str, sellers: DemoSellersReport) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    if key == COOPERATIVE:
        if sellers.cooperative_id is None:
            raise ValueError("the demo sellers report has no cooperative")
        return None, sellers.cooperative_id
    return sellers.households[key], None

"""Typed factories for products, variants, lots, certifications and images.

    household = await create_household(session)
    product = await create_product(session, household=household)      # listed, 2 variants
    lot = await create_lot(session, product)                            # with a trace code
    cert = await create_certification(session, product=product)         # VietGAP, 2 years

Rows are inserted directly (no HTTP, no ownership checks, no listing rules) with the real
search text and lowest price, so the public listing sees them as the service would have
made them. Defaults are Hương Trà specialty fruit (seed 003).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from itertools import count

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.catalog.demo import BUOI_DA_XANH, SEED_PRODUCTS, SeedProduct
from marketplace.catalog.models import (
    Category,
    Certification,
    CertificationKind,
    ImageStatus,
    Lot,
    LotContribution,
    LotUnit,
    Product,
    ProductImage,
    ProductStatus,
    SellerKind,
    Variant,
)
from marketplace.catalog.service import new_trace_code, search_text, season_mask
from marketplace.sellers.models import Cooperative, Household
from marketplace.text import fold
from tests.sellers.factories import create_household

_sequence = count(1)


BUOI = BUOI_DA_XANH

DEFAULT_VARIANTS: tuple[tuple[str, int, int], ...] = (
    ("hộp 2 kg", 180_000, 40),
    ("thùng 10 kg", 800_000, 12),
)


async def create_product(
    session: AsyncSession,
    *,
    household: Household | None = None,
    cooperative: Cooperative | None = None,
    seed: SeedProduct | None = None,
    name: str | None = None,
    category: Category | None = None,
    description: str | None = None,
    months: Sequence[int] | None = None,
    status: ProductStatus = ProductStatus.LISTED,
    variants: Sequence[tuple[str, int, int]] = DEFAULT_VARIANTS,
    created_at: datetime | None = None,
) -> Product:
    """A product of `household` (a new poor household of Hương Trà when neither seller is
    given) or of `cooperative`; listed with a 2 kg box and a 10 kg crate unless told."""
    if household is None and cooperative is None:
        household = await create_household(session)
    base = seed or SEED_PRODUCTS[next(_sequence) % len(SEED_PRODUCTS)]
    product_name = name or base.name
    product_category = category or base.category
    product_description = base.description if description is None else description
    seller_place = household if household is not None else cooperative
    assert seller_place is not None
    product = Product(
        seller_kind=(
            SellerKind.HOUSEHOLD if household is not None else SellerKind.COOPERATIVE
        ).value,
        household_id=household.id if household is not None else None,
        cooperative_id=cooperative.id if cooperative is not None and household is None else None,
        name=product_name,
        description=product_description,
        category=product_category.value,
        region=base.region,
        season_mask=season_mask(base.months if months is None else months),
        province_code=seller_place.province_code,
        commune_code=seller_place.commune_code,
        status=status.value,
        search_text=search_text(product_name, base.region, product_category, product_description),
        search_name=fold(product_name),
        min_price_amount=min((price for _, price, _ in variants), default=None),
    )
    if created_at is not None:
        product.created_at = created_at
    session.add(product)
    await session.flush()
    for label, price, available in variants:
        session.add(
            Variant(product_id=product.id, label=label, price_amount=price, available=available)
        )
    await session.flush()
    return product


async def create_lot(
    session: AsyncSession,
    product: Product,
    *,
    harvest_date: date = date(2026, 10, 20),
    quantity: int = 1200,
    unit: LotUnit = LotUnit.KG,
    contributions: Sequence[tuple[Household, int]] = (),
) -> Lot:
    """A lot of `product` produced by its seller; a cooperative's lot carries
    `contributions` (household, quantity), recorded without checking membership."""
    lot = Lot(
        product_id=product.id,
        trace_code=new_trace_code(),
        harvest_date=harvest_date,
        quantity=quantity,
        unit=unit.value,
        seller_kind=product.seller_kind,
        household_id=product.household_id,
        cooperative_id=product.cooperative_id,
    )
    session.add(lot)
    await session.flush()
    for household, amount in contributions:
        session.add(LotContribution(lot_id=lot.id, household_id=household.id, quantity=amount))
    await session.flush()
    return lot


async def create_certification(
    session: AsyncSession,
    *,
    product: Product | None = None,
    household: Household | None = None,
    kind: CertificationKind = CertificationKind.VIETGAP,
    stars: int | None = None,
    valid_from: date = date(2025, 6, 1),
    valid_to: date | None = None,
    certifier: str | None = None,
    number: str | None = None,
) -> Certification:
    """VietGAP valid two years by default; OCOP defaults to 4 stars for 36 months."""
    if kind is CertificationKind.OCOP and stars is None:
        stars = 4
    if valid_to is None:
        valid_to = valid_from + timedelta(days=730 if kind is CertificationKind.VIETGAP else 1095)
    n = next(_sequence)
    certification = Certification(
        kind=kind.value,
        product_id=product.id if product is not None else None,
        household_id=household.id if household is not None else None,
        certifier=certifier
        or (
            "Trung tâm Chứng nhận Phù hợp (QUACERT)"
            if kind is CertificationKind.VIETGAP
            else "UBND Thành phố Huế"
        ),
        number=number
        or (f"VietGAP-TT-{n:05d}" if kind is CertificationKind.VIETGAP else f"{n}/QĐ-UBND"),
        scope="Ổi, bưởi, cam: 2,5 ha" if kind is CertificationKind.VIETGAP else "",
        stars=stars,
        valid_from=valid_from,
        valid_to=valid_to,
    )
    session.add(certification)
    await session.flush()
    return certification


async def create_image(
    session: AsyncSession,
    product: Product,
    *,
    status: ImageStatus = ImageStatus.READY,
    position: int = 0,
) -> ProductImage:
    image_id = uuid.uuid4()
    image = ProductImage(
        id=image_id,
        product_id=product.id,
        object_key=f"uploads/{product.id}/{image_id}",
        status=status.value,
        declared_content_type="image/jpeg",
        original_filename="vuon_buoi.jpg",
        width=1600 if status is ImageStatus.READY else None,
        height=1200 if status is ImageStatus.READY else None,
        renditions=(
            {"320": f"renditions/{image_id}/320.webp", "1280": f"renditions/{image_id}/1280.webp"}
            if status is ImageStatus.READY
            else {}
        ),
        position=position,
    )
    session.add(image)
    await session.flush()
    return image

"""Factories for orders tests: listed variants of Hương Trà fruit with stock, and the
identity a service call acts as.

    variant = await create_variant(session, available=50, price_amount=180_000)
    buyer = await create_user(session, role=Role.BUYER)
    order = await orders.place_order(catalog_order(buyer, variant, quantity=2))
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import count

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role, User
from marketplace.catalog.models import Product, ProductStatus, SellerKind, Variant
from marketplace.livestreams.models import LiveItem, LiveSession, Platform, SessionStatus
from marketplace.orders.schemas import LineRequest, PlaceOrder, ShippingDetails
from marketplace.sellers.models import Cooperative, Household, PovertyStatus
from tests.accounts.factories import create_user
from tests.sellers.factories import create_household

FRUIT = (
    ("Cam Xã Đoài", "hộp 2 kg", 180_000),
    ("Bưởi da xanh", "quả 1,5 kg", 95_000),
    ("Thanh trà Hương Trà", "thùng 5 kg", 250_000),
    ("Quýt Hương Cần", "hộp 1 kg", 120_000),
    ("Ổi VietGAP Hương Xuân", "túi 2 kg", 60_000),
)
SHIPPING = ShippingDetails(
    name="Trần Thị Bích", phone="0912345678", address="12 Lý Tự Trọng, phường Ninh Kiều, Cần Thơ"
)
SHIPPING_BODY = {"name": SHIPPING.name, "phone": "0912 345 678", "address": SHIPPING.address}
_sequence = count(1)


async def create_variant(
    session: AsyncSession,
    *,
    household: Household | None = None,
    cooperative: Cooperative | None = None,
    available: int = 50,
    price_amount: int | None = None,
    status: ProductStatus = ProductStatus.LISTED,
    is_active: bool = True,
) -> Variant:
    """A variant of a listed product; its seller is a new poor household unless given."""
    n = next(_sequence)
    name, label, price = FRUIT[n % len(FRUIT)]
    if household is None and cooperative is None:
        household = await create_household(session, status=PovertyStatus.POOR)
    owner: Household | Cooperative = household or cooperative  # type: ignore[assignment]
    product = Product(
        seller_kind=SellerKind.HOUSEHOLD.value if household else SellerKind.COOPERATIVE.value,
        household_id=household.id if household else None,
        cooperative_id=cooperative.id if cooperative else None,
        name=name,
        category="fruit",
        province_code=owner.province_code,
        commune_code=owner.commune_code,
        status=status.value,
        min_price_amount=price_amount or price,
    )
    session.add(product)
    await session.flush()
    variant = Variant(
        product_id=product.id,
        label=f"{label} #{n}",
        price_amount=price_amount or price,
        available=available,
        is_active=is_active,
    )
    session.add(variant)
    await session.flush()
    return variant


def identity(user: User) -> AuthenticatedUser:
    return AuthenticatedUser(
        id=user.id,
        role=user.role,
        display_name=user.display_name,
        jurisdiction_level=user.jurisdiction_level,
        jurisdiction_code=user.jurisdiction_code,
        token_id=uuid.uuid4(),
    )


def catalog_order(
    buyer: User,
    *variants: Variant,
    quantity: int = 1,
    payment_method: str | None = "vietqr",
    hold_seconds: int | None = None,
) -> PlaceOrder:
    return PlaceOrder(
        buyer_user_id=buyer.id,
        contact_phone=SHIPPING.phone,
        lines=[LineRequest(variant_id=v.id, quantity=quantity) for v in variants],
        payment_method=payment_method,
        source="catalog",
        buyer_key=f"user:{buyer.id}",
        hold_seconds=hold_seconds,
        shipping=SHIPPING,
    )


def order_body(
    *variants: Variant, quantity: int = 1, payment_method: str = "vietqr"
) -> dict[str, object]:
    return {
        "lines": [{"variant_id": str(v.id), "quantity": quantity} for v in variants],
        "payment_method": payment_method,
        "shipping": dict(SHIPPING_BODY),
    }


async def create_live_item(
    session: AsyncSession,
    variant: Variant,
    *,
    stock_cap: int = 50,
    per_buyer_limit: int = 2,
    live_price_amount: int = 150_000,
    hold_seconds: int = 600,
    status: SessionStatus = SessionStatus.LIVE,
) -> LiveItem:
    """A pinned item of a live session (rows written directly: the host's verification and
    the pinning flow belong to the livestream tests)."""
    host = await create_user(session, role=Role.HOST)
    product = await session.get(Product, variant.product_id)
    assert product is not None
    now = datetime.now(UTC)
    live = LiveSession(
        host_user_id=host.id,
        title="Chợ phiên cam Xã Đoài",
        platform=Platform.FACEBOOK.value,
        status=status.value,
        scheduled_start_at=now - timedelta(minutes=5),
        scheduled_end_at=now + timedelta(hours=2),
        hold_seconds=hold_seconds,
        started_at=now - timedelta(minutes=5),
    )
    session.add(live)
    await session.flush()
    item = LiveItem(
        session_id=live.id,
        variant_id=variant.id,
        product_id=product.id,
        household_id=product.household_id,
        cooperative_id=product.cooperative_id,
        code=f"CAM{next(_sequence)}",
        title=product.name,
        live_price_amount=live_price_amount,
        stock_cap=stock_cap,
        available=stock_cap,
        per_buyer_limit=per_buyer_limit,
        pinned_at=now,
    )
    session.add(item)
    await session.flush()
    return item

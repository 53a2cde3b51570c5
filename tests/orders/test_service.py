"""Placing orders, holding stock and giving it back, through the order service."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.catalog.models import Product, ProductStatus, Variant
from marketplace.livestreams.models import LiveItem
from marketplace.orders.errors import (
    ClaimNotFound,
    IllegalTransition,
    InvalidOrderField,
    LimitReached,
    OrderNotFound,
    PriceChanged,
    SoldOut,
    VariantUnavailable,
)
from marketplace.orders.models import Fulfilment, OrderLine, OrderStatus, PaymentMethod, StockHold
from marketplace.orders.placement import PAYMENT_CODE_ALPHABET, sold_out_key
from marketplace.orders.schemas import ClaimCreate, LineRequest, PlaceOrder, ShippingCreate
from marketplace.orders.service import OrderService
from marketplace.unit_of_work import UnitOfWork
from tests.accounts.factories import create_user
from tests.orders.conftest import MovableClock
from tests.orders.factories import (
    SHIPPING,
    catalog_order,
    create_live_item,
    create_variant,
    identity,
)
from tests.sellers.factories import create_cooperative, create_household


async def available(session: AsyncSession, variant: Variant) -> int:
    value = await session.scalar(select(Variant.available).where(Variant.id == variant.id))
    assert value is not None
    return value


async def holds_of(session: AsyncSession, order_id: object) -> list[StockHold]:
    rows = await session.execute(select(StockHold).where(StockHold.order_id == order_id))
    return list(rows.scalars())


async def test_an_order_from_two_sellers_is_split_into_one_fulfilment_per_seller(
    session: AsyncSession, orders: OrderService
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    household = await create_household(session)
    cooperative = await create_cooperative(session)
    cam = await create_variant(session, household=household, price_amount=180_000)
    buoi = await create_variant(session, household=household, price_amount=95_000)
    thanh_tra = await create_variant(session, cooperative=cooperative, price_amount=250_000)

    order = await orders.place_order(catalog_order(buyer, cam, buoi, thanh_tra, quantity=2))

    details = await orders.details(order)
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert order.total_amount == 2 * (180_000 + 95_000 + 250_000)
    by_seller = {(f.household_id, f.cooperative_id): f for f in details.fulfilments}
    assert set(by_seller) == {(household.id, None), (None, cooperative.id)}
    assert by_seller[(household.id, None)].subtotal_amount == 2 * (180_000 + 95_000)
    assert by_seller[(None, cooperative.id)].subtotal_amount == 2 * 250_000
    assert [(line.variant_id, line.unit_price_amount) for line in details.lines] == [
        (cam.id, 180_000),
        (buoi.id, 95_000),
        (thanh_tra.id, 250_000),
    ]


async def test_accepting_an_order_holds_its_stock_for_fifteen_minutes(
    session: AsyncSession, orders: OrderService, clock: MovableClock
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    variant = await create_variant(session, available=10)

    order = await orders.place_order(catalog_order(buyer, variant, quantity=3))

    assert await available(session, variant) == 7
    [hold] = await holds_of(session, order.id)
    assert (hold.quantity, hold.sold_at, hold.released_at) == (3, None, None)
    assert (hold.expires_at - clock.now).total_seconds() == 15 * 60
    assert order.hold_expires_at == hold.expires_at


async def test_a_bank_transfer_order_gets_a_short_unambiguous_payment_code(
    session: AsyncSession, orders: OrderService
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    variant = await create_variant(session)

    codes = {
        (await orders.place_order(catalog_order(buyer, variant))).payment_code for _ in range(5)
    }

    assert len(codes) == 5
    for code in codes:
        assert code is not None
        assert len(code) <= 12
        assert code.startswith("DH")
        assert set(code[2:]) <= set(PAYMENT_CODE_ALPHABET)
        assert not set(code[2:]) & set("0O1IL")


async def test_the_price_on_the_line_does_not_follow_a_later_catalog_change(
    session: AsyncSession, orders: OrderService
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    variant = await create_variant(session, price_amount=180_000)
    order = await orders.place_order(catalog_order(buyer, variant))

    await session.execute(
        update(Variant).where(Variant.id == variant.id).values(price_amount=200_000)
    )

    line = await session.scalar(select(OrderLine).where(OrderLine.order_id == order.id))
    assert line is not None
    assert line.unit_price_amount == 180_000


async def test_an_order_for_more_than_is_left_is_refused_and_takes_nothing(
    session: AsyncSession, orders: OrderService, uow: UnitOfWork
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    plenty = await create_variant(session, available=10)
    scarce = await create_variant(session, available=1)

    with pytest.raises(SoldOut) as refused:
        await orders.place_order(catalog_order(buyer, plenty, scarce, quantity=2))
    await uow.rollback()

    assert refused.value.extra["field"] in {"lines[0].variant_id", "lines[1].variant_id"}
    assert await available(session, plenty) == 10
    assert await available(session, scarce) == 1


@pytest.mark.parametrize(
    ("status", "is_active"),
    [(ProductStatus.UNLISTED, True), (ProductStatus.DRAFT, True), (ProductStatus.LISTED, False)],
    ids=["unlisted", "draft", "inactive-variant"],
)
async def test_a_variant_not_for_sale_is_refused_naming_the_line(
    session: AsyncSession, orders: OrderService, status: ProductStatus, is_active: bool
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    good = await create_variant(session)
    hidden = await create_variant(session, status=status, is_active=is_active, available=5)

    with pytest.raises(VariantUnavailable) as refused:
        await orders.place_order(catalog_order(buyer, good, hidden))

    assert refused.value.errors[0].field == "lines[1].variant_id"
    assert await available(session, hidden) == 5


async def test_an_unknown_variant_is_refused_naming_the_line(
    session: AsyncSession, orders: OrderService
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    request = PlaceOrder(
        buyer_user_id=buyer.id,
        contact_phone=None,
        lines=[LineRequest(variant_id=buyer.id, quantity=1)],
        payment_method="cod",
        source="catalog",
        buyer_key=f"user:{buyer.id}",
    )

    with pytest.raises(VariantUnavailable) as refused:
        await orders.place_order(request)

    assert refused.value.errors[0].field == "lines[0].variant_id"


@pytest.mark.parametrize(
    ("quantities", "field"),
    [([], "lines"), ([0], "lines[0].quantity"), ([1, 101], "lines[1].quantity")],
    ids=["empty-cart", "zero", "above-cap"],
)
async def test_a_bad_cart_is_refused_before_any_stock_moves(
    session: AsyncSession, orders: OrderService, quantities: list[int], field: str
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    variants = [await create_variant(session, available=200) for _ in quantities]
    request = PlaceOrder(
        buyer_user_id=buyer.id,
        contact_phone=None,
        lines=[
            LineRequest(variant_id=v.id, quantity=q)
            for v, q in zip(variants, quantities, strict=True)
        ],
        payment_method="vietqr",
        source="catalog",
        buyer_key=f"user:{buyer.id}",
    )

    with pytest.raises(InvalidOrderField) as refused:
        await orders.place_order(request)

    assert refused.value.errors[0].field == field
    for variant in variants:
        assert await available(session, variant) == 200


async def test_the_same_variant_on_two_lines_is_one_line_with_both_quantities(
    session: AsyncSession, orders: OrderService
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    variant = await create_variant(session, available=10)
    request = catalog_order(buyer, variant, variant, quantity=2)

    order = await orders.place_order(request)

    details = await orders.details(order)
    assert [line.quantity for line in details.lines] == [4]
    assert await available(session, variant) == 6


async def test_once_sold_out_a_refusal_is_answered_from_the_cache_without_the_row(
    session: AsyncSession, orders: OrderService, redis: Redis
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    variant = await create_variant(session, available=1)
    await orders.place_order(catalog_order(buyer, variant))
    assert await redis.get(sold_out_key(variant.id)) == b"1"
    # Stock appears behind the cache's back: only a refusal that never read the row
    # can still say "sold out".
    await session.execute(update(Variant).where(Variant.id == variant.id).values(available=5))

    with pytest.raises(SoldOut):
        await orders.place_order(catalog_order(buyer, variant))

    assert await available(session, variant) == 5


async def test_stock_coming_back_clears_the_sold_out_mark(
    session: AsyncSession, orders: OrderService, redis: Redis
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    variant = await create_variant(session, available=1)
    first = await orders.place_order(catalog_order(buyer, variant))

    await orders.cancel(first.id, by=identity(buyer))

    assert await redis.get(sold_out_key(variant.id)) is None
    again = await orders.place_order(catalog_order(buyer, variant))
    assert again.status == OrderStatus.PENDING_PAYMENT


async def test_payment_turns_the_hold_into_a_sale_that_expiry_no_longer_touches(
    session: AsyncSession, orders: OrderService, clock: MovableClock
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    variant = await create_variant(session, available=5)
    order = await orders.place_order(catalog_order(buyer, variant, quantity=2))

    await orders.mark_paid(order.id, paid_at=clock.now)
    clock.advance(hours=1)
    released = await orders.release_expired_holds(clock.now)

    assert released == 0
    assert order.status == OrderStatus.PAID
    [hold] = await holds_of(session, order.id)
    assert hold.sold_at is not None
    assert hold.released_at is None
    assert await available(session, variant) == 3


async def test_an_expired_hold_cancels_the_unpaid_order_and_returns_the_stock_once(
    session: AsyncSession, orders: OrderService, clock: MovableClock
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    variant = await create_variant(session, available=5)
    order = await orders.place_order(catalog_order(buyer, variant, quantity=2))
    clock.advance(minutes=14)
    assert await orders.release_expired_holds(clock.now) == 0

    clock.advance(minutes=2)
    first = await orders.release_expired_holds(clock.now)
    second = await orders.release_expired_holds(clock.now)

    assert (first, second) == (1, 0)
    assert order.status == OrderStatus.CANCELLED
    assert order.cancel_reason == "hold_expired"
    assert await available(session, variant) == 5
    [hold] = await holds_of(session, order.id)
    assert hold.released_at == clock.now


async def test_a_cash_on_delivery_order_is_confirmed_at_once_and_never_expires(
    session: AsyncSession, orders: OrderService, clock: MovableClock
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    variant = await create_variant(session, available=5)

    order = await orders.place_order(catalog_order(buyer, variant, payment_method="cod"))
    clock.advance(days=2)
    await orders.release_expired_holds(clock.now)

    assert order.status == OrderStatus.CONFIRMED
    assert order.payment_code is None
    [hold] = await holds_of(session, order.id)
    assert hold.sold_at is not None
    assert hold.released_at is None
    assert await available(session, variant) == 4


async def test_cancelling_a_cash_on_delivery_order_gives_its_goods_back(
    session: AsyncSession, orders: OrderService
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    variant = await create_variant(session, available=5)
    order = await orders.place_order(catalog_order(buyer, variant, payment_method="cod"))

    await orders.cancel(order.id, by=identity(buyer))

    assert order.status == OrderStatus.CANCELLED
    assert await available(session, variant) == 5
    fulfilments = (
        await session.execute(select(Fulfilment).where(Fulfilment.order_id == order.id))
    ).scalars()
    assert [f.status for f in fulfilments] == ["cancelled"]


async def test_a_paid_order_cannot_be_cancelled_and_keeps_its_stock(
    session: AsyncSession, orders: OrderService, clock: MovableClock
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    variant = await create_variant(session, available=5)
    order = await orders.place_order(catalog_order(buyer, variant))
    await orders.mark_paid(order.id, paid_at=clock.now)

    with pytest.raises(IllegalTransition):
        await orders.cancel(order.id, by=identity(buyer))

    assert await available(session, variant) == 4


async def test_another_buyer_cannot_cancel_an_order_and_is_told_it_does_not_exist(
    session: AsyncSession, orders: OrderService
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    stranger = await create_user(session, role=Role.BUYER)
    variant = await create_variant(session)
    order = await orders.place_order(catalog_order(buyer, variant))

    with pytest.raises(OrderNotFound):
        await orders.cancel(order.id, by=identity(stranger))

    assert order.status == OrderStatus.PENDING_PAYMENT


def comment_order(item: LiveItem, *, quantity: int = 1, author: str = "1234567890") -> PlaceOrder:
    return PlaceOrder(
        buyer_user_id=None,
        contact_phone="0912345678",
        lines=[LineRequest(livestream_item_id=item.id, quantity=quantity)],
        payment_method=None,
        source="livestream_comment",
        buyer_key=f"facebook:{author}",
    )


async def item_available(session: AsyncSession, item: LiveItem) -> int:
    value = await session.scalar(select(LiveItem.available).where(LiveItem.id == item.id))
    assert value is not None
    return value


async def test_a_livestream_line_takes_the_live_price_and_the_sessions_hold_time(
    session: AsyncSession, orders: OrderService, clock: MovableClock
) -> None:
    variant = await create_variant(session, price_amount=180_000, available=20)
    item = await create_live_item(session, variant, live_price_amount=150_000, hold_seconds=600)

    order = await orders.place_order(comment_order(item, quantity=2))

    details = await orders.details(order)
    [line] = details.lines
    assert (line.unit_price_amount, line.livestream_item_id) == (150_000, item.id)
    assert order.total_amount == 300_000
    assert order.livestream_session_id == item.session_id
    assert (order.hold_expires_at - clock.now).total_seconds() == 600
    assert await item_available(session, item) == 48
    assert await available(session, variant) == 20


async def test_a_comment_buyer_over_the_per_buyer_limit_is_refused_naming_the_line(
    session: AsyncSession, orders: OrderService
) -> None:
    item = await create_live_item(session, await create_variant(session), per_buyer_limit=2)
    await orders.place_order(comment_order(item, quantity=2))

    with pytest.raises(LimitReached) as refused:
        await orders.place_order(comment_order(item, quantity=1))

    assert refused.value.extra["field"] == "lines[0].livestream_item_id"
    assert await item_available(session, item) == 48


async def test_an_expired_livestream_hold_goes_back_to_the_item_and_the_buyers_count(
    session: AsyncSession, orders: OrderService, clock: MovableClock
) -> None:
    item = await create_live_item(session, await create_variant(session), per_buyer_limit=2)
    await orders.place_order(comment_order(item, quantity=2))
    clock.advance(seconds=601)

    released = await orders.release_expired_holds(clock.now)
    again = await orders.place_order(comment_order(item, quantity=2))

    assert released == 1
    assert again.status == OrderStatus.PENDING_PAYMENT
    assert await item_available(session, item) == 48


async def test_a_sold_out_livestream_item_is_refused_with_sold_out(
    session: AsyncSession, orders: OrderService
) -> None:
    item = await create_live_item(session, await create_variant(session), stock_cap=1)
    await orders.place_order(comment_order(item, author="1"))

    with pytest.raises(SoldOut) as refused:
        await orders.place_order(comment_order(item, author="2"))

    assert refused.value.extra["field"] == "lines[0].livestream_item_id"


async def test_a_comment_order_is_claimed_once_with_its_short_code(
    session: AsyncSession, orders: OrderService, clock: MovableClock
) -> None:
    variant = await create_variant(session, available=5)
    buyer = await create_user(session, role=Role.BUYER)
    order = await orders.place_order(
        PlaceOrder(
            buyer_user_id=None,
            contact_phone="0912 345 678",
            lines=[LineRequest(variant_id=variant.id, quantity=2)],
            payment_method=None,
            source="livestream_comment",
            buyer_key="facebook:1234567890",
        )
    )
    code = orders.claim_code(order.id)
    assert len(code) == 10
    assert (await orders.claim_preview(code.lower())).order.id == order.id
    claim = ClaimCreate(
        payment_method=PaymentMethod.COD,
        shipping=ShippingCreate(name=SHIPPING.name, phone="+84 912 345 678", address="Huế"),
    )

    claimed = await orders.claim(code, buyer=identity(buyer), data=claim)

    assert claimed.buyer_user_id == buyer.id
    assert claimed.status == OrderStatus.CONFIRMED
    assert claimed.shipping_phone == "0912345678"
    with pytest.raises(ClaimNotFound):
        await orders.claim(code, buyer=identity(buyer), data=claim)


async def test_a_price_change_between_reading_and_taking_refuses_rather_than_misprice(
    session: AsyncSession, orders: OrderService, uow: UnitOfWork
) -> None:
    # The two halves of place_order, with the seller's edit landing in between: the race
    # a real flash sale can hit in the milliseconds between them.
    buyer = await create_user(session, role=Role.BUYER)
    variant = await create_variant(session, price_amount=180_000, available=5)
    prepared = await orders.placement.prepare(catalog_order(buyer, variant))
    await session.execute(
        update(Variant).where(Variant.id == variant.id).values(price_amount=150_000)
    )

    with pytest.raises(PriceChanged):
        await orders.placement.take_stock(prepared)
    await uow.rollback()

    assert await available(session, variant) == 5


async def test_a_variant_unlisted_between_reading_and_taking_is_not_sold(
    session: AsyncSession, orders: OrderService, uow: UnitOfWork
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    variant = await create_variant(session, available=5)
    prepared = await orders.placement.prepare(catalog_order(buyer, variant))
    await session.execute(
        update(Product).where(Product.id == variant.product_id).values(status="unlisted")
    )

    with pytest.raises(VariantUnavailable):
        await orders.placement.take_stock(prepared)
    await uow.rollback()

    assert await available(session, variant) == 5

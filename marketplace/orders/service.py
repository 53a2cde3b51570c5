"""Order rules after acceptance: who sees what, payment, cancellation and expiry,
comment orders' claims, and sellers' fulfilments. Placing an order is in placement.py.

A hold lives `hold_seconds` (15 minutes by default, the session's hold time for livestream
items); payment turns it into a sale, expiry or cancellation gives the units back (to the
livestream item, or to the variant) and forgets the variant's sold-out mark.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

import msgspec
import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.db import utcnow
from marketplace.errors import ValidationFailed
from marketplace.livestreams.service import LivestreamService
from marketplace.orders.errors import (
    ClaimNotFound,
    FulfilmentNotFound,
    IllegalTransition,
    InvalidOrderField,
    OrderNotFound,
)
from marketplace.orders.group_commit import GroupCommit
from marketplace.orders.models import (
    AWAITING_PAYMENT,
    Fulfilment,
    FulfilmentStatus,
    Order,
    OrderLine,
    OrderStatus,
    PaymentMethod,
    PaymentOutcome,
)
from marketplace.orders.placement import (
    DEFAULT_HOLD_SECONDS,
    Placement,
    StoredResponse,
    Ticket,
    check_idempotency_key,
    checked_phone,
    claim_code,
    claim_digest,
    new_payment_code,
    request_fingerprint,
)
from marketplace.orders.repository import (
    FulfilmentRepository,
    OrderRepository,
    ReleasedHold,
    StockRepository,
)
from marketplace.orders.schemas import (
    ClaimCreate,
    OrderCreate,
    OrderDetails,
    PlaceOrder,
)
from marketplace.resources import Clock
from marketplace.sellers.models import ConsentScope
from marketplace.sellers.service import SellersService
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

SWEEP_BATCH = 200
BUYER_CANCELLED = "buyer_cancelled"
HOLD_EXPIRED = "hold_expired"


@dataclass(frozen=True, slots=True)
class PaymentApplied:
    order: Order
    outcome: PaymentOutcome
    became_paid: bool


class OrderService:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        redis: Redis,
        clock: Clock = utcnow,
        *,
        claims: async_sessionmaker[AsyncSession] | None = None,
        sellers: SellersService | None = None,
        livestreams: LivestreamService | None = None,
        group: GroupCommit | None = None,
    ) -> None:
        self._uow = uow
        self._group = group
        self._settings = settings
        self._redis = redis
        self._clock = clock
        self._claims = claims
        self._given_sellers = sellers
        self._live = livestreams

    # Made on first use: a flash-sale order only hands a ticket to the group commit, and
    # building these (each with the session it opens) was a tenth of its CPU.

    @cached_property
    def _orders(self) -> OrderRepository:
        return OrderRepository(self._uow.session)

    @cached_property
    def _fulfilments(self) -> FulfilmentRepository:
        return FulfilmentRepository(self._uow.session)

    @cached_property
    def _stock(self) -> StockRepository:
        return StockRepository(self._uow.session)

    @cached_property
    def _sellers(self) -> SellersService:
        return self._given_sellers or SellersService(self._uow, self._settings, self._clock)

    @cached_property
    def _placement(self) -> Placement:
        return Placement(
            self._uow,
            self._settings,
            self._redis,
            self._clock,
            claims=self._claims,
            livestreams=self._livestreams,
        )

    # ---- Placing (orders/placement.py) ---------------------------------------------------

    @property
    def placement(self) -> Placement:
        return self._placement

    async def place_order(self, request: PlaceOrder) -> Order:
        """Accept an order: stock held, prices fixed on the lines, one fulfilment per
        seller. Raises before writing anything the caller's rollback would not undo."""
        return await self._placement.place_order(request)

    async def place_order_once(
        self,
        *,
        buyer: AuthenticatedUser,
        idempotency_key: str | None,
        body: OrderCreate,
        instance: str,
    ) -> StoredResponse:
        """POST /api/orders: the first answer for a key is the answer for 24 hours. A
        one-line order of a pinned item (a flash sale's) waits for a group commit."""
        if self._group is not None and Ticket.batchable(body):
            ticket = Ticket(
                buyer=buyer,
                key=check_idempotency_key(idempotency_key),
                fingerprint=request_fingerprint("POST", "/api/orders", msgspec.json.encode(body)),
                body=body,
                instance=instance,
            )
            return await self._group.submit(ticket)
        return await self._placement.place_order_once(
            buyer=buyer, idempotency_key=idempotency_key, body=body, instance=instance
        )

    async def place_batch(self, tickets: Sequence[Ticket]) -> list[StoredResponse | None]:
        """Many one-line orders of pinned items in this unit of work (group_commit.py)."""
        return await self._placement.place_batch(tickets)

    async def purge_idempotency_records(self, now: datetime) -> int:
        return await self._placement.purge_idempotency_records(now, SWEEP_BATCH)

    def _livestreams(self) -> LivestreamService:
        if self._live is None:
            self._live = LivestreamService(self._uow, self._redis, self._clock)
        return self._live

    # ---- Reading ------------------------------------------------------------------------

    async def get_order(self, order_id: uuid.UUID) -> Order:
        order = await self._orders.get(order_id)
        if order is None:
            raise OrderNotFound()
        return order

    async def details(self, order: Order) -> OrderDetails:
        return await self._orders.details(order)

    async def order_for(self, user: AuthenticatedUser, order_id: uuid.UUID) -> OrderDetails:
        """Buyers see their own orders, admins every order; anyone else's is not found."""
        order = await self._orders.get(order_id)
        if order is None or not self._may_see(user, order):
            raise OrderNotFound()
        return await self._orders.details(order)

    @staticmethod
    def _may_see(user: AuthenticatedUser, order: Order) -> bool:
        return user.role is Role.ADMIN or order.buyer_user_id == user.id

    async def list_orders(
        self, user: AuthenticatedUser, *, limit: int, offset: int
    ) -> Sequence[Order]:
        everyone = user.role is Role.ADMIN
        return await self._orders.page(
            buyer_user_id=None if everyone else user.id, limit=limit, offset=offset
        )

    # ---- Payment ------------------------------------------------------------------------

    async def lock_order(self, order_id: uuid.UUID) -> Order:
        order = await self._orders.get_for_update(order_id)
        if order is None:
            raise OrderNotFound()
        return order

    async def record_payment(
        self, order_id: uuid.UUID, *, amount: int, paid_at: datetime
    ) -> PaymentApplied:
        """Money received for the order (exact, partial or over); holds become sales once
        the total is covered."""
        order = await self.lock_order(order_id)
        outcome = order.record_payment(amount, paid_at)
        became_paid = order.status == OrderStatus.PAID.value
        if became_paid:
            await self._orders.sell_holds(order.id, paid_at)
        await self._orders.flush()
        return PaymentApplied(order=order, outcome=outcome, became_paid=became_paid)

    async def mark_paid(self, order_id: uuid.UUID, *, paid_at: datetime) -> Order:
        """Paid in full (a card payment): the holds become sales."""
        order = await self.lock_order(order_id)
        if OrderStatus(order.status) not in AWAITING_PAYMENT:
            raise IllegalTransition(order.status, "mark paid")
        order.record_payment(order.amount_due, paid_at)
        await self._orders.sell_holds(order.id, paid_at)
        await self._orders.flush()
        return order

    async def record_cod_remittance(
        self, order_id: uuid.UUID, *, amount: int, remitted_at: datetime
    ) -> Order:
        order = await self.lock_order(order_id)
        order.record_cod_remittance(amount, remitted_at)
        await self._orders.flush()
        return order

    async def record_refund(self, order_id: uuid.UUID, *, amount: int, at: datetime) -> Order:
        order = await self.lock_order(order_id)
        order.record_refund(amount, at)
        await self._orders.flush()
        return order

    async def lines_of(self, order_id: uuid.UUID) -> OrderDetails:
        return await self._orders.details(await self.get_order(order_id))

    async def assign_payment_code(self, order: Order) -> str:
        if order.payment_code is None:
            order.payment_code = new_payment_code()
            await self._orders.flush()
        return order.payment_code

    async def orders_by_payment_codes(self, codes: Sequence[str]) -> Sequence[Order]:
        return await self._orders.by_payment_codes(codes)

    # ---- Cancelling and expiry -----------------------------------------------------------

    async def cancel(
        self, order_id: uuid.UUID, *, by: AuthenticatedUser | None, reason: str = BUYER_CANCELLED
    ) -> Order:
        """The buyer (or an admin) calls off an unpaid or cash-on-delivery order before it
        ships; the stock goes back at once."""
        order = await self._orders.get_for_update(order_id)
        if order is None or (by is not None and not self._may_see(by, order)):
            raise OrderNotFound()
        now = self._clock()
        order.cancel(now, reason)
        for fulfilment in await self._fulfilments.of_order(order.id):
            fulfilment.cancel()
        await self._give_back(await self._orders.release_holds([order.id], now))
        await self._orders.flush()
        return order

    async def release_expired_holds(self, now: datetime) -> int:
        """Cancel unpaid orders whose hold ran out and give their stock back; returns how
        many holds were released. Safe to run twice at once: the orders are taken with
        SKIP LOCKED and a hold already released is never released again."""
        orders = await self._orders.expired_for_update(now, SWEEP_BATCH)
        if not orders:
            return 0
        for order in orders:
            order.cancel(now, HOLD_EXPIRED)
        released = await self._orders.release_holds([order.id for order in orders], now)
        await self._give_back(released)
        await self._orders.flush()
        log.info("expired_holds_released", orders=len(orders), holds=len(released))
        return len(released)

    async def _give_back(self, released: Sequence[ReleasedHold]) -> None:
        """Livestream units go back to their item (which gives them to the variant once
        the item is unpinned), catalog units to the variant; items first, as placement."""
        live = sorted(
            (hold for hold in released if hold.livestream_item_id is not None),
            key=lambda hold: (str(hold.livestream_item_id), hold.buyer_key),
        )
        for hold in live:
            assert hold.livestream_item_id is not None  # noqa: S101 - filtered above
            await self._livestreams().release_item(
                item_id=hold.livestream_item_id, buyer_key=hold.buyer_key, quantity=hold.quantity
            )
        quantities: dict[uuid.UUID, int] = {}
        for hold in released:
            if hold.livestream_item_id is None:
                quantities[hold.variant_id] = quantities.get(hold.variant_id, 0) + hold.quantity
        await self._stock.give_back(quantities)
        await self._placement.forget_sold_out(sorted(quantities, key=str))

    # ---- Claiming a comment order --------------------------------------------------------

    def claim_code(self, order_id: uuid.UUID) -> str:
        """The short code a comment buyer claims the order with (sent again on request)."""
        return claim_code(self._settings.security.secret_key, order_id)

    async def claim_preview(self, code: str) -> OrderDetails:
        order = await self._orders.by_claim_hash(claim_digest(code))
        if order is None or order.claimed_at is not None:
            raise ClaimNotFound()
        return await self._orders.details(order)

    async def claim(self, code: str, *, buyer: AuthenticatedUser, data: ClaimCreate) -> Order:
        """The comment buyer confirms who they are, where to ship and how to pay. Cash on
        delivery confirms the order at once; a bank transfer gets its payment code; the
        hold restarts so the buyer has the full time to pay."""
        order = await self._orders.by_claim_hash(claim_digest(code), for_update=True)
        if order is None or order.claimed_at is not None:
            raise ClaimNotFound()
        now = self._clock()
        phone = checked_phone(data.shipping.phone, "shipping.phone")
        assert phone is not None  # noqa: S101 - the schema requires a phone
        order.claim(
            buyer_user_id=buyer.id,
            name=data.shipping.name.strip(),
            phone=phone,
            address=data.shipping.address.strip(),
            payment_method=data.payment_method,
            at=now,
        )
        if data.payment_method is PaymentMethod.COD:
            order.confirm_cash_on_delivery(now)
            await self._orders.sell_holds(order.id, now)
        else:
            if data.payment_method is PaymentMethod.VIETQR:
                order.payment_code = order.payment_code or new_payment_code()
            hold = timedelta(seconds=DEFAULT_HOLD_SECONDS)
            order.hold_expires_at = max(order.hold_expires_at, now + hold)
            await self._orders.extend_holds(order.id, order.hold_expires_at)
        await self._orders.flush()
        return order

    # ---- Fulfilment ---------------------------------------------------------------------

    async def seller_fulfilments(
        self,
        user: AuthenticatedUser,
        *,
        household_id: uuid.UUID | None,
        cooperative_id: uuid.UUID | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[tuple[Fulfilment, Order]], Sequence[OrderLine]]:
        """A seller's fulfilments: a farmer's own household by default, or the household
        or cooperative named, which the caller must manage; admins may list everything."""
        households: list[uuid.UUID] = []
        cooperatives: list[uuid.UUID] = []
        everyone = False
        if household_id is not None:
            await self._sellers.require_household_manager(
                user, household_id, ConsentScope.MANAGE_ORDERS
            )
            households.append(household_id)
        elif cooperative_id is not None:
            await self._sellers.require_cooperative_manager(user, cooperative_id)
            cooperatives.append(cooperative_id)
        elif user.role is Role.ADMIN:
            everyone = True
        elif user.role is Role.FARMER:
            own = await self._sellers.household_of_farmer(user.id)
            if own is not None:
                households.append(own.id)
        else:
            # Not a refusal: the role may list fulfilments, it has only not said for whom.
            raise ValidationFailed.for_field(
                "household_id", "name the household_id or cooperative_id you act for"
            )
        rows = await self._fulfilments.page_for_sellers(
            household_ids=households,
            cooperative_ids=cooperatives,
            everyone=everyone,
            limit=limit,
            offset=offset,
        )
        lines = await self._fulfilments.lines_of([fulfilment.id for fulfilment, _ in rows])
        return rows, lines

    async def _fulfilment_for_seller(
        self, user: AuthenticatedUser, fulfilment_id: uuid.UUID
    ) -> tuple[Order, Fulfilment]:
        found = await self._fulfilments.get(fulfilment_id)
        if found is None:
            raise FulfilmentNotFound()
        if not await self._manages(user, found):
            raise FulfilmentNotFound()
        # Lock order: the order row first, then its fulfilment.
        order = await self.lock_order(found.order_id)
        fulfilment = await self._fulfilments.get_for_update(fulfilment_id)
        assert fulfilment is not None  # noqa: S101 - fulfilments are deleted only with orders
        return order, fulfilment

    async def _manages(self, user: AuthenticatedUser, fulfilment: Fulfilment) -> bool:
        if user.role is Role.ADMIN:
            return True
        if fulfilment.household_id is not None:
            return await self._sellers.can_manage_household(user, fulfilment.household_id)
        if fulfilment.cooperative_id is not None:
            return await self._sellers.can_manage_cooperative(user, fulfilment.cooperative_id)
        return False

    async def ship(
        self,
        user: AuthenticatedUser,
        fulfilment_id: uuid.UUID,
        *,
        carrier: str,
        tracking_number: str,
    ) -> tuple[Order, Fulfilment]:
        order, fulfilment = await self._fulfilment_for_seller(user, fulfilment_id)
        status = OrderStatus(order.status)
        if status not in {OrderStatus.PAID, OrderStatus.CONFIRMED, OrderStatus.FULFILLING}:
            raise InvalidOrderField("fulfilment_id", f"the order is {status.value}, not ready")
        now = self._clock()
        fulfilment.ship(carrier=carrier.strip(), tracking_number=tracking_number.strip(), at=now)
        if status is not OrderStatus.FULFILLING:
            order.start_fulfilling()
        siblings = await self._fulfilments.of_order(order.id)
        if all(f.status != FulfilmentStatus.PENDING.value for f in siblings):
            order.mark_shipped(now)
        await self._orders.flush()
        return order, fulfilment

    async def deliver(
        self, user: AuthenticatedUser, fulfilment_id: uuid.UUID
    ) -> tuple[Order, Fulfilment]:
        order, fulfilment = await self._fulfilment_for_seller(user, fulfilment_id)
        now = self._clock()
        fulfilment.deliver(now)
        siblings = await self._fulfilments.of_order(order.id)
        if order.status == OrderStatus.SHIPPED.value and all(
            f.status in {FulfilmentStatus.DELIVERED.value, FulfilmentStatus.CANCELLED.value}
            for f in siblings
        ):
            order.mark_delivered(now)
        await self._orders.flush()
        return order, fulfilment

    async def confirm_receipt(self, user: AuthenticatedUser, order_id: uuid.UUID) -> Order:
        """The buyer says the goods arrived: a prepaid delivered order is complete."""
        order = await self._orders.get_for_update(order_id)
        if order is None or not self._may_see(user, order):
            raise OrderNotFound()
        order.complete(self._clock())
        await self._orders.flush()
        return order

    async def fulfilment_lines(self, fulfilment_ids: Sequence[uuid.UUID]) -> Sequence[OrderLine]:
        return await self._fulfilments.lines_of(fulfilment_ids)

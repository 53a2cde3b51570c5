"""Order rules: what may be ordered, how stock is held and given back, who sees what.

Never oversell: stock is taken by one conditional UPDATE per variant (`available >= n`),
variants in ascending id order so two multi-line orders cannot deadlock; the database's
CHECK (available >= 0) backs it. A hold lives `hold_seconds` (15 minutes by default, the
session's hold time for livestream items); payment turns it into a sale, expiry or
cancellation gives the units back. A variant seen sold out is remembered in Redis for a
short while, so the flood of refusals after a flash sale never queues on the row lock;
giving stock back forgets it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.db import utcnow
from marketplace.errors import MarketplaceError, PermissionDenied, problem
from marketplace.livestreams.service import LivestreamService
from marketplace.orders.errors import (
    ClaimNotFound,
    FulfilmentNotFound,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
    IllegalTransition,
    InvalidOrderField,
    ItemUnavailable,
    LimitReached,
    OrderNotFound,
    PriceChanged,
    RequestInProgress,
    SoldOut,
    VariantUnavailable,
)
from marketplace.orders.models import (
    AWAITING_PAYMENT,
    Fulfilment,
    FulfilmentStatus,
    Order,
    OrderLine,
    OrderSource,
    OrderStatus,
    PaymentMethod,
    PaymentOutcome,
    StockHold,
)
from marketplace.orders.repository import (
    FulfilmentRepository,
    IdempotencyRepository,
    OrderRepository,
    ReleasedHold,
    StockRepository,
    VariantFacts,
    VariantStock,
)
from marketplace.orders.schemas import (
    MAX_LINE_QUANTITY,
    MAX_LINES,
    ClaimCreate,
    LineRequest,
    OrderCreate,
    OrderDetails,
    PlaceOrder,
    ShippingDetails,
    order_read,
)
from marketplace.resources import Clock
from marketplace.sellers.models import ConsentScope
from marketplace.sellers.pii import InvalidPhone, normalise_phone
from marketplace.sellers.service import SellersService
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

DEFAULT_HOLD_SECONDS = 15 * 60
MAX_HOLD_SECONDS = 24 * 3600
SOLD_OUT_CACHE_SECONDS = 30
"""How long a sold-out variant is refused from Redis alone. Giving stock back deletes the
mark at once; the expiry only bounds a mark written by a refusal that raced a release."""
SOLD_OUT_PREFIX = "orders:sold_out:"
SWEEP_BATCH = 200
IDEMPOTENCY_TTL = timedelta(hours=24)
IDEMPOTENCY_LEASE = timedelta(seconds=60)
"""A claim older than this belongs to a request that died; no request runs this long."""
MAX_IDEMPOTENCY_KEY_LENGTH = 255

PAYMENT_CODE_PREFIX = "DH"
"""Đơn hàng: the code reads as an order reference in the buyer's bank app."""
PAYMENT_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
"""No 0/O, 1/I/L: people copy these codes by hand from a screen into a bank app."""
PAYMENT_CODE_RANDOM_LENGTH = 8
CLAIM_CODE_LENGTH = 10

BUYER_CANCELLED = "buyer_cancelled"
HOLD_EXPIRED = "hold_expired"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The answer to an idempotent request: made now, or replayed from the first time."""

    status_code: int
    body: bytes
    replayed: bool

    @property
    def media_type(self) -> str:
        return "application/problem+json" if self.status_code >= 400 else "application/json"


@dataclass(frozen=True, slots=True)
class PaymentApplied:
    order: Order
    outcome: PaymentOutcome
    became_paid: bool


@dataclass(slots=True)
class _Line:
    position: int
    field: str
    request: LineRequest
    facts: VariantFacts | None = None
    unit_price_amount: int = 0
    hold_seconds: int | None = None

    @property
    def variant_id(self) -> uuid.UUID:
        assert self.request.variant_id is not None  # noqa: S101 - asked of catalog lines only
        return self.request.variant_id


@dataclass(frozen=True, slots=True)
class _Prepared:
    details: OrderDetails
    catalog_lines: list[_Line]
    """In the lock order (ascending variant id)."""


class _ClaimLost(Exception):
    """The idempotency claim was taken over while this request ran."""


def sold_out_key(variant_id: uuid.UUID) -> str:
    return f"{SOLD_OUT_PREFIX}{variant_id}"


def new_payment_code() -> str:
    return PAYMENT_CODE_PREFIX + "".join(
        secrets.choice(PAYMENT_CODE_ALPHABET) for _ in range(PAYMENT_CODE_RANDOM_LENGTH)
    )


def claim_digest(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def check_idempotency_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise IdempotencyKeyMissing("required: a unique value per order you mean to place")
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise IdempotencyKeyMissing(f"at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    if not (key.isascii() and key.isprintable()):
        raise IdempotencyKeyMissing("printable ASCII only")
    return key


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
    ) -> None:
        self._uow = uow
        self._settings = settings
        self._redis = redis
        self._clock = clock
        self._claims = claims
        self._orders = OrderRepository(uow.session)
        self._fulfilments = FulfilmentRepository(uow.session)
        self._stock = StockRepository(uow.session)
        self._sellers = sellers or SellersService(uow, settings, clock)
        self._live = livestreams

    # ---- Placing ------------------------------------------------------------------------

    async def place_order(self, request: PlaceOrder) -> Order:
        """Accept an order: stock held, prices fixed on the lines, one fulfilment per
        seller. Raises before writing anything the caller's rollback would not undo."""
        prepared = await self._prepare(request)
        await self._take_stock(prepared)
        return prepared.details.order

    async def _prepare(self, request: PlaceOrder) -> _Prepared:
        """Everything but the catalog stock: checks, prices (read without a lock), the
        livestream reservations, and the order's rows inserted."""
        now = self._clock()
        lines = self._checked_lines(request)
        method = self._checked_method(request.payment_method)
        source = self._checked_source(request.source)
        contact_phone = self._checked_phone(request.contact_phone, "contact_phone")
        if not request.buyer_key or len(request.buyer_key) > 120:
            raise InvalidOrderField("buyer_key", "1 to 120 characters")
        if request.hold_seconds is not None and not 1 <= request.hold_seconds <= MAX_HOLD_SECONDS:
            raise InvalidOrderField("hold_seconds", f"between 1 and {MAX_HOLD_SECONDS}")
        if request.buyer_user_id is None and source is OrderSource.CATALOG:
            raise InvalidOrderField("buyer_user_id", "catalog orders need a buyer account")

        catalog_lines = [line for line in lines if line.request.variant_id is not None]
        live_lines = [line for line in lines if line.request.livestream_item_id is not None]
        await self._refuse_known_sold_out(catalog_lines)
        if catalog_lines:
            stock = await self._stock.read([line.variant_id for line in catalog_lines])
            for line in catalog_lines:
                state = stock.get(line.variant_id)
                await self._check_stock(line, state)
                assert state is not None  # noqa: S101 - _check_stock refused a missing one
                line.facts = state.facts
                line.unit_price_amount = state.price_amount

        # Lock order: livestream items (their own counters), then variants at the very end
        # (`_take_stock`), each in ascending id order; releases follow the same order.
        session_id: uuid.UUID | None = None
        for line in sorted(live_lines, key=lambda item: str(item.request.livestream_item_id)):
            session_id = await self._reserve_live(line, request.buyer_key, now) or session_id

        details = self._build(
            session_id=session_id,
            request=request,
            lines=lines,
            method=method,
            source=source,
            contact_phone=contact_phone,
            now=now,
        )
        holds = self._holds_for(details, request.buyer_key, now)
        await self._orders.add(details.order, details.fulfilments, details.lines, holds)
        return _Prepared(
            details=details,
            catalog_lines=sorted(catalog_lines, key=lambda item: str(item.variant_id)),
        )

    async def _take_stock(self, prepared: _Prepared) -> None:
        """The catalog units, last, in ascending variant id order (the lock order): each
        take holds its row's lock only until the commit that follows."""
        emptied: list[uuid.UUID] = []
        for line in prepared.catalog_lines:
            left = await self._stock.take(
                line.variant_id, line.request.quantity, line.unit_price_amount
            )
            if left is None:
                state = (await self._stock.read([line.variant_id])).get(line.variant_id)
                await self._check_stock(line, state)
                assert state is not None  # noqa: S101 - _check_stock refused a missing one
                if state.price_amount != line.unit_price_amount:
                    raise PriceChanged(
                        f"{line.field}.variant_id: the price changed while ordering; order again"
                    )
                # Gone at the take, back by the time we looked: this order still missed it.
                raise SoldOut(f"{line.field}.variant_id", state.available)
            if left == 0:
                emptied.append(line.variant_id)
        # Written before the commit: if it failed after all, the mark only sends buyers
        # to the database again once it expires or stock returns.
        await self._mark_sold_out(emptied)

    async def _check_stock(self, line: _Line, state: VariantStock | None) -> None:
        field = f"{line.field}.variant_id"
        if state is None:
            raise VariantUnavailable(field, "no such variant")
        if not state.for_sale:
            raise VariantUnavailable(field, "not for sale")
        if state.available < line.request.quantity:
            if state.available == 0:
                await self._mark_sold_out([line.variant_id])
            raise SoldOut(field, state.available)

    def _checked_lines(self, request: PlaceOrder) -> list[_Line]:
        prefix = request.field_prefix
        if not request.lines:
            raise InvalidOrderField(prefix, "the cart is empty: add at least one line")
        if len(request.lines) > MAX_LINES:
            raise InvalidOrderField(prefix, f"at most {MAX_LINES} lines per order")
        lines: list[_Line] = []
        seen: dict[uuid.UUID, _Line] = {}
        for position, item in enumerate(request.lines):
            field = f"{prefix}[{position}]"
            if (item.variant_id is None) == (item.livestream_item_id is None):
                raise InvalidOrderField(
                    field, "give exactly one of variant_id and livestream_item_id"
                )
            if isinstance(item.quantity, bool) or not 1 <= item.quantity <= MAX_LINE_QUANTITY:
                raise InvalidOrderField(f"{field}.quantity", f"between 1 and {MAX_LINE_QUANTITY}")
            key = item.variant_id or item.livestream_item_id
            assert key is not None  # noqa: S101 - one of the two was checked above
            if key in seen:
                # The same item twice is one line with both quantities.
                first = seen[key]
                merged = first.request.quantity + item.quantity
                if merged > MAX_LINE_QUANTITY:
                    raise InvalidOrderField(
                        f"{field}.quantity",
                        f"at most {MAX_LINE_QUANTITY} of one item per order, lines together",
                    )
                first.request = LineRequest(
                    variant_id=item.variant_id,
                    livestream_item_id=item.livestream_item_id,
                    quantity=merged,
                )
                continue
            line = _Line(position=len(lines), field=field, request=item)
            seen[key] = line
            lines.append(line)
        return lines

    @staticmethod
    def _checked_method(method: str | None) -> PaymentMethod | None:
        if method is None:
            return None
        try:
            return PaymentMethod(method)
        except ValueError:
            raise InvalidOrderField(
                "payment_method", "one of: " + ", ".join(m.value for m in PaymentMethod)
            ) from None

    @staticmethod
    def _checked_source(source: str) -> OrderSource:
        try:
            return OrderSource(source)
        except ValueError:
            raise InvalidOrderField(
                "source", "one of: " + ", ".join(s.value for s in OrderSource)
            ) from None

    @staticmethod
    def _checked_phone(phone: str | None, field: str) -> str | None:
        if phone is None:
            return None
        try:
            return normalise_phone(phone)
        except InvalidPhone as exc:
            raise InvalidOrderField(field, str(exc)) from None

    async def _refuse_known_sold_out(self, lines: Sequence[_Line]) -> None:
        if not lines:
            return
        keys = [sold_out_key(line.request.variant_id) for line in lines if line.request.variant_id]
        try:
            marks = await self._redis.mget(keys)
        except RedisError:
            # Without the cache every refusal goes to the database: slower, still correct.
            log.warning("sold_out_cache_unavailable")
            return
        for line, mark in zip(lines, marks, strict=True):
            if mark is not None:
                raise SoldOut(f"{line.field}.variant_id")

    def _livestreams(self) -> LivestreamService:
        if self._live is None:
            self._live = LivestreamService(self._uow, self._redis, self._clock)
        return self._live

    async def _reserve_live(self, line: _Line, buyer_key: str, now: datetime) -> uuid.UUID:
        """Take a pinned item through the livestream domain (its counter, its per-buyer
        limit, its live or flash price at `now`); refusals name the order line."""
        item_id = line.request.livestream_item_id
        assert item_id is not None  # noqa: S101 - only livestream lines come here
        field = f"{line.field}.livestream_item_id"
        try:
            reserved = await self._livestreams().reserve_item(
                item_id=item_id, buyer_key=buyer_key, quantity=line.request.quantity, now=now
            )
        except MarketplaceError as exc:
            if exc.code == SoldOut.code:
                raise SoldOut(field, exc.extra.get("available")) from None
            if exc.code == LimitReached.code:
                raise LimitReached(field, exc.detail) from None
            if exc.code in {"item_not_found", "item_unpinned"}:
                raise ItemUnavailable(field, exc.detail) from None
            raise
        state = (await self._stock.read([reserved.variant_id])).get(reserved.variant_id)
        if state is None:
            raise ItemUnavailable(field, "the item's variant no longer exists")
        line.facts = state.facts
        line.unit_price_amount = reserved.unit_price_amount
        line.hold_seconds = reserved.hold_seconds
        return reserved.session_id

    async def _mark_sold_out(self, variant_ids: Sequence[uuid.UUID]) -> None:
        if not variant_ids:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for variant_id in variant_ids:
                    pipe.set(sold_out_key(variant_id), b"1", ex=SOLD_OUT_CACHE_SECONDS)
                await pipe.execute()
        except RedisError:
            log.warning("sold_out_cache_unavailable")

    async def _forget_sold_out(self, variant_ids: Sequence[uuid.UUID]) -> None:
        if not variant_ids:
            return
        try:
            await self._redis.delete(*(sold_out_key(v) for v in variant_ids))
        except RedisError:
            # The mark expires on its own within SOLD_OUT_CACHE_SECONDS.
            log.warning("sold_out_cache_unavailable")

    def _build(
        self,
        *,
        session_id: uuid.UUID | None,
        request: PlaceOrder,
        lines: Sequence[_Line],
        method: PaymentMethod | None,
        source: OrderSource,
        contact_phone: str | None,
        now: datetime,
    ) -> OrderDetails:
        hold_seconds = min(
            [line.hold_seconds for line in lines if line.hold_seconds]
            or [request.hold_seconds or DEFAULT_HOLD_SECONDS]
        )
        order_id = uuid.uuid4()
        fulfilments: dict[tuple[str, uuid.UUID | None, uuid.UUID | None], Fulfilment] = {}
        order_lines: list[OrderLine] = []
        for line in lines:
            facts = line.facts
            assert facts is not None  # noqa: S101 - every line was priced above
            seller = (facts.seller_kind, facts.household_id, facts.cooperative_id)
            fulfilment = fulfilments.get(seller)
            if fulfilment is None:
                fulfilment = Fulfilment(
                    id=uuid.uuid4(),
                    order_id=order_id,
                    seller_kind=facts.seller_kind,
                    household_id=facts.household_id,
                    cooperative_id=facts.cooperative_id,
                    status=FulfilmentStatus.PENDING.value,
                    subtotal_amount=0,
                    created_at=now + timedelta(microseconds=len(fulfilments)),
                    updated_at=now,
                )
                fulfilments[seller] = fulfilment
            line_amount = line.unit_price_amount * line.request.quantity
            fulfilment.subtotal_amount += line_amount
            order_lines.append(
                OrderLine(
                    id=uuid.uuid4(),
                    order_id=order_id,
                    fulfilment_id=fulfilment.id,
                    position=line.position,
                    variant_id=facts.variant_id,
                    product_id=facts.product_id,
                    lot_id=facts.lot_id,
                    livestream_item_id=line.request.livestream_item_id,
                    product_name=facts.product_name,
                    variant_label=facts.label,
                    category=facts.category,
                    quantity=line.request.quantity,
                    unit_price_amount=line.unit_price_amount,
                    line_amount=line_amount,
                    created_at=now,
                    updated_at=now,
                )
            )
        shipping = request.shipping
        order = Order(
            id=order_id,
            buyer_user_id=request.buyer_user_id,
            buyer_key=request.buyer_key,
            contact_phone=contact_phone,
            source=source.value,
            status=OrderStatus.PENDING_PAYMENT.value,
            payment_method=method.value if method else None,
            payment_code=new_payment_code() if method is PaymentMethod.VIETQR else None,
            total_amount=sum(line.line_amount for line in order_lines),
            paid_amount=0,
            refunded_amount=0,
            excess_amount=0,
            hold_expires_at=now + timedelta(seconds=hold_seconds),
            livestream_session_id=session_id,
            claim_token_hash=(
                claim_digest(self.claim_code(order_id)) if request.buyer_user_id is None else None
            ),
            shipping_name=shipping.name if shipping else None,
            shipping_phone=shipping.phone if shipping else None,
            shipping_address=shipping.address if shipping else None,
            created_at=now,
            updated_at=now,
        )
        if method is PaymentMethod.COD:
            order.confirm_cash_on_delivery(now)
        return OrderDetails(order=order, fulfilments=list(fulfilments.values()), lines=order_lines)

    @staticmethod
    def _holds_for(details: OrderDetails, buyer_key: str, now: datetime) -> list[StockHold]:
        order = details.order
        # Cash on delivery commits the goods at once: its holds are sales from the start.
        sold_at = now if order.status == OrderStatus.CONFIRMED.value else None
        return [
            StockHold(
                id=uuid.uuid4(),
                order_id=order.id,
                order_line_id=order_line.id,
                variant_id=order_line.variant_id,
                livestream_item_id=order_line.livestream_item_id,
                buyer_key=buyer_key,
                quantity=order_line.quantity,
                expires_at=order.hold_expires_at,
                sold_at=sold_at,
                created_at=now,
                updated_at=now,
            )
            for order_line in details.lines
        ]

    # ---- Placing over HTTP, exactly once per Idempotency-Key -----------------------------

    async def place_order_once(
        self,
        *,
        buyer: AuthenticatedUser,
        idempotency_key: str | None,
        body: OrderCreate,
        instance: str,
    ) -> StoredResponse:
        """The first answer for a key is the answer for 24 hours: a retry after a lost
        response gets the order it already made, never a second one. Refusals (sold out,
        unknown variant) are answers too and replay the same way."""
        key = check_idempotency_key(idempotency_key)
        fingerprint = request_fingerprint("POST", "/api/orders", msgspec.json.encode(body))
        scope = f"user:{buyer.id}"
        claim_id = uuid.uuid4()
        replay = await self._claim(scope, key, fingerprint, claim_id)
        if replay is not None:
            return replay
        records = IdempotencyRepository(self._uow.session)
        try:
            prepared = await self._prepare(self._from_body(buyer, body))
            payload = msgspec.json.encode(order_read(prepared.details))
            # Recorded before the stock is taken, so the hot row's lock is held only for
            # the take and the commit; a refusal at the take rolls this back with it.
            if not await records.complete(
                claim_id=claim_id,
                status_code=201,
                body=payload,
                order_id=prepared.details.order.id,
                now=self._clock(),
            ):
                raise _ClaimLost()
            await self._take_stock(prepared)
        except _ClaimLost:
            # Our lease ran out and another request took the key over: its answer wins,
            # so this work must not commit.
            raise RequestInProgress() from None
        except MarketplaceError as exc:
            await self._uow.rollback()
            payload = _problem_body(exc, instance)
            if not await records.complete(
                claim_id=claim_id,
                status_code=exc.status_code,
                body=payload,
                order_id=None,
                now=self._clock(),
            ):
                raise RequestInProgress() from None
            return StoredResponse(status_code=exc.status_code, body=payload, replayed=False)
        except BaseException:
            await self._uow.rollback()
            await self._abandon(claim_id)
            raise
        return StoredResponse(status_code=201, body=payload, replayed=False)

    def _from_body(self, buyer: AuthenticatedUser, body: OrderCreate) -> PlaceOrder:
        phone = self._checked_phone(body.shipping.phone, "shipping.phone")
        assert phone is not None  # noqa: S101 - the schema requires a phone
        return PlaceOrder(
            buyer_user_id=buyer.id,
            contact_phone=phone,
            lines=[
                LineRequest(
                    variant_id=line.variant_id,
                    livestream_item_id=line.livestream_item_id,
                    quantity=line.quantity,
                )
                for line in body.lines
            ],
            payment_method=body.payment_method.value,
            source=(
                OrderSource.LIVESTREAM.value
                if any(line.livestream_item_id for line in body.lines)
                else OrderSource.CATALOG.value
            ),
            buyer_key=f"user:{buyer.id}",
            shipping=ShippingDetails(
                name=body.shipping.name.strip(), phone=phone, address=body.shipping.address.strip()
            ),
        )

    def _claim_sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._claims is None:
            raise RuntimeError("OrderService needs `claims` (a sessionmaker) for idempotency")
        return self._claims

    async def _claim(
        self, scope: str, key: str, fingerprint: str, claim_id: uuid.UUID
    ) -> StoredResponse | None:
        now = self._clock()
        async with self._claim_sessions()() as session:
            records = IdempotencyRepository(session)
            claimed = await records.claim(
                scope=scope,
                key=key,
                fingerprint=fingerprint,
                claim_id=claim_id,
                now=now,
                locked_until=now + IDEMPOTENCY_LEASE,
                expires_at=now + IDEMPOTENCY_TTL,
            )
            if claimed:
                await session.commit()
                return None
            record = await records.find(scope, key)
            await session.rollback()
        if record is None:
            raise RequestInProgress()
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was first used with another body; use a new key"
            )
        if record.in_flight or record.status_code is None or record.body is None:
            raise RequestInProgress()
        return StoredResponse(status_code=record.status_code, body=record.body, replayed=True)

    async def _abandon(self, claim_id: uuid.UUID) -> None:
        """An unexpected failure frees the key so the client's retry runs afresh."""
        try:
            async with self._claim_sessions()() as session:
                await IdempotencyRepository(session).abandon(claim_id)
                await session.commit()
        except Exception:
            log.exception("idempotency_claim_not_released", claim_id=str(claim_id))

    async def purge_idempotency_records(self, now: datetime) -> int:
        return await IdempotencyRepository(self._uow.session).purge_expired(now, SWEEP_BATCH)

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
        await self._forget_sold_out(sorted(quantities, key=str))

    # ---- Claiming a comment order --------------------------------------------------------

    def claim_code(self, order_id: uuid.UUID) -> str:
        """The short code a comment buyer claims the order with: derived from the order id
        under the server secret, so it can be sent again without being stored in clear."""
        mac = hmac.new(
            self._settings.security.secret_key.encode(),
            b"order-claim:" + order_id.bytes,
            hashlib.sha256,
        ).digest()
        number = int.from_bytes(mac[:8], "big")
        chars = []
        for _ in range(CLAIM_CODE_LENGTH):
            number, index = divmod(number, len(PAYMENT_CODE_ALPHABET))
            chars.append(PAYMENT_CODE_ALPHABET[index])
        return "".join(chars)

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
        phone = self._checked_phone(data.shipping.phone, "shipping.phone")
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
            raise PermissionDenied("name the household_id or cooperative_id you act for")
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


def _problem_body(exc: MarketplaceError, instance: str) -> bytes:
    """The problem+json body the error handler would render, kept for replay."""
    response = problem(
        status=exc.status_code,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        errors=exc.errors,
        extra=exc.extra,
        instance=instance,
    )
    content: dict[str, Any] = response.content
    return msgspec.json.encode(content)

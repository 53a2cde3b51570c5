"""Placing an order: the rules of acceptance, the stock taken last, and the answer kept
for the request's Idempotency-Key.

Never oversell: the stock is taken by one conditional UPDATE per variant (`available >= n`,
backed by CHECK available >= 0), in ascending variant id order so two multi-line orders
cannot deadlock, and as the last statement before the commit, so a hot item's row lock is
held for the take and the commit only. Everything before it (checks, prices read without a
lock, the order's rows in one INSERT, the idempotency answer) holds no catalog lock.

`prepare` and `take_stock` are the two halves a group-commit batcher can drive for many
orders in one transaction; `place_order_once` is the HTTP path around them.

A variant seen sold out is remembered in Redis for a short while, so the flood of refusals
after a flash sale never reaches the row; giving stock back forgets it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.errors import MarketplaceError, problem
from marketplace.livestreams.service import (
    LivestreamService,
    Reservation,
    ReservationAsk,
    Reservations,
)
from marketplace.orders.errors import (
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
    InvalidOrderField,
    ItemUnavailable,
    LimitReached,
    PriceChanged,
    RequestInProgress,
    SoldOut,
    VariantUnavailable,
)
from marketplace.orders.models import (
    Fulfilment,
    FulfilmentStatus,
    Order,
    OrderLine,
    OrderSource,
    OrderStatus,
    PaymentMethod,
    StockHold,
)
from marketplace.orders.repository import (
    ClaimAnswer,
    IdempotencyRepository,
    NewClaim,
    OrderRepository,
    StockRepository,
    StoredAnswer,
    VariantFacts,
    VariantStock,
)
from marketplace.orders.schemas import (
    MAX_LINE_QUANTITY,
    MAX_LINES,
    LineRequest,
    OrderCreate,
    OrderDetails,
    PlaceOrder,
    ShippingDetails,
    order_read,
)
from marketplace.resources import Clock, Resources, autocommit_sessions
from marketplace.sellers.pii import InvalidPhone, normalise_phone
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

DEFAULT_HOLD_SECONDS = 15 * 60
MAX_HOLD_SECONDS = 24 * 3600
SOLD_OUT_CACHE_SECONDS = 30
"""How long a sold-out variant is refused from Redis alone. Giving stock back deletes the
mark at once; the expiry only bounds a mark written by a refusal that raced a release."""
SOLD_OUT_PREFIX = "orders:sold_out:"
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


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The answer to an idempotent request: made now, or replayed from the first time."""

    status_code: int
    body: bytes
    replayed: bool

    @property
    def media_type(self) -> str:
        return "application/problem+json" if self.status_code >= 400 else "application/json"


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
class Prepared:
    """An order inserted (or, in a batch, about to be) whose catalog stock is not taken yet."""

    details: OrderDetails
    catalog_lines: list[_Line]
    """In the lock order (ascending variant id)."""
    holds: Sequence[StockHold] = ()
    """The order's holds, when a batch inserts them with the order."""


BATCHED_FIELD = "lines[0].livestream_item_id"
"""The field a batched order's refusals name: it has that one line."""


@dataclass(frozen=True, slots=True)
class _Asked:
    index: int
    request: PlaceOrder
    line: _Line


@dataclass(slots=True)
class Ticket:
    """One POST /api/orders waiting for a group commit (see `group_commit`)."""

    buyer: AuthenticatedUser
    key: str
    fingerprint: str
    body: OrderCreate
    instance: str

    @property
    def scope(self) -> str:
        return f"user:{self.buyer.id}"

    @property
    def item_id(self) -> uuid.UUID:
        item_id = self.body.lines[0].livestream_item_id
        assert item_id is not None  # noqa: S101 - only such orders are batched (`batchable`)
        return item_id

    @staticmethod
    def batchable(body: OrderCreate) -> bool:
        """One line of a pinned item: the flash-sale order, the only kind batched."""
        return len(body.lines) == 1 and body.lines[0].livestream_item_id is not None


class _ClaimLost(Exception):
    """The idempotency claim was taken over while this request ran."""


def sold_out_key(variant_id: uuid.UUID) -> str:
    return f"{SOLD_OUT_PREFIX}{variant_id}"


def new_payment_code() -> str:
    """Eight characters drawn uniformly from the alphabet with one draw from the OS: one
    system call, not eight (a flash-sale batch draws hundreds)."""
    base = len(PAYMENT_CODE_ALPHABET)
    number = secrets.randbelow(base**PAYMENT_CODE_RANDOM_LENGTH)
    chars = []
    for _ in range(PAYMENT_CODE_RANDOM_LENGTH):
        number, index = divmod(number, base)
        chars.append(PAYMENT_CODE_ALPHABET[index])
    return PAYMENT_CODE_PREFIX + "".join(chars)


def claim_digest(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def claim_sessions(resources: Resources) -> async_sessionmaker[AsyncSession]:
    """Idempotency claims commit on their own at once, in autocommit (one round trip)."""
    return autocommit_sessions(resources)


def check_idempotency_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise IdempotencyKeyMissing("required: a unique value per order you mean to place")
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise IdempotencyKeyMissing(f"at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    if not (key.isascii() and key.isprintable()):
        raise IdempotencyKeyMissing("printable ASCII only")
    return key


def claim_code(secret_key: str, order_id: uuid.UUID) -> str:
    """The short code a comment buyer claims the order with: derived from the order id
    under the server secret, so it can be sent again without being stored in clear."""
    mac = hmac.new(secret_key.encode(), b"order-claim:" + order_id.bytes, hashlib.sha256).digest()
    number = int.from_bytes(mac[:8], "big")
    chars = []
    for _ in range(CLAIM_CODE_LENGTH):
        number, index = divmod(number, len(PAYMENT_CODE_ALPHABET))
        chars.append(PAYMENT_CODE_ALPHABET[index])
    return "".join(chars)


def checked_phone(phone: str | None, field: str) -> str | None:
    """A Vietnamese mobile number in its one stored spelling, or a refusal naming `field`."""
    if phone is None:
        return None
    try:
        return normalise_phone(phone)
    except InvalidPhone as exc:
        raise InvalidOrderField(field, str(exc)) from None


class Placement:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        redis: Redis,
        clock: Clock,
        *,
        claims: async_sessionmaker[AsyncSession] | None,
        livestreams: Callable[[], LivestreamService],
    ) -> None:
        self._uow = uow
        self._settings = settings
        self._redis = redis
        self._clock = clock
        self._claims = claims
        self._livestreams = livestreams
        self._orders = OrderRepository(uow.session)
        self._stock = StockRepository(uow.session)

    async def place_order(self, request: PlaceOrder) -> Order:
        """Accept an order: stock held, prices fixed on the lines, one fulfilment per
        seller. Raises before writing anything the caller's rollback would not undo."""
        prepared = await self.prepare(request)
        await self.take_stock(prepared)
        return prepared.details.order

    async def prepare(self, request: PlaceOrder) -> Prepared:
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
        return Prepared(
            details=details,
            catalog_lines=sorted(catalog_lines, key=lambda item: str(item.variant_id)),
        )

    async def take_stock(self, prepared: Prepared) -> None:
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
        return checked_phone(phone, field)

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
            raise _order_refusal(exc, field) from None
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

    async def forget_sold_out(self, variant_ids: Sequence[uuid.UUID]) -> None:
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
                claim_digest(claim_code(self._settings.security.secret_key, order_id))
                if request.buyer_user_id is None
                else None
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
            prepared = await self.prepare(self._from_body(buyer, body))
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
            await self.take_stock(prepared)
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

    # ---- Many orders of pinned items in one transaction (group commit) -------------------

    async def place_batch(self, tickets: Sequence[Ticket]) -> list[StoredResponse | None]:
        """Place many one-line livestream orders in the caller's transaction, each under
        the rules and exactly-once answer of `place_order_once`: claims for every key in
        one statement, every reservation of an item under one lock of its row (taken
        last), every order in one INSERT, every answer in one UPDATE. The caller commits
        once, then answers: an order is only acknowledged once durable.

        None for a ticket whose key another ticket of the batch holds: the caller runs it
        again after this commit, when it replays that answer. Raises only for a failure of
        the whole batch (the caller's rollback then undoes all of it)."""
        now = self._clock()
        answers: list[StoredResponse | None] = [None] * len(tickets)
        pending = await self._refuse_flagged_sold_out(tickets, answers)
        firsts: dict[tuple[str, str], int] = {}
        for index in pending:
            ticket = tickets[index]
            firsts.setdefault((ticket.scope, ticket.key), index)
        claims = {
            index: NewClaim(
                uuid.uuid4(), tickets[index].scope, tickets[index].key, tickets[index].fingerprint
            )
            for index in firsts.values()
        }
        records = IdempotencyRepository(self._uow.session)
        held = await records.claim_many(
            sorted(claims.values(), key=lambda c: (c.scope, c.key)),
            now=now,
            locked_until=now + IDEMPOTENCY_LEASE,
            expires_at=now + IDEMPOTENCY_TTL,
        )
        mine = [index for index, claim in claims.items() if claim.claim_id in held]
        theirs = [index for index in claims if claims[index].claim_id not in held]
        if theirs:
            found = await records.find_many([(tickets[i].scope, tickets[i].key) for i in theirs])
            for index in theirs:
                ticket = tickets[index]
                answers[index] = _replay(found.get((ticket.scope, ticket.key)), ticket)

        outcomes: dict[int, Prepared | MarketplaceError] = {}
        by_item: dict[uuid.UUID, list[_Asked]] = {}
        for index in mine:
            ticket = tickets[index]
            try:
                request = self._from_body(ticket.buyer, ticket.body)
                line = self._checked_lines(request)[0]
            except MarketplaceError as exc:
                outcomes[index] = exc
                continue
            item_id = line.request.livestream_item_id
            assert item_id is not None  # noqa: S101 - only such orders are batched
            by_item.setdefault(item_id, []).append(_Asked(index, request, line))
        # Everything read without a lock first; then each item's lock (in id order, the
        # lock order), held for one more statement each and the one below until the commit.
        items = sorted(by_item, key=str)
        opened = {item_id: await self._open(item_id, now) for item_id in items}
        for item_id in items:
            asked = by_item[item_id]
            reserved = await self._livestreams().reserve_many(
                opened[item_id][0],
                [ReservationAsk(a.request.buyer_key, a.line.request.quantity) for a in asked],
                now,
            )
            for entry, reservation in zip(asked, reserved, strict=True):
                outcomes[entry.index] = self._placed(entry, reservation, opened[item_id][1], now)

        placed = [p for p in outcomes.values() if isinstance(p, Prepared)]
        completed: list[ClaimAnswer] = []
        for index, outcome in outcomes.items():
            order_id: uuid.UUID | None = None
            if isinstance(outcome, Prepared):
                answer = StoredResponse(
                    201, msgspec.json.encode(order_read(outcome.details)), False
                )
                order_id = outcome.details.order.id
            else:
                body = _problem_body(outcome, tickets[index].instance)
                answer = StoredResponse(outcome.status_code, body, replayed=False)
            answers[index] = answer
            completed.append(
                ClaimAnswer(claims[index].claim_id, answer.status_code, answer.body, order_id)
            )
        held_still = await self._orders.add_many(
            [p.details.order for p in placed],
            [f for p in placed for f in p.details.fulfilments],
            [line for p in placed for line in p.details.lines],
            [h for p in placed for h in p.holds],
            answers=completed,
            now=now,
        )
        if held_still != len(completed):
            raise RuntimeError("an idempotency claim of the batch was lost before its answer")
        return answers

    async def _refuse_flagged_sold_out(
        self, tickets: Sequence[Ticket], answers: list[StoredResponse | None]
    ) -> list[int]:
        """Answer the tickets of items flagged sold out, the flood after a sale, with one
        read: a key already answered replays its answer, any other gets `sold_out` without
        a claim or a stored answer (nothing was attempted, so its retry is decided afresh,
        as Stripe does for requests refused before they run). Fills `answers`; returns the
        other tickets' indexes, to be placed."""
        items = sorted({ticket.item_id for ticket in tickets}, key=str)
        flagged = await self._livestreams().flagged_sold_out(items)
        if not flagged:
            return list(range(len(tickets)))
        refused = [i for i, ticket in enumerate(tickets) if ticket.item_id in flagged]
        found = await IdempotencyRepository(self._uow.session).find_many(
            list(dict.fromkeys((tickets[i].scope, tickets[i].key) for i in refused))
        )
        sold_out = SoldOut(BATCHED_FIELD)
        for index in refused:
            ticket = tickets[index]
            record = found.get((ticket.scope, ticket.key))
            answers[index] = (
                _replay(record, ticket)
                if record is not None
                else StoredResponse(
                    sold_out.status_code, _problem_body(sold_out, ticket.instance), False
                )
            )
        return [i for i, ticket in enumerate(tickets) if ticket.item_id not in flagged]

    async def _open(
        self, item_id: uuid.UUID, now: datetime
    ) -> tuple[Reservations, VariantFacts | None]:
        """An item opened for reservations, with the facts of the variant it sells."""
        opened = await self._livestreams().open_reservations(item_id, now)
        if opened.reserved is None:
            return opened, None
        variant_id = opened.reserved.variant_id
        state = (await self._stock.read([variant_id])).get(variant_id)
        if state is None:
            gone = ItemUnavailable(BATCHED_FIELD, "the item's variant no longer exists")
            return Reservations(refusal=gone), None
        return opened, state.facts

    def _placed(
        self,
        entry: _Asked,
        reservation: Reservation,
        facts: VariantFacts | None,
        now: datetime,
    ) -> Prepared | MarketplaceError:
        """One order of a batch, built in memory from its reservation (or its refusal)."""
        line, request = entry.line, entry.request
        field = f"{line.field}.livestream_item_id"
        if isinstance(reservation, MarketplaceError):
            return _order_refusal(reservation, field)
        if facts is None:  # a reservation is only made for an item whose facts were read
            raise RuntimeError("a reservation without its variant's facts")
        line.facts = facts
        line.unit_price_amount = reservation.unit_price_amount
        line.hold_seconds = reservation.hold_seconds
        details = self._build(
            session_id=reservation.session_id,
            request=request,
            lines=[line],
            method=self._checked_method(request.payment_method),
            source=OrderSource.LIVESTREAM,
            contact_phone=request.contact_phone,
            now=now,
        )
        holds = self._holds_for(details, request.buyer_key, now)
        return Prepared(details=details, catalog_lines=[], holds=holds)

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

    async def purge_idempotency_records(self, now: datetime, limit: int) -> int:
        return await IdempotencyRepository(self._uow.session).purge_expired(now, limit)


def _order_refusal(exc: MarketplaceError, field: str) -> MarketplaceError:
    """The livestream domain's refusal of a reservation, as the order line's refusal."""
    if exc.code == SoldOut.code:
        return SoldOut(field, exc.extra.get("available"))
    if exc.code == LimitReached.code:
        return LimitReached(field, exc.detail)
    if exc.code in {"item_not_found", "item_unpinned"}:
        return ItemUnavailable(field, exc.detail)
    return exc


def _replay(record: StoredAnswer | None, ticket: Ticket) -> StoredResponse:
    """The answer for a key that was already claimed: its first answer, or the refusal
    `place_order_once` raises (rendered as its error handler would)."""
    error: MarketplaceError
    if record is None or record.in_flight or record.status_code is None or record.body is None:
        error = RequestInProgress()
    elif record.fingerprint != ticket.fingerprint:
        error = IdempotencyKeyReused(
            "this Idempotency-Key was first used with another body; use a new key"
        )
    else:
        return StoredResponse(status_code=record.status_code, body=record.body, replayed=True)
    return StoredResponse(error.status_code, _problem_body(error, ticket.instance), False)


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

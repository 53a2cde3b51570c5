"""Sessions, pinned items, flash deals and the stock they hold: the rules of live selling.

- A session is created as a draft by its host and scheduled only once the host's identity
  has been verified (2025 Law on E-commerce, in force from 2026-07-01); it must start in the
  future, end after it starts and publish its rules text.
- Pinning an item moves its stock cap out of the variant into the item's own counter;
  unpinning it, ending or cancelling the session gives the unsold remainder back.
- `reserve_item` is how the orders domain takes a pinned item: the per-buyer count and the
  item's counter change in one savepoint, each by one conditional statement; a sold-out
  flag in Redis answers further refusals without touching the row. `release_item` undoes it.
- A flash deal's price applies from `starts_at` to `ends_at` by the server's clock only.

Events go out after the commit (see events.AfterCommitEvents). Hosts manage their own
sessions, admins all of them; another host's session is "not found".
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, NoReturn

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.catalog.models import MAX_PRICE_AMOUNT, ProductStatus
from marketplace.db import utcnow
from marketplace.errors import MarketplaceError, NotAuthenticated, ValidationFailed
from marketplace.livestreams.errors import (
    FlashDealRunning,
    HostNotVerified,
    InsufficientStock,
    InvalidConnectorToken,
    ItemCodeTaken,
    ItemNotFound,
    ItemUnpinned,
    LimitReached,
    SellerNotFound,
    SessionClosed,
    SessionNotFound,
    SessionOver,
    SoldOut,
    VariantNotFound,
    VariantNotSellable,
)
from marketplace.livestreams.events import (
    AfterCommitEvents,
    Audience,
    EventType,
    LiveEvent,
    LiveEventPublisher,
    channel_for,
    stock_bucket,
)
from marketplace.livestreams.models import (
    CODE_PATTERN,
    DEFAULT_HOLD_SECONDS,
    MAX_CODE_LENGTH,
    MAX_COUNTDOWN,
    MAX_DURATION,
    MAX_HOLD_SECONDS,
    MAX_PER_BUYER_LIMIT,
    MAX_STOCK_CAP,
    MIN_COUNTDOWN,
    MIN_DURATION,
    MIN_HOLD_SECONDS,
    FlashDeal,
    LiveItem,
    LiveSession,
    Platform,
    SessionSeller,
    SessionStatus,
)
from marketplace.livestreams.repository import LivestreamRepository
from marketplace.resources import Clock, Resources
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

MAX_SESSION_LENGTH: Final = timedelta(hours=12)
MAX_SCHEDULE_AHEAD: Final = timedelta(days=365)
MAX_HOUSEHOLDS: Final = 50
MAX_PAGE: Final = 200
SOLD_OUT_FLAG_TTL_SECONDS: Final = 10
"""How long a sold-out flag answers for the row at most. It is deleted whenever stock
returns; the expiry bounds the one race that deletion cannot cover (a refusal read just
before a release committed, flagged just after)."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_OR_NEWLINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_text(field_name: str, text: str, *, max_length: int, multiline: bool = False) -> str:
    """Trimmed text without control characters (line breaks and tabs only where the field
    is free text): a NUL byte or an escape sequence is refused, not stored."""
    value = text.strip()
    if not value:
        raise ValidationFailed.for_field(field_name, "must not be blank")
    if len(value) > max_length:
        raise ValidationFailed.for_field(field_name, f"at most {max_length} characters")
    pattern = _CONTROL if multiline else _CONTROL_OR_NEWLINE
    if pattern.search(value):
        raise ValidationFailed.for_field(field_name, "must not contain control characters")
    return value


def normalise_code(raw: str) -> str:
    """An item code as stored: ASCII letters then digits, at most 8, upper case; so `a1` and
    `A1` are one code in a session."""
    code = raw.strip()
    if not code.isascii() or not CODE_PATTERN.match(code.upper()):
        raise ValidationFailed.for_field(
            "code", "ASCII letters followed by digits, such as A1 or CAM12"
        )
    if len(code) > MAX_CODE_LENGTH:
        raise ValidationFailed.for_field("code", f"at most {MAX_CODE_LENGTH} characters")
    return code.upper()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _sold_out_key(item_id: uuid.UUID) -> str:
    return f"mp:livestream:item:{item_id}:sold_out"


@dataclass(frozen=True, slots=True)
class ReservedItem:
    """What the orders domain needs to put a livestream item on an order line."""

    item_id: uuid.UUID
    variant_id: uuid.UUID
    product_id: uuid.UUID
    unit_price_amount: int
    hold_seconds: int
    session_id: uuid.UUID
    code: str


@dataclass(frozen=True, slots=True)
class ReservationAsk:
    """One buyer's ask in a batch of reservations of one item."""

    buyer_key: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Reservations:
    """An item opened for a batch of reservations (`open_reservations`), or its refusal."""

    item: LiveItem | None = None
    reserved: ReservedItem | None = None
    refusal: MarketplaceError | None = None


Reservation = ReservedItem | MarketplaceError
"""A batch's answer to one ask: the reservation, or the refusal `reserve_item` would raise."""


def serve_asks(
    asks: Sequence[ReservationAsk],
    counts: dict[str, int],
    available: int,
    limit: int,
    reserved: ReservedItem,
) -> tuple[list[Reservation], dict[str, int], int]:
    """The rules of `reserve_item` applied to asks in order, in memory, against the locked
    buyer counts and item counter: each ask's answer, the buyers' new counts, units left."""
    counts = dict(counts)
    answers: list[Reservation] = []
    changed: dict[str, int] = {}
    left = available
    for ask in asks:
        held = counts.get(ask.buyer_key, 0)
        if ask.quantity < 1:
            answers.append(ValidationFailed.for_field("quantity", "must be at least 1"))
        elif held + ask.quantity > limit:
            answers.append(LimitReached(f"at most {limit} per buyer"))
        elif left == 0:
            answers.append(SoldOut("sold out"))
        elif left < ask.quantity:
            answers.append(SoldOut(f"only {left} left", extra={"available": left}))
        else:
            counts[ask.buyer_key] = changed[ask.buyer_key] = held + ask.quantity
            left -= ask.quantity
            answers.append(reserved)
    return answers, changed, left


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDraft:
    title: str
    platform: Platform
    scheduled_start_at: datetime
    scheduled_end_at: datetime
    rules_text: str = ""
    hold_seconds: int = DEFAULT_HOLD_SECONDS
    household_ids: Sequence[uuid.UUID] = ()
    cooperative_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionChanges:
    title: str | None = None
    platform: Platform | None = None
    scheduled_start_at: datetime | None = None
    scheduled_end_at: datetime | None = None
    rules_text: str | None = None
    hold_seconds: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemDraft:
    variant_id: uuid.UUID
    code: str
    live_price_amount: int
    stock_cap: int
    per_buyer_limit: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemChanges:
    live_price_amount: int | None = None
    per_buyer_limit: int | None = None
    stock_cap: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FlashDraft:
    price_amount: int
    countdown_seconds: int
    duration_minutes: int


@dataclass(frozen=True, slots=True)
class SessionView:
    session: LiveSession
    sellers: Sequence[SessionSeller]


@dataclass(frozen=True, slots=True)
class ItemView:
    item: LiveItem
    price_amount: int
    """What a reservation at the moment of reading would pay."""
    flash: FlashDeal | None
    held_or_sold: int = 0


@dataclass(slots=True)
class _Bounds:
    errors: list[tuple[str, str]] = field(default_factory=list)

    def check(self, field_name: str, value: int, low: int, high: int, unit: str = "") -> None:
        if not low <= value <= high:
            self.errors.append((field_name, f"between {low} and {high}{unit}"))

    def raise_first(self) -> None:
        if self.errors:
            raise ValidationFailed.for_field(*self.errors[0])


class LivestreamService:
    def __init__(
        self,
        uow: UnitOfWork,
        redis: Redis,
        clock: Clock = utcnow,
        *,
        events: LiveEventPublisher | None = None,
    ) -> None:
        self._uow = uow
        self._redis = redis
        self._clock = clock
        self._repo = LivestreamRepository(uow.session)
        self._publisher = events or LiveEventPublisher(redis, clock=clock)
        # Hooked before any savepoint opens, so a rolled-back savepoint drops its events.
        self._events = AfterCommitEvents.of(uow.session, self._publisher)

    # ---- Sessions ------------------------------------------------------------------------

    async def create_session(self, host: AuthenticatedUser, draft: SessionDraft) -> SessionView:
        now = self._clock()
        title = check_text("title", draft.title, max_length=200)
        rules = self._checked_rules(draft.rules_text, required=False)
        self._check_times(draft.scheduled_start_at, draft.scheduled_end_at, now)
        self._check_hold(draft.hold_seconds)
        sellers = await self._checked_sellers(draft.household_ids, draft.cooperative_id)
        live = LiveSession(
            host_user_id=host.id,
            title=title,
            platform=draft.platform.value,
            status=SessionStatus.DRAFT.value,
            scheduled_start_at=draft.scheduled_start_at,
            scheduled_end_at=draft.scheduled_end_at,
            rules_text=rules,
            hold_seconds=draft.hold_seconds,
        )
        await self._repo.add_session(live, sellers)
        log.info("livestream_session_created", session_id=str(live.id), host=str(host.id))
        return SessionView(live, sellers)

    async def update_session(
        self,
        actor: AuthenticatedUser,
        session_id: uuid.UUID,
        changes: SessionChanges,
        *,
        household_ids: Sequence[uuid.UUID] | None = None,
        cooperative_id: uuid.UUID | None = None,
    ) -> SessionView:
        """Title, times, rules, hold time and sellers may change until the session is live;
        the time rules are checked again on the result."""
        live = await self._owned(actor, session_id, lock=True)
        live.ensure_editable()
        now = self._clock()
        start = changes.scheduled_start_at or live.scheduled_start_at
        end = changes.scheduled_end_at or live.scheduled_end_at
        if changes.scheduled_start_at or changes.scheduled_end_at:
            self._check_times(start, end, now)
        if changes.title is not None:
            live.title = check_text("title", changes.title, max_length=200)
        if changes.rules_text is not None:
            live.rules_text = self._checked_rules(
                changes.rules_text, required=live.state is SessionStatus.SCHEDULED
            )
        if changes.hold_seconds is not None:
            self._check_hold(changes.hold_seconds)
            live.hold_seconds = changes.hold_seconds
        if changes.platform is not None:
            live.platform = changes.platform.value
        live.scheduled_start_at, live.scheduled_end_at = start, end
        if household_ids is not None or cooperative_id is not None:
            sellers = await self._checked_sellers(household_ids or (), cooperative_id)
            await self._repo.replace_sellers(live.id, sellers)
        await self._repo.flush()
        return SessionView(live, await self._repo.sellers_of(live.id))

    async def session_for(self, actor: AuthenticatedUser, session_id: uuid.UUID) -> SessionView:
        live = await self._owned(actor, session_id)
        return SessionView(live, await self._repo.sellers_of(live.id))

    async def public_session(self, session_id: uuid.UUID) -> SessionView:
        """Anyone may read a session once it is announced; a draft is its host's alone."""
        live = await self._repo.get_session(session_id)
        if live is None or live.state is SessionStatus.DRAFT:
            raise SessionNotFound()
        return SessionView(live, await self._repo.sellers_of(live.id))

    async def list_sessions(
        self,
        *,
        host: AuthenticatedUser | None,
        statuses: Sequence[SessionStatus] | None,
        limit: int,
        offset: int,
    ) -> tuple[list[SessionView], int]:
        """A host's own sessions (an admin's: everyone's), or the public list, which never
        shows drafts."""
        if host is None:
            public = [s for s in (statuses or SessionStatus) if s is not SessionStatus.DRAFT]
            statuses = public or [SessionStatus.SCHEDULED]
        host_id = None if host is None or host.role is Role.ADMIN else host.id
        rows, total = await self._repo.sessions_page(
            host_user_id=host_id, statuses=statuses, limit=limit, offset=offset
        )
        sellers = await self._repo.sellers_of_many([row.id for row in rows])
        return [SessionView(row, sellers[row.id]) for row in rows], total

    async def schedule(self, actor: AuthenticatedUser, session_id: uuid.UUID) -> SessionView:
        live = await self._owned(actor, session_id, lock=True)
        now = self._clock()
        if not await self._repo.host_is_verified(live.host_user_id):
            raise HostNotVerified()
        live.schedule(now)
        self._check_times(live.scheduled_start_at, live.scheduled_end_at, now)
        self._checked_rules(live.rules_text, required=True)
        return await self._changed_state(live, now)

    async def go_live(self, actor: AuthenticatedUser, session_id: uuid.UUID) -> SessionView:
        live = await self._owned(actor, session_id, lock=True)
        now = self._clock()
        if not await self._repo.host_is_verified(live.host_user_id):
            raise HostNotVerified()
        live.go_live(now)
        if now >= live.scheduled_end_at:
            raise SessionOver("reschedule it (a new draft) instead of starting it late")
        return await self._changed_state(live, now)

    async def end(self, actor: AuthenticatedUser, session_id: uuid.UUID) -> SessionView:
        live = await self._owned(actor, session_id, lock=True)
        now = self._clock()
        live.end(now)
        await self._close_items(live, now)
        return await self._changed_state(live, now)

    async def cancel(self, actor: AuthenticatedUser, session_id: uuid.UUID) -> SessionView:
        live = await self._owned(actor, session_id, lock=True)
        now = self._clock()
        live.cancel(now)
        await self._close_items(live, now)
        return await self._changed_state(live, now)

    async def rotate_connector_token(self, actor: AuthenticatedUser, session_id: uuid.UUID) -> str:
        """A new token for the session's platform connector; the previous one stops working.
        Only its digest is kept, so it is shown once."""
        live = await self._owned(actor, session_id, lock=True)
        if live.state in (SessionStatus.ENDED, SessionStatus.CANCELLED):
            raise SessionClosed()
        token = "lsc_" + secrets.token_urlsafe(32)
        live.connector_token_hash = token_hash(token)
        await self._repo.flush()
        return token

    async def session_for_connector(self, session_id: uuid.UUID, token: str | None) -> LiveSession:
        """The session a connector may post comments to: the token must be this session's."""
        if not token:
            raise InvalidConnectorToken()
        live = await self._repo.session_by_connector_token(token_hash(token))
        if live is None or live.id != session_id:
            raise InvalidConnectorToken()
        return live

    async def owned_session(self, actor: AuthenticatedUser, session_id: uuid.UUID) -> LiveSession:
        return await self._owned(actor, session_id)

    # ---- Items ---------------------------------------------------------------------------

    async def pin_item(
        self, actor: AuthenticatedUser, session_id: uuid.UUID, draft: ItemDraft
    ) -> ItemView:
        """Pin a variant of the session's sellers under a code; its stock cap leaves the
        variant now, in one conditional UPDATE, or not at all."""
        code = normalise_code(draft.code)
        self._check_item_numbers(draft.live_price_amount, draft.stock_cap, draft.per_buyer_limit)
        live = await self._owned(actor, session_id, lock=True)
        if not live.is_open_for_items:
            raise SessionClosed()
        if await self._repo.code_taken(live.id, code):
            raise ItemCodeTaken(f"code {code} is taken in this session")
        found = await self._repo.variant_with_product(draft.variant_id)
        if found is None:
            raise VariantNotFound()
        variant, product = found
        sellers = await self._repo.sellers_of(live.id)
        if not (
            variant.is_active
            and product.status == ProductStatus.LISTED.value
            and _sells(sellers, product.household_id, product.cooperative_id)
        ):
            raise VariantNotSellable()
        now = self._clock()
        item = LiveItem(
            session_id=live.id,
            variant_id=variant.id,
            product_id=product.id,
            household_id=product.household_id,
            cooperative_id=product.cooperative_id,
            code=code,
            title=f"{product.name} ({variant.label})",
            live_price_amount=draft.live_price_amount,
            stock_cap=draft.stock_cap,
            available=draft.stock_cap,
            per_buyer_limit=draft.per_buyer_limit,
            pinned_at=now,
        )
        if not await self._repo.take_from_variant(variant.id, draft.stock_cap):
            raise InsufficientStock(f"the variant has fewer than {draft.stock_cap} available")
        await self._repo.add_item(item)
        self._events.add(
            self._event(
                EventType.ITEM_PINNED,
                live.id,
                now,
                public=_item_public(item, item.live_price_amount),
                host={**_item_public(item, item.live_price_amount), "available": item.available},
            )
        )
        return ItemView(item, item.live_price_amount, None)

    async def update_item(
        self,
        actor: AuthenticatedUser,
        session_id: uuid.UUID,
        item_id: uuid.UUID,
        changes: ItemChanges,
    ) -> ItemView:
        """Change the live price, the per-buyer limit or the stock cap of a pinned item. A
        bigger cap takes more from the variant; a smaller one gives back, but never what
        buyers already hold."""
        live = await self._owned(actor, session_id)
        item = await self._pinned_item(live, item_id, lock=True)
        now = self._clock()
        self._check_item_numbers(
            item.live_price_amount
            if changes.live_price_amount is None
            else changes.live_price_amount,
            item.stock_cap if changes.stock_cap is None else changes.stock_cap,
            item.per_buyer_limit if changes.per_buyer_limit is None else changes.per_buyer_limit,
        )
        if changes.stock_cap is not None and changes.stock_cap != item.stock_cap:
            # First: resizing reloads the row it changed in one statement.
            await self._resize(item, changes.stock_cap, now)
        if changes.per_buyer_limit is not None:
            item.per_buyer_limit = changes.per_buyer_limit
        if (
            changes.live_price_amount is not None
            and changes.live_price_amount != item.live_price_amount
        ):
            item.live_price_amount = changes.live_price_amount
            price = await self._price_at(item, now)
            self._events.add(
                self._event(
                    EventType.PRICE_CHANGED,
                    live.id,
                    now,
                    public={
                        "item_id": item.id,
                        "code": item.code,
                        "price_amount": price,
                        "live_price_amount": item.live_price_amount,
                    },
                )
            )
        await self._repo.flush()
        return await self._item_view(item, now)

    async def unpin_item(
        self, actor: AuthenticatedUser, session_id: uuid.UUID, item_id: uuid.UUID
    ) -> ItemView:
        live = await self._owned(actor, session_id)
        item = await self._pinned_item(live, item_id, lock=True)
        now = self._clock()
        await self._repo.unpin(live.id, now, item_id=item.id)
        await self._void_flash_deals(live.id, now, item_id=item.id)
        await self._forget_sold_out(item.id)
        self._events.add(
            self._event(
                EventType.ITEM_UNPINNED,
                live.id,
                now,
                public={"item_id": item.id, "code": item.code},
            )
        )
        await self._uow.session.refresh(item)
        return ItemView(item, item.live_price_amount, None)

    async def items(
        self, session_id: uuid.UUID, *, pinned_only: bool, with_sales: bool = False
    ) -> list[ItemView]:
        now = self._clock()
        items = await self._repo.items_of(session_id, pinned_only=pinned_only)
        deals = {
            deal.item_id: deal
            for deal in await self._repo.unfinished_flash_deals(now, session_id=session_id)
        }
        sales = (
            {s.item_id: s.held_or_sold for s in await self._repo.held_or_sold(session_id)}
            if with_sales
            else {}
        )
        views = []
        for item in items:
            deal = deals.get(item.id)
            price = deal.price_amount if deal and deal.applies_at(now) else item.live_price_amount
            views.append(ItemView(item, price, deal, sales.get(item.id, 0)))
        return views

    async def codes(self, session_id: uuid.UUID) -> dict[str, LiveItem]:
        """Every item of the session by code, pinned or not (a cancel comment may name an
        item the host has unpinned since)."""
        return {item.code: item for item in await self._repo.items_of(session_id)}

    # ---- Flash deals ---------------------------------------------------------------------

    async def start_flash_deal(
        self,
        actor: AuthenticatedUser,
        session_id: uuid.UUID,
        item_id: uuid.UUID,
        draft: FlashDraft,
    ) -> ItemView:
        """Announce a lower price that applies after a 10-300 s countdown, for 1-20 minutes.
        One deal per item at a time; the item row is locked so two requests cannot both
        pass that check."""
        bounds = _Bounds()
        bounds.check("countdown_seconds", draft.countdown_seconds, MIN_COUNTDOWN, MAX_COUNTDOWN)
        bounds.check(
            "duration_minutes",
            draft.duration_minutes,
            MIN_DURATION // 60,
            MAX_DURATION // 60,
        )
        bounds.check("price_amount", draft.price_amount, 1, MAX_PRICE_AMOUNT)
        bounds.raise_first()
        live = await self._owned(actor, session_id)
        live.ensure_live()
        item = await self._pinned_item(live, item_id, lock=True)
        if draft.price_amount >= item.live_price_amount:
            raise ValidationFailed.for_field(
                "price_amount", f"must be below the live price ({item.live_price_amount} đồng)"
            )
        now = self._clock()
        if await self._repo.unfinished_flash_deals(now, session_id=live.id, item_id=item.id):
            raise FlashDealRunning()
        starts_at = now + timedelta(seconds=draft.countdown_seconds)
        deal = FlashDeal(
            session_id=live.id,
            item_id=item.id,
            price_amount=draft.price_amount,
            countdown_seconds=draft.countdown_seconds,
            duration_seconds=draft.duration_minutes * 60,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=draft.duration_minutes),
        )
        await self._repo.add(deal)
        base = {"item_id": item.id, "code": item.code, "deal_id": deal.id}
        self._events.add(
            self._event(
                EventType.FLASH_COUNTDOWN,
                live.id,
                now,
                public={
                    **base,
                    "price_amount": deal.price_amount,
                    "live_price_amount": item.live_price_amount,
                    "countdown_seconds": deal.countdown_seconds,
                    "starts_at": deal.starts_at,
                    "ends_at": deal.ends_at,
                    "server_now": now,
                },
            )
        )
        started = self._event(
            EventType.FLASH_STARTED,
            live.id,
            deal.starts_at,
            public={**base, "price_amount": deal.price_amount, "ends_at": deal.ends_at},
        )
        ended = self._event(
            EventType.FLASH_ENDED,
            live.id,
            deal.ends_at,
            public={**base, "price_amount": item.live_price_amount},
        )
        publisher = self._publisher
        deal_id = deal.id

        async def announce() -> None:
            publisher.schedule(deal.starts_at, [started], void_if=deal_id)
            publisher.schedule(deal.ends_at, [ended], void_if=deal_id)

        self._events.call_after_commit(announce)
        return ItemView(item, item.live_price_amount, deal)

    # ---- Reservations (called by the orders domain) --------------------------------------

    async def reserve_item(
        self, *, item_id: uuid.UUID, buyer_key: str, quantity: int, now: datetime
    ) -> ReservedItem:
        """Hold `quantity` of a pinned item for a buyer at the price that applies at `now`
        (the flash price while a flash deal runs, else the live price).

        Raises `session_not_live`, `item_unpinned`, `limit_reached` or `sold_out` (409)
        having written nothing. The buyer's count and the item's counter are each one
        conditional statement, in one savepoint, so concurrent comments can neither pass
        the per-buyer limit together nor take more than the item has.
        """
        if quantity < 1:
            raise ValidationFailed.for_field("quantity", "must be at least 1")
        if await self._known_sold_out(item_id):
            raise SoldOut("sold out")
        found = await self._repo.item_and_session(item_id)
        if found is None:
            raise ItemNotFound()
        item, live = found
        live.ensure_live()
        if not item.is_pinned:
            raise ItemUnpinned()
        if quantity > item.per_buyer_limit:
            raise LimitReached(f"at most {item.per_buyer_limit} per buyer")
        async with self._uow.session.begin_nested():
            counted = await self._repo.count_for_buyer(
                item.id, buyer_key, quantity, item.per_buyer_limit
            )
            if counted is None:
                raise LimitReached(f"at most {item.per_buyer_limit} per buyer")
            left = await self._repo.take_from_item(item.id, quantity, now)
            if left is None:
                await self._refuse_stock(item, quantity)
        price = await self._repo.flash_price_at(item.id, now) or item.live_price_amount
        self._events.add(self._stock_event(item, left, now))
        if left == 0:
            self._flag_sold_out_after_commit(item.id)
        return ReservedItem(
            item_id=item.id,
            variant_id=item.variant_id,
            product_id=item.product_id,
            unit_price_amount=price,
            hold_seconds=live.hold_seconds,
            session_id=live.id,
            code=item.code,
        )

    async def open_reservations(self, item_id: uuid.UUID, now: datetime) -> Reservations:
        """The first half of `reserve_many`, without any lock: the item, its session, the
        price at `now`. The refusal every ask of the item gets instead, when there is one."""
        if await self._known_sold_out(item_id):
            return Reservations(refusal=SoldOut("sold out"))
        found = await self._repo.item_and_session(item_id)
        if found is None:
            return Reservations(refusal=ItemNotFound())
        item, live = found
        try:
            live.ensure_live()
            if not item.is_pinned:
                raise ItemUnpinned()
        except MarketplaceError as exc:
            return Reservations(refusal=exc)
        price = await self._repo.flash_price_at(item.id, now) or item.live_price_amount
        reserved = ReservedItem(
            item_id=item.id,
            variant_id=item.variant_id,
            product_id=item.product_id,
            unit_price_amount=price,
            hold_seconds=live.hold_seconds,
            session_id=live.id,
            code=item.code,
        )
        return Reservations(item=item, reserved=reserved)

    async def reserve_many(
        self, opened: Reservations, asks: Sequence[ReservationAsk], now: datetime
    ) -> list[Reservation]:
        """`reserve_item` for many asks of one item under a single lock of its row: the
        group-commit path of a flash sale. Asks are served in order with the same rules
        (the per-buyer limit, then the stock, at the price of `open_reservations`); a
        refusal leaves the others untouched. Locks the buyers' counts, then the item (the
        lock order of `reserve_item`, so the two paths cannot deadlock); the item's lock
        is held for one more statement and the caller's commit."""
        item, reserved = opened.item, opened.reserved
        if item is None or reserved is None:
            refusal = opened.refusal or ItemNotFound()
            return [refusal for _ in asks]
        limit = item.per_buyer_limit
        counts = await self._repo.lock_buyer_counts(
            item.id, [ask.buyer_key for ask in asks if 1 <= ask.quantity <= limit], now
        )
        available = await self._repo.lock_item_available(item.id)
        if available is None:
            return [ItemUnpinned() for _ in asks]
        answers, changed, left = serve_asks(asks, counts, available, limit, reserved)
        if changed:
            taken = await self._repo.take_for_buyers(item.id, available - left, changed, now)
            if taken != left:
                raise RuntimeError(f"livestream item {item.id} changed under its row lock")
            self._events.add(self._stock_event(item, left, now))
        if left == 0:
            self._flag_sold_out_after_commit(item.id)
        return answers

    async def release_item(self, *, item_id: uuid.UUID, buyer_key: str, quantity: int) -> None:
        """Give back what `reserve_item` held (a hold expired or was cancelled): the buyer's
        count goes down and the units go back to the item while it is pinned, else to the
        variant (the session has ended or the item was unpinned)."""
        if quantity < 1:
            return
        item = await self._repo.get_item(item_id)
        if item is None:
            raise ItemNotFound()
        await self._repo.uncount_for_buyer(item_id, buyer_key, quantity)
        left = await self._repo.give_to_item(item_id, quantity)
        if left is None:
            if item.is_pinned:
                # More back than the cap allows: a release for units never reserved.
                log.warning("livestream_release_over_cap", item_id=str(item_id), quantity=quantity)
                return
            await self._repo.give_to_variant(item.variant_id, quantity)
            return
        await self._forget_sold_out(item_id)
        self._events.add(self._stock_event(item, left, self._clock()))

    # ---- Helpers -------------------------------------------------------------------------

    async def _owned(
        self, actor: AuthenticatedUser, session_id: uuid.UUID, *, lock: bool = False
    ) -> LiveSession:
        live = await self._repo.get_session(session_id, lock=lock)
        if live is None or (actor.role is not Role.ADMIN and live.host_user_id != actor.id):
            raise SessionNotFound()
        return live

    async def _pinned_item(
        self, live: LiveSession, item_id: uuid.UUID, *, lock: bool = False
    ) -> LiveItem:
        item = await self._repo.get_item(item_id, lock=lock)
        if item is None or item.session_id != live.id:
            raise ItemNotFound()
        if not item.is_pinned:
            raise ItemUnpinned()
        return item

    async def _refuse_stock(self, item: LiveItem, quantity: int) -> NoReturn:
        available = await self._repo.item_available(item.id)
        if available is None or (available >= quantity and not item.is_pinned):
            raise ItemUnpinned()
        if available == 0:
            with contextlib.suppress(RedisError):  # a missing flag only costs a query
                await self._redis.set(_sold_out_key(item.id), b"1", ex=SOLD_OUT_FLAG_TTL_SECONDS)
            raise SoldOut("sold out")
        raise SoldOut(f"only {available} left", extra={"available": available})

    def _flag_sold_out_after_commit(self, item_id: uuid.UUID) -> None:
        """Raise the item's sold-out flag once the sale of its last unit is committed."""
        key = _sold_out_key(item_id)
        redis = self._redis

        async def flag_sold_out() -> None:
            with contextlib.suppress(RedisError):  # a missing flag only costs a query
                await redis.set(key, b"1", ex=SOLD_OUT_FLAG_TTL_SECONDS)

        self._events.call_after_commit(flag_sold_out)

    async def flagged_sold_out(self, item_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """The items among `item_ids` whose sold-out flag is up, in one round trip; none
        when Redis is down (then the database decides, as it always can)."""
        if not item_ids:
            return set()
        try:
            flags = await self._redis.mget([_sold_out_key(item_id) for item_id in item_ids])
        except RedisError:
            log.warning("sold_out_flag_unavailable", items=len(item_ids))
            return set()
        return {item_id for item_id, flag in zip(item_ids, flags, strict=True) if flag is not None}

    async def _known_sold_out(self, item_id: uuid.UUID) -> bool:
        """The sold-out flag spares the item's row the flood of refusals after a sale. It
        is only a shortcut: with Redis down, the database decides, as it always can."""
        return item_id in await self.flagged_sold_out([item_id])

    async def _forget_sold_out(self, item_id: uuid.UUID) -> None:
        key = _sold_out_key(item_id)
        redis = self._redis
        try:
            await redis.delete(key)
        except RedisError:
            # The stock goes back all the same; the flag expires on its own.
            log.warning("sold_out_flag_not_cleared", item_id=str(item_id))

        async def forget() -> None:
            with contextlib.suppress(RedisError):
                await redis.delete(key)

        # Again after the commit: a refusal that read the row before this release
        # committed may have flagged it meanwhile.
        self._events.call_after_commit(forget)

    async def _resize(self, item: LiveItem, new_cap: int, now: datetime) -> None:
        delta = new_cap - item.stock_cap
        if delta > 0 and not await self._repo.take_from_variant(item.variant_id, delta):
            raise InsufficientStock(f"the variant has fewer than {delta} more available")
        left = await self._repo.resize_item(item.id, delta)
        if left is None:
            raise InsufficientStock("buyers already hold more than the new cap leaves")
        if delta < 0:
            await self._repo.give_to_variant(item.variant_id, -delta)
        else:
            await self._forget_sold_out(item.id)
        await self._uow.session.refresh(item)
        self._events.add(self._stock_event(item, left, now))

    async def _close_items(self, live: LiveSession, now: datetime) -> None:
        released = await self._repo.unpin(live.id, now)
        await self._void_flash_deals(live.id, now)
        for stock in released:
            await self._forget_sold_out(stock.item_id)

    async def _void_flash_deals(
        self, session_id: uuid.UUID, now: datetime, *, item_id: uuid.UUID | None = None
    ) -> None:
        deals = await self._repo.unfinished_flash_deals(now, session_id=session_id, item_id=item_id)
        deal_ids = [deal.id for deal in deals]
        await self._repo.cancel_flash_deals(deal_ids, now)
        publisher = self._publisher

        async def void() -> None:
            await publisher.void_flash_deals(deal_ids)

        if deal_ids:
            self._events.call_after_commit(void)

    async def _changed_state(self, live: LiveSession, now: datetime) -> SessionView:
        await self._repo.flush()
        self._events.add(
            self._event(
                EventType.SESSION_STATE_CHANGED, live.id, now, public={"status": live.status}
            )
        )
        return SessionView(live, await self._repo.sellers_of(live.id))

    async def _price_at(self, item: LiveItem, now: datetime) -> int:
        return await self._repo.flash_price_at(item.id, now) or item.live_price_amount

    async def _item_view(self, item: LiveItem, now: datetime) -> ItemView:
        deals = await self._repo.unfinished_flash_deals(
            now, session_id=item.session_id, item_id=item.id
        )
        deal = deals[0] if deals else None
        price = deal.price_amount if deal and deal.applies_at(now) else item.live_price_amount
        return ItemView(item, price, deal)

    async def _checked_sellers(
        self, household_ids: Sequence[uuid.UUID], cooperative_id: uuid.UUID | None
    ) -> list[SessionSeller]:
        """One cooperative, or one or more households: whose goods the session sells."""
        unique = list(dict.fromkeys(household_ids))
        if (cooperative_id is None) == (not unique):
            raise ValidationFailed.for_field(
                "sellers", "give either one cooperative_id or one or more household_ids"
            )
        if cooperative_id is not None:
            if not await self._repo.cooperative_exists(cooperative_id):
                raise SellerNotFound(f"no cooperative {cooperative_id}")
            return [SessionSeller(cooperative_id=cooperative_id)]
        if len(unique) > MAX_HOUSEHOLDS:
            raise ValidationFailed.for_field("household_ids", f"at most {MAX_HOUSEHOLDS}")
        missing = set(unique) - await self._repo.existing_households(unique)
        if missing:
            raise SellerNotFound(f"no household {sorted(map(str, missing))[0]}")
        return [SessionSeller(household_id=household_id) for household_id in unique]

    @staticmethod
    def _checked_rules(rules: str, *, required: bool) -> str:
        if not rules.strip():
            if required:
                raise ValidationFailed.for_field(
                    "rules_text", "a session publishes its livestream rules before it is scheduled"
                )
            return ""
        return check_text("rules_text", rules, max_length=10_000, multiline=True)

    @staticmethod
    def _check_times(start: datetime, end: datetime, now: datetime) -> None:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValidationFailed.for_field("scheduled_start_at", "must carry a time zone")
        if start <= now:
            raise ValidationFailed.for_field("scheduled_start_at", "must be in the future")
        if start > now + MAX_SCHEDULE_AHEAD:
            raise ValidationFailed.for_field("scheduled_start_at", "at most a year ahead")
        if end <= start:
            raise ValidationFailed.for_field("scheduled_end_at", "must be after the start")
        if end - start > MAX_SESSION_LENGTH:
            raise ValidationFailed.for_field("scheduled_end_at", "a session lasts at most 12 hours")

    @staticmethod
    def _check_hold(hold_seconds: int) -> None:
        bounds = _Bounds()
        bounds.check("hold_seconds", hold_seconds, MIN_HOLD_SECONDS, MAX_HOLD_SECONDS)
        bounds.raise_first()

    @staticmethod
    def _check_item_numbers(price: int, stock_cap: int, per_buyer_limit: int) -> None:
        bounds = _Bounds()
        bounds.check("live_price_amount", price, 1, MAX_PRICE_AMOUNT, " đồng")
        bounds.check("stock_cap", stock_cap, 1, MAX_STOCK_CAP)
        bounds.check("per_buyer_limit", per_buyer_limit, 1, MAX_PER_BUYER_LIMIT)
        bounds.raise_first()

    @staticmethod
    def _event(
        kind: EventType,
        session_id: uuid.UUID,
        at: datetime,
        *,
        public: dict[str, Any] | None,
        host: dict[str, Any] | None = None,
    ) -> LiveEvent:
        return LiveEvent(kind, session_id, at, public, host)

    def _stock_event(self, item: LiveItem, left: int, now: datetime) -> LiveEvent:
        base = {"item_id": item.id, "code": item.code, "sold_out": left == 0}
        return self._event(
            EventType.STOCK_LEFT,
            item.session_id,
            now,
            public={**base, "stock": stock_bucket(left)},
            host={**base, "stock": stock_bucket(left), "available": left},
        )


def _sells(
    sellers: Sequence[SessionSeller],
    household_id: uuid.UUID | None,
    cooperative_id: uuid.UUID | None,
) -> bool:
    return any(
        (household_id is not None and seller.household_id == household_id)
        or (cooperative_id is not None and seller.cooperative_id == cooperative_id)
        for seller in sellers
    )


def _item_public(item: LiveItem, price: int) -> dict[str, Any]:
    return {
        "item_id": item.id,
        "code": item.code,
        "title": item.title,
        "price_amount": price,
        "live_price_amount": item.live_price_amount,
        "per_buyer_limit": item.per_buyer_limit,
        "stock": stock_bucket(item.available),
        "sold_out": item.available == 0,
    }


async def session_channel(
    resources: Resources,
    session_id: uuid.UUID,
    audience: Audience,
    actor: AuthenticatedUser | None = None,
) -> str:
    """The channel a stream subscriber may read: any announced session's public channel,
    the host's channel of one's own session (an admin's: any). Checked in a unit of work of
    its own, closed at once, so a connection open for hours holds no database connection."""
    async with UnitOfWork(resources.sessionmaker, resources.job_sender) as uow:
        service = LivestreamService(uow, resources.redis, resources.clock)
        if audience == "host":
            if actor is None:
                raise NotAuthenticated()
            live = await service.owned_session(actor, session_id)
        else:
            live = (await service.public_session(session_id)).session
        # Read before the unit of work ends: its rollback expires the row.
        return channel_for(live.id, audience)

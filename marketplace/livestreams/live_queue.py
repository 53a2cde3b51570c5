"""Comments become orders: ingestion from platform connectors, the host's live queue, and the
session report.

Each comment is stored once per (platform, external id), parsed against the session's codes,
and each code it names becomes an entry of the host's live queue with its outcome:

- an order for a pinned item becomes a held order for the commenter, one order per code
  (so a later "hủy A1" releases exactly A1), placed through the orders domain with the
  session's hold time and the per-buyer limit as `<platform>:<author id>`; the claim link
  goes to the phone in the comment, or in the author's latest comment that had one;
- a failure (sold out, over the limit, unknown code, no phone, not live) stays in the queue
  with its reason, for the host to edit and accept or to reject by hand;
- a cancel releases the commenter's held orders for that code.

Every order attempt runs in a savepoint: a refused one leaves nothing behind, and the
comment and its queue entries are kept whatever the outcome.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import structlog
from redis.asyncio import Redis

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import is_valid_phone, normalise_phone
from marketplace.errors import MarketplaceError, ValidationFailed
from marketplace.livestreams.comments import Intent, ParsedComment, mask_phones, parse_comment
from marketplace.livestreams.errors import (
    CommentInOtherSession,
    QueueEntryNotActionable,
    QueueEntryNotFound,
)
from marketplace.livestreams.events import (
    AfterCommitEvents,
    EventType,
    LiveEvent,
    LiveEventPublisher,
    short_name,
)
from marketplace.livestreams.models import (
    FAILED_STATUSES,
    MAX_CODE_LENGTH,
    Comment,
    EntryStatus,
    LiveItem,
    LiveSession,
    Platform,
    QueueEntry,
    SessionStatus,
)
from marketplace.livestreams.repository import LivestreamRepository
from marketplace.livestreams.service import LivestreamService, check_text, normalise_code
from marketplace.orders.schemas import LineRequest, PlaceOrder
from marketplace.orders.service import OrderService
from marketplace.resources import Clock
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

MAX_COMMENT_LENGTH: Final = 2_000
"""Longer than any platform's comment (TikTok 150, YouTube 10,000 bytes but rarely used):
a 5,000-character "comment" is a connector bug or abuse, refused whole."""
ORDER_SOURCE: Final = "livestream_comment"
CANCEL_REASON: Final = "livestream_comment"
HOST_REJECT_REASON: Final = "livestream_host_rejected"

_CODE_LIKE: Final = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{1,7}[0-9]{1,7})(?![A-Za-z0-9])")
_NOT_CODES: Final = frozenset({"x", "sl", "kg", "g", "ml", "l", "k", "km", "q", "p"})
"""Letter parts that make a quantity or an address, not a mistyped item code (`x2`, `sl3`,
`2kg`, `Q7` is a district)."""

MAX_UNKNOWN_CODES: Final = 10
"""At most this many code-shaped words of one comment are reported as unknown codes."""

_ERROR_STATUS: Final = {
    "sold_out": EntryStatus.SOLD_OUT,
    "limit_reached": EntryStatus.LIMIT_REACHED,
    "session_not_live": EntryStatus.SESSION_NOT_LIVE,
    "item_unpinned": EntryStatus.ITEM_UNPINNED,
    "livestream_orders_unavailable": EntryStatus.ACCEPTED_PENDING_ORDERS,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingComment:
    platform: Platform
    external_id: str
    author_platform_id: str
    author_display_name: str
    text: str
    commented_at: datetime


@dataclass(frozen=True, slots=True)
class Ingested:
    comment: Comment
    entries: Sequence[QueueEntry]
    duplicate: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryEdit:
    code: str | None = None
    quantity: int | None = None
    phone: str | None = None


def buyer_key(platform: str, author_platform_id: str) -> str:
    return f"{platform}:{author_platform_id}"


def unknown_codes(text: str, codes: Sequence[str]) -> list[tuple[str, int]]:
    """Codes an order comment names that the session does not have (`chốt Z9`), with their
    quantities: the parser ignores unknown codes, so they are found by parsing again with
    every code-shaped word of the comment added to the session's codes."""
    known = {code.upper() for code in codes}
    candidates = list(
        dict.fromkeys(
            word.upper()
            for word in _CODE_LIKE.findall(text)
            if len(word) <= MAX_CODE_LENGTH
            and word.upper() not in known
            and word.rstrip("0123456789").lower() not in _NOT_CODES
        )
    )[:MAX_UNKNOWN_CODES]
    if not candidates:
        return []
    extended = parse_comment(text, [*codes, *candidates])
    if extended.intent is not Intent.ORDER:
        return []
    unknown = set(candidates)
    return [(code, quantity or 1) for code, quantity in extended.items if code in unknown]


class LiveQueue:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        redis: Redis,
        clock: Clock,
        *,
        events: LiveEventPublisher,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._repo = LivestreamRepository(uow.session)
        self._live = LivestreamService(uow, redis, clock, events=events)
        self._events = AfterCommitEvents.of(uow.session, events)
        self._orders = OrderService(uow, settings, redis, clock, livestreams=self._live)

    # ---- Ingestion -----------------------------------------------------------------------

    async def ingest(
        self, session_id: uuid.UUID, connector_token: str | None, incoming: IncomingComment
    ) -> Ingested:
        """Store, parse and act on one comment; the same (platform, external id) again
        returns what the first delivery made and changes nothing."""
        live = await self._live.session_for_connector(session_id, connector_token)
        text = check_text("text", incoming.text, max_length=MAX_COMMENT_LENGTH, multiline=True)
        author = check_text("author_display_name", incoming.author_display_name, max_length=120)
        external_id = _identifier("external_id", incoming.external_id)
        author_id = _identifier("author_platform_id", incoming.author_platform_id)
        if incoming.platform.value != live.platform:
            raise ValidationFailed.for_field("platform", f"this session streams on {live.platform}")
        if incoming.commented_at.tzinfo is None:
            raise ValidationFailed.for_field("commented_at", "must carry a time zone")

        items = await self._live.codes(live.id)
        codes = list(items)
        parsed = parse_comment(text, codes)
        unknown = unknown_codes(text, codes) if parsed.intent is not Intent.CANCEL else []
        comment = await self._repo.insert_comment(
            {
                "session_id": live.id,
                "platform": incoming.platform.value,
                "external_id": external_id,
                "author_platform_id": author_id,
                "author_display_name": author,
                "text": text,
                "public_text": mask_phones(text),
                "commented_at": incoming.commented_at,
                "intent": parsed.intent.value,
                "phone": parsed.phone,
                "parsed_items": [[code, quantity] for code, quantity in parsed.items],
            }
        )
        if comment is None:
            return await self._already_received(live, incoming.platform.value, external_id)

        entries = self._entries(live, comment, parsed, unknown, items)
        if not entries:
            return Ingested(comment, [], duplicate=False)
        await self._repo.add_entries(entries)
        if parsed.intent is Intent.CANCEL:
            await self._cancel(live, entries)
        else:
            phone = parsed.phone or await self._repo.last_phone_of(live.id, author_id)
            for entry in entries:
                if entry.status == EntryStatus.HELD:  # a placeholder until placed
                    entry.contact_phone = phone
                    await self._place(live, entry, items[entry.code])
        await self._repo.flush()
        return Ingested(comment, entries, duplicate=False)

    async def feed(self, session_id: uuid.UUID, *, after_seq: int, limit: int) -> list[Comment]:
        await self._live.public_session(session_id)
        return list(await self._repo.comments_page(session_id, after_seq=after_seq, limit=limit))

    # ---- The host's queue ----------------------------------------------------------------

    async def queue(
        self,
        actor: AuthenticatedUser,
        session_id: uuid.UUID,
        *,
        statuses: Sequence[EntryStatus] | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[tuple[QueueEntry, Comment]], int]:
        live = await self._live.owned_session(actor, session_id)
        return await self._repo.queue_page(live.id, statuses=statuses, limit=limit, offset=offset)

    async def edit(
        self,
        actor: AuthenticatedUser,
        session_id: uuid.UUID,
        entry_id: uuid.UUID,
        edit: EntryEdit,
    ) -> tuple[QueueEntry, Comment]:
        """Correct what the parser read (code, quantity, phone) of an order not yet held."""
        live, entry, comment = await self._entry(actor, session_id, entry_id)
        self._ensure_open(entry)
        await self._apply(live, entry, edit)
        entry.handled_by_user_id, entry.handled_at = actor.id, self._clock()
        await self._repo.flush()
        return entry, comment

    async def accept(
        self,
        actor: AuthenticatedUser,
        session_id: uuid.UUID,
        entry_id: uuid.UUID,
        edit: EntryEdit | None = None,
    ) -> tuple[QueueEntry, Comment]:
        """Place the order of an entry that failed or waited, after the host's corrections;
        the outcome (held, or why not) is the entry's new status."""
        live, entry, comment = await self._entry(actor, session_id, entry_id)
        self._ensure_open(entry)
        if edit is not None:
            await self._apply(live, entry, edit)
        entry.handled_by_user_id, entry.handled_at = actor.id, self._clock()
        if entry.item_id is None:
            entry.status, entry.reason = EntryStatus.UNKNOWN_CODE.value, "no item has this code"
        else:
            item = (await self._live.codes(live.id)).get(entry.code)
            if item is not None:
                await self._place(live, entry, item)
        await self._repo.flush()
        return entry, comment

    async def reject(
        self, actor: AuthenticatedUser, session_id: uuid.UUID, entry_id: uuid.UUID
    ) -> tuple[QueueEntry, Comment]:
        """Refuse an entry: a held order is cancelled (its stock goes back), a failed one
        is dismissed."""
        _, entry, comment = await self._entry(actor, session_id, entry_id)
        state = entry.state
        if state is EntryStatus.HELD and entry.order_id is not None:
            error = await self._cancel_order(entry.order_id, HOST_REJECT_REASON)
            if error is not None:
                raise QueueEntryNotActionable(f"the order cannot be cancelled: {error.detail}")
        elif state not in FAILED_STATUSES:
            raise QueueEntryNotActionable(f"the entry is {entry.status}")
        entry.status, entry.reason = EntryStatus.REJECTED.value, "rejected by the host"
        entry.handled_by_user_id, entry.handled_at = actor.id, self._clock()
        await self._repo.flush()
        return entry, comment

    # ---- Internals -----------------------------------------------------------------------

    def _entries(
        self,
        live: LiveSession,
        comment: Comment,
        parsed: ParsedComment,
        unknown: list[tuple[str, int]],
        items: dict[str, LiveItem],
    ) -> list[QueueEntry]:
        key = buyer_key(comment.platform, comment.author_platform_id)

        def entry(code: str, quantity: int | None, status: EntryStatus, reason: str) -> QueueEntry:
            item = items.get(code)
            return QueueEntry(
                id=uuid.uuid4(),
                session_id=live.id,
                comment_id=comment.id,
                comment_seq=comment.seq,
                position=len(made),
                intent=Intent.ORDER.value if parsed.intent is not Intent.CANCEL else "cancel",
                item_id=item.id if item else None,
                code=code,
                quantity=quantity,
                status=status.value,
                reason=reason,
                buyer_key=key,
                buyer_display_name=comment.author_display_name,
                contact_phone=parsed.phone,
            )

        made: list[QueueEntry] = []
        for code, quantity in parsed.items:
            # Orders start as HELD placeholders and are placed right after; cancels are
            # settled by _cancel.
            made.append(entry(code, quantity, EntryStatus.HELD, ""))
        for code, quantity in unknown:
            made.append(entry(code, quantity, EntryStatus.UNKNOWN_CODE, f"no item {code} here"))
        return made

    async def _place(self, live: LiveSession, entry: QueueEntry, item: LiveItem) -> None:
        """One order for one code, in a savepoint; the entry records the outcome."""
        if live.state is not SessionStatus.LIVE:
            entry.status, entry.reason = (
                EntryStatus.SESSION_NOT_LIVE.value,
                f"the session is {live.status}",
            )
            return
        if not item.is_pinned:
            entry.status, entry.reason = (
                EntryStatus.ITEM_UNPINNED.value,
                f"{item.code} is no longer pinned",
            )
            return
        if entry.contact_phone is None:
            entry.status = EntryStatus.NEEDS_PHONE.value
            entry.reason = "no phone number in the comment nor earlier: ask the buyer for one"
            return
        request = PlaceOrder(
            buyer_user_id=None,
            contact_phone=entry.contact_phone,
            lines=[LineRequest(livestream_item_id=item.id, quantity=entry.quantity or 1)],
            payment_method=None,
            source=ORDER_SOURCE,
            buyer_key=entry.buyer_key,
            hold_seconds=live.hold_seconds,
        )
        # Read before the savepoint: its rollback expires the item, and reading an expired
        # attribute afterwards would need I/O outside the greenlet (a 500, seen in the soak).
        shown = _Shown(code=item.code, per_buyer_limit=item.per_buyer_limit)
        try:
            async with self._uow.session.begin_nested():
                order = await self._orders.place_order(request)
                details = await self._orders.lines_of(order.id)
        except MarketplaceError as error:
            # The savepoint's rollback also dropped the events it had queued.
            status = _ERROR_STATUS.get(error.code, EntryStatus.ORDER_FAILED)
            entry.status, entry.reason = status.value, _reason(status, error, shown)
            entry.order_id = None
            return
        entry.status, entry.reason = EntryStatus.HELD.value, ""
        entry.order_id = order.id
        entry.unit_price_amount = next(
            (
                line.unit_price_amount
                for line in details.lines
                if line.livestream_item_id == item.id
            ),
            None,
        )
        self._events.add(
            LiveEvent(
                EventType.ORDER_ACCEPTED,
                live.id,
                self._clock(),
                public={
                    "code": item.code,
                    "quantity": entry.quantity,
                    "buyer": short_name(entry.buyer_display_name),
                },
                host={
                    "code": item.code,
                    "quantity": entry.quantity,
                    "buyer": entry.buyer_display_name,
                    "entry_id": entry.id,
                    "order_id": order.id,
                },
            )
        )

    async def _cancel(self, live: LiveSession, entries: Sequence[QueueEntry]) -> None:
        """Release the commenter's held (or waiting) orders for each code named."""
        for entry in entries:
            if entry.item_id is None:
                continue
            held = await self._repo.held_entries(live.id, entry.buyer_key, entry.item_id)
            released = 0
            for target in held:
                if target.order_id is not None:
                    error = await self._cancel_order(target.order_id, CANCEL_REASON)
                    if error is not None:
                        continue
                target.status = EntryStatus.CANCELLED.value
                target.reason = "cancelled by the buyer's comment"
                released += target.quantity or 0
            if released:
                entry.status, entry.reason = EntryStatus.RELEASED.value, f"released {released}"
            else:
                entry.status = EntryStatus.NOTHING_TO_CANCEL.value
                entry.reason = "nothing held for this buyer and code"

    async def _cancel_order(self, order_id: uuid.UUID, reason: str) -> MarketplaceError | None:
        try:
            async with self._uow.session.begin_nested():
                await self._orders.cancel(order_id, by=None, reason=reason)
        except MarketplaceError as error:
            log.info("livestream_order_not_cancelled", order_id=str(order_id), code=error.code)
            return error
        return None

    async def _already_received(
        self, live: LiveSession, platform: str, external_id: str
    ) -> Ingested:
        comment = await self._repo.comment_by_external_id(platform, external_id)
        if comment is None:  # deleted in between: nothing to return, nothing to redo
            raise CommentInOtherSession()
        if comment.session_id != live.id:
            raise CommentInOtherSession()
        return Ingested(comment, await self._repo.entries_of_comment(comment.id), duplicate=True)

    async def _entry(
        self, actor: AuthenticatedUser, session_id: uuid.UUID, entry_id: uuid.UUID
    ) -> tuple[LiveSession, QueueEntry, Comment]:
        live = await self._live.owned_session(actor, session_id)
        found = await self._repo.get_entry(entry_id, lock=True)
        if found is None or found[0].session_id != live.id:
            raise QueueEntryNotFound()
        return live, found[0], found[1]

    @staticmethod
    def _ensure_open(entry: QueueEntry) -> None:
        if entry.intent != Intent.ORDER.value or entry.state not in FAILED_STATUSES:
            raise QueueEntryNotActionable(f"the entry is {entry.status}")

    async def _apply(self, live: LiveSession, entry: QueueEntry, edit: EntryEdit) -> None:
        if edit.code is not None:
            code = normalise_code(edit.code)
            item = (await self._live.codes(live.id)).get(code)
            if item is None:
                raise ValidationFailed.for_field("code", f"no item {code} in this session")
            entry.code, entry.item_id = code, item.id
        if edit.quantity is not None:
            if edit.quantity < 1:
                raise ValidationFailed.for_field("quantity", "must be at least 1")
            entry.quantity = edit.quantity
        if edit.phone is not None:
            phone = normalise_phone(edit.phone)
            if not is_valid_phone(phone):
                raise ValidationFailed.for_field("phone", "a Vietnamese mobile number")
            entry.contact_phone = phone


def _identifier(field_name: str, value: str) -> str:
    """Platform ids are opaque but printable: they are keys, shown to nobody."""
    if not value or not value.isprintable() or value != value.strip():
        raise ValidationFailed.for_field(field_name, "printable, without surrounding spaces")
    return value


@dataclass(frozen=True, slots=True)
class _Shown:
    """What a refusal's reason names of the item."""

    code: str
    per_buyer_limit: int


def _reason(status: EntryStatus, error: MarketplaceError, item: _Shown) -> str:
    """What the host reads next to the comment, in the queue's own words."""
    if status is EntryStatus.ACCEPTED_PENDING_ORDERS:
        return "valid, but orders cannot be placed for livestream items yet; nothing is held"
    if status is EntryStatus.SOLD_OUT:
        available = error.extra.get("available")
        return f"only {available} left" if available else f"{item.code} is sold out"
    if status is EntryStatus.LIMIT_REACHED:
        return f"over the limit of {item.per_buyer_limit} per buyer for {item.code}"
    return error.detail[:300]

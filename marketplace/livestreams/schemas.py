"""Request and response bodies of the livestreams domain.

Public reads never carry a phone number (comment text is masked) nor exact stock (a bucket);
the host's reads carry exact stock, and phone numbers only masked.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import msgspec

from marketplace.catalog.models import MAX_PRICE_AMOUNT
from marketplace.livestreams.comments import mask_phones
from marketplace.livestreams.events import short_name, stock_bucket
from marketplace.livestreams.models import (
    DEFAULT_HOLD_SECONDS,
    MAX_PER_BUYER_LIMIT,
    MAX_STOCK_CAP,
    Comment,
    Complaint,
    ComplaintStatus,
    DocumentKind,
    EntryStatus,
    FlashDeal,
    Follow,
    HostVerification,
    LiveSession,
    Platform,
    QueueEntry,
    Reminder,
    SessionStatus,
    VerificationStatus,
)
from marketplace.livestreams.service import ItemView, SessionView

MAX_COMMENT_BODY = 20_000
"""What the decoder accepts at all; the comment rule itself (at most 2,000 characters) is
checked by the service so the answer names it."""

Title = Annotated[str, msgspec.Meta(max_length=400, examples=["Cam sành Hương Trà vụ mới"])]
Rules = Annotated[str, msgspec.Meta(max_length=20_000)]
Price = Annotated[int, msgspec.Meta(ge=1, le=MAX_PRICE_AMOUNT, examples=[45_000])]
StockCap = Annotated[int, msgspec.Meta(ge=1, le=MAX_STOCK_CAP, examples=[50])]
PerBuyer = Annotated[int, msgspec.Meta(ge=1, le=MAX_PER_BUYER_LIMIT, examples=[5])]
CodeText = Annotated[str, msgspec.Meta(max_length=32, examples=["CAM1"])]
ShortText = Annotated[str, msgspec.Meta(max_length=2_000)]


class SessionCreate(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    platform: Platform
    scheduled_start_at: datetime
    scheduled_end_at: datetime
    rules_text: Rules = ""
    hold_seconds: int = DEFAULT_HOLD_SECONDS
    household_ids: list[uuid.UUID] = msgspec.field(default_factory=list)
    cooperative_id: uuid.UUID | None = None


class SessionUpdate(msgspec.Struct, forbid_unknown_fields=True):
    title: Title | None = None
    platform: Platform | None = None
    scheduled_start_at: datetime | None = None
    scheduled_end_at: datetime | None = None
    rules_text: Rules | None = None
    hold_seconds: int | None = None
    household_ids: list[uuid.UUID] | None = None
    cooperative_id: uuid.UUID | None = None


class ItemCreate(msgspec.Struct, forbid_unknown_fields=True):
    variant_id: uuid.UUID
    code: CodeText
    live_price_amount: Price
    stock_cap: StockCap
    per_buyer_limit: PerBuyer


class ItemUpdate(msgspec.Struct, forbid_unknown_fields=True):
    live_price_amount: Price | None = None
    stock_cap: StockCap | None = None
    per_buyer_limit: PerBuyer | None = None


class FlashDealCreate(msgspec.Struct, forbid_unknown_fields=True):
    price_amount: Price
    countdown_seconds: Annotated[int, msgspec.Meta(examples=[30])]
    duration_minutes: Annotated[int, msgspec.Meta(examples=[5])]


class CommentCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A comment as a platform connector relays it."""

    platform: Platform
    external_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    author_platform_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    author_display_name: Annotated[str, msgspec.Meta(max_length=400)]
    text: Annotated[str, msgspec.Meta(max_length=MAX_COMMENT_BODY)]
    commented_at: datetime


class QueueEntryUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """The host's correction of a parsed order before accepting it."""

    code: CodeText | None = None
    quantity: PerBuyer | None = None
    phone: Annotated[str, msgspec.Meta(max_length=20, examples=["0912345678"])] | None = None


class VerificationCreate(msgspec.Struct, forbid_unknown_fields=True):
    document_kind: DocumentKind
    document_reference: Annotated[
        str, msgspec.Meta(max_length=400, examples=["kyc/2026/11/host-cccd-front.jpg"])
    ]


class VerificationReview(msgspec.Struct, forbid_unknown_fields=True):
    note: ShortText = ""


class ComplaintCreate(msgspec.Struct, forbid_unknown_fields=True):
    body: Annotated[str, msgspec.Meta(max_length=MAX_COMMENT_BODY)]


class ComplaintAnswer(msgspec.Struct, forbid_unknown_fields=True):
    answer: Annotated[str, msgspec.Meta(max_length=MAX_COMMENT_BODY)]


class FollowCreate(msgspec.Struct, forbid_unknown_fields=True):
    household_id: uuid.UUID | None = None
    cooperative_id: uuid.UUID | None = None


class SessionRead(msgspec.Struct):
    id: uuid.UUID
    host_user_id: uuid.UUID
    title: str
    platform: Platform
    status: SessionStatus
    scheduled_start_at: datetime
    scheduled_end_at: datetime
    rules_text: str
    hold_seconds: int
    household_ids: list[uuid.UUID]
    cooperative_id: uuid.UUID | None
    scheduled_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    cancelled_at: datetime | None
    created_at: datetime


class SessionPage(msgspec.Struct):
    items: list[SessionRead]
    total: int
    limit: int
    offset: int


class FlashDealRead(msgspec.Struct):
    id: uuid.UUID
    price_amount: int
    countdown_seconds: int
    duration_seconds: int
    starts_at: datetime
    ends_at: datetime
    running: bool


class ItemRead(msgspec.Struct):
    """An item as buyers see it: the price that applies now, stock as a bucket."""

    id: uuid.UUID
    code: str
    title: str
    price_amount: int
    live_price_amount: int
    per_buyer_limit: int
    stock: str
    sold_out: bool
    pinned: bool
    flash_deal: FlashDealRead | None
    server_now: datetime


class HostItemRead(msgspec.Struct):
    id: uuid.UUID
    code: str
    title: str
    variant_id: uuid.UUID
    product_id: uuid.UUID
    household_id: uuid.UUID | None
    cooperative_id: uuid.UUID | None
    price_amount: int
    live_price_amount: int
    per_buyer_limit: int
    stock_cap: int
    available: int
    held_or_sold: int
    pinned_at: datetime
    unpinned_at: datetime | None
    sold_out_at: datetime | None
    flash_deal: FlashDealRead | None


class ConnectorTokenRead(msgspec.Struct):
    token: str
    """Shown once; the connector sends it as `X-Connector-Token`."""


class CommentRead(msgspec.Struct):
    """A comment in the public feed: phone numbers masked, the author's name shortened."""

    id: uuid.UUID
    seq: int
    author: str
    text: str
    intent: str
    commented_at: datetime


class CommentPage(msgspec.Struct):
    items: list[CommentRead]
    next_after: int


class QueueEntryRead(msgspec.Struct):
    id: uuid.UUID
    comment_id: uuid.UUID
    comment_seq: int
    position: int
    intent: str
    code: str
    item_id: uuid.UUID | None
    quantity: int | None
    status: EntryStatus
    reason: str
    buyer_key: str
    buyer_display_name: str
    contact_phone_masked: str | None
    comment_text: str
    """Masked like the public feed: the host reads the order, not the number."""
    order_id: uuid.UUID | None
    unit_price_amount: int | None
    handled_at: datetime | None


class QueuePage(msgspec.Struct):
    items: list[QueueEntryRead]
    total: int
    limit: int
    offset: int


class IngestedCommentRead(msgspec.Struct):
    id: uuid.UUID
    seq: int
    intent: str
    duplicate: bool
    """True when this (platform, external id) had been received before: nothing new."""
    entries: list[QueueEntryRead]


class VerificationRead(msgspec.Struct):
    id: uuid.UUID
    host_user_id: uuid.UUID
    document_kind: DocumentKind
    document_reference: str
    status: VerificationStatus
    submitted_at: datetime
    reviewed_by_user_id: uuid.UUID | None
    reviewed_at: datetime | None
    review_note: str


class HostStatusRead(msgspec.Struct):
    verified: bool
    latest: VerificationRead | None


class VerificationPage(msgspec.Struct):
    items: list[VerificationRead]
    total: int
    limit: int
    offset: int


class ComplaintRead(msgspec.Struct):
    id: uuid.UUID
    session_id: uuid.UUID
    complainant_user_id: uuid.UUID
    body: str
    status: ComplaintStatus
    answer: str | None
    answered_by_user_id: uuid.UUID | None
    answered_at: datetime | None
    closed_by_user_id: uuid.UUID | None
    closed_at: datetime | None
    created_at: datetime


class ComplaintPage(msgspec.Struct):
    items: list[ComplaintRead]
    total: int
    limit: int
    offset: int


class FollowRead(msgspec.Struct):
    id: uuid.UUID
    household_id: uuid.UUID | None
    cooperative_id: uuid.UUID | None
    created_at: datetime


class ReminderRead(msgspec.Struct):
    session_id: uuid.UUID
    title: str
    scheduled_start_at: datetime
    platform: Platform
    sent_at: datetime


class ItemReport(msgspec.Struct):
    item_id: uuid.UUID
    code: str
    title: str
    household_id: uuid.UUID | None
    cooperative_id: uuid.UUID | None
    stock_cap: int
    units_held_or_sold: int
    units_paid: int
    revenue_amount: int
    sold_out_at: datetime | None
    seconds_to_sell_out: int | None


class SellerRevenue(msgspec.Struct):
    household_id: uuid.UUID | None
    cooperative_id: uuid.UUID | None
    revenue_amount: int
    units_paid: int


class SessionReport(msgspec.Struct):
    session_id: uuid.UUID
    status: SessionStatus
    started_at: datetime | None
    ended_at: datetime | None
    comments: int
    order_comments: int
    cancel_comments: int
    orders_placed: int
    orders_paid: int
    revenue_amount: int
    """Paid (or cash-on-delivery confirmed) order lines of this session's items."""
    comment_to_paid_conversion: float
    """Order comments with at least one paid order, over all order comments: the share of
    "chốt" that became money."""
    queue_outcomes: dict[str, int]
    items: list[ItemReport]
    revenue_by_seller: list[SellerRevenue]
    orders_data: str
    """`complete`, or `incomplete` when some order could not be read (its figures are then
    missing from the totals)."""


def session_read(view: SessionView) -> SessionRead:
    live = view.session
    cooperative = next((s.cooperative_id for s in view.sellers if s.cooperative_id), None)
    return SessionRead(
        id=live.id,
        host_user_id=live.host_user_id,
        title=live.title,
        platform=Platform(live.platform),
        status=SessionStatus(live.status),
        scheduled_start_at=live.scheduled_start_at,
        scheduled_end_at=live.scheduled_end_at,
        rules_text=live.rules_text,
        hold_seconds=live.hold_seconds,
        household_ids=[s.household_id for s in view.sellers if s.household_id is not None],
        cooperative_id=cooperative,
        scheduled_at=live.scheduled_at,
        started_at=live.started_at,
        ended_at=live.ended_at,
        cancelled_at=live.cancelled_at,
        created_at=live.created_at,
    )


def flash_read(deal: FlashDeal | None, now: datetime) -> FlashDealRead | None:
    if deal is None:
        return None
    return FlashDealRead(
        id=deal.id,
        price_amount=deal.price_amount,
        countdown_seconds=deal.countdown_seconds,
        duration_seconds=deal.duration_seconds,
        starts_at=deal.starts_at,
        ends_at=deal.ends_at,
        running=deal.applies_at(now),
    )


def item_read(view: ItemView, now: datetime) -> ItemRead:
    item = view.item
    return ItemRead(
        id=item.id,
        code=item.code,
        title=item.title,
        price_amount=view.price_amount,
        live_price_amount=item.live_price_amount,
        per_buyer_limit=item.per_buyer_limit,
        stock=stock_bucket(item.available),
        sold_out=item.is_pinned and item.available == 0,
        pinned=item.is_pinned,
        flash_deal=flash_read(view.flash, now),
        server_now=now,
    )


def host_item_read(view: ItemView, now: datetime) -> HostItemRead:
    item = view.item
    return HostItemRead(
        id=item.id,
        code=item.code,
        title=item.title,
        variant_id=item.variant_id,
        product_id=item.product_id,
        household_id=item.household_id,
        cooperative_id=item.cooperative_id,
        price_amount=view.price_amount,
        live_price_amount=item.live_price_amount,
        per_buyer_limit=item.per_buyer_limit,
        stock_cap=item.stock_cap,
        available=item.available,
        held_or_sold=view.held_or_sold,
        pinned_at=item.pinned_at,
        unpinned_at=item.unpinned_at,
        sold_out_at=item.sold_out_at,
        flash_deal=flash_read(view.flash, now),
    )


def comment_read(comment: Comment) -> CommentRead:
    return CommentRead(
        id=comment.id,
        seq=comment.seq,
        author=short_name(comment.author_display_name),
        text=comment.public_text,
        intent=comment.intent,
        commented_at=comment.commented_at,
    )


def masked_phone(phone: str | None) -> str | None:
    return None if phone is None else mask_phones(phone)


def entry_read(entry: QueueEntry, comment: Comment) -> QueueEntryRead:
    return QueueEntryRead(
        id=entry.id,
        comment_id=entry.comment_id,
        comment_seq=entry.comment_seq,
        position=entry.position,
        intent=entry.intent,
        code=entry.code,
        item_id=entry.item_id,
        quantity=entry.quantity,
        status=EntryStatus(entry.status),
        reason=entry.reason,
        buyer_key=entry.buyer_key,
        buyer_display_name=entry.buyer_display_name,
        contact_phone_masked=masked_phone(entry.contact_phone),
        comment_text=comment.public_text,
        order_id=entry.order_id,
        unit_price_amount=entry.unit_price_amount,
        handled_at=entry.handled_at,
    )


def verification_read(verification: HostVerification) -> VerificationRead:
    return VerificationRead(
        id=verification.id,
        host_user_id=verification.host_user_id,
        document_kind=DocumentKind(verification.document_kind),
        document_reference=verification.document_reference,
        status=VerificationStatus(verification.status),
        submitted_at=verification.submitted_at,
        reviewed_by_user_id=verification.reviewed_by_user_id,
        reviewed_at=verification.reviewed_at,
        review_note=verification.review_note,
    )


def complaint_read(complaint: Complaint) -> ComplaintRead:
    return ComplaintRead(
        id=complaint.id,
        session_id=complaint.session_id,
        complainant_user_id=complaint.complainant_user_id,
        body=complaint.body,
        status=ComplaintStatus(complaint.status),
        answer=complaint.answer,
        answered_by_user_id=complaint.answered_by_user_id,
        answered_at=complaint.answered_at,
        closed_by_user_id=complaint.closed_by_user_id,
        closed_at=complaint.closed_at,
        created_at=complaint.created_at,
    )


def follow_read(follow: Follow) -> FollowRead:
    return FollowRead(
        id=follow.id,
        household_id=follow.household_id,
        cooperative_id=follow.cooperative_id,
        created_at=follow.created_at,
    )


def reminder_read(rows: Sequence[tuple[Reminder, LiveSession]]) -> list[ReminderRead]:
    return [
        ReminderRead(
            session_id=live.id,
            title=live.title,
            scheduled_start_at=live.scheduled_start_at,
            platform=Platform(live.platform),
            sent_at=reminder.sent_at,
        )
        for reminder, live in rows
    ]

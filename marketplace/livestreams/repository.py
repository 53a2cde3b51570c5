"""Every query of the livestreams domain.

Stock moves are single statements, and locks are always taken in one order: a buyer's
counter row, then the item, then the variant. Pinning writes the catalog's `variants` row
directly: moving the stock cap out of `available` must be one conditional UPDATE, not a
read and a write through another service.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, and_, case, exists, func, literal, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.catalog.models import Product, Variant
from marketplace.livestreams.errors import ItemCodeTaken, VerificationPending
from marketplace.livestreams.models import (
    BuyerCount,
    Comment,
    Complaint,
    EntryStatus,
    FlashDeal,
    Follow,
    HostVerification,
    LiveItem,
    LiveSession,
    QueueEntry,
    Reminder,
    SessionSeller,
    SessionStatus,
    VerificationStatus,
)
from marketplace.sellers.models import Cooperative, Household


@dataclass(frozen=True, slots=True)
class ReleasedStock:
    item_id: uuid.UUID
    variant_id: uuid.UUID
    quantity: int


@dataclass(frozen=True, slots=True)
class DueReminder:
    session_id: uuid.UUID
    user_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ItemSales:
    item_id: uuid.UUID
    held_or_sold: int


class LivestreamRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def flush(self) -> None:
        await self._session.flush()

    # --- sessions -------------------------------------------------------------------------

    async def add_session(self, live: LiveSession, sellers: Sequence[SessionSeller]) -> None:
        self._session.add(live)
        await self._session.flush()
        for seller in sellers:
            seller.session_id = live.id
            self._session.add(seller)
        await self._session.flush()

    async def get_session(self, session_id: uuid.UUID, *, lock: bool = False) -> LiveSession | None:
        query = select(LiveSession).where(LiveSession.id == session_id)
        if lock:
            query = query.with_for_update()
        result = await self._session.execute(query)
        return result.scalar_one_or_none()

    async def session_by_connector_token(self, token_hash: str) -> LiveSession | None:
        result = await self._session.execute(
            select(LiveSession).where(LiveSession.connector_token_hash == token_hash)
        )
        return result.scalar_one_or_none()

    async def sellers_of(self, session_id: uuid.UUID) -> Sequence[SessionSeller]:
        result = await self._session.execute(
            select(SessionSeller)
            .where(SessionSeller.session_id == session_id)
            .order_by(SessionSeller.created_at, SessionSeller.id)
        )
        return result.scalars().all()

    async def sellers_of_many(
        self, session_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[SessionSeller]]:
        out: dict[uuid.UUID, list[SessionSeller]] = {sid: [] for sid in session_ids}
        if not session_ids:
            return out
        result = await self._session.execute(
            select(SessionSeller)
            .where(SessionSeller.session_id.in_(session_ids))
            .order_by(SessionSeller.created_at, SessionSeller.id)
        )
        for seller in result.scalars():
            out[seller.session_id].append(seller)
        return out

    async def replace_sellers(
        self, session_id: uuid.UUID, sellers: Sequence[SessionSeller]
    ) -> None:
        for old in await self.sellers_of(session_id):
            await self._session.delete(old)
        await self._session.flush()
        for seller in sellers:
            seller.session_id = session_id
            self._session.add(seller)
        await self._session.flush()

    async def sessions_page(
        self,
        *,
        host_user_id: uuid.UUID | None,
        statuses: Sequence[SessionStatus] | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[LiveSession], int]:
        """Soonest first; a host's own list, or the public list of given states."""
        conditions = []
        if host_user_id is not None:
            conditions.append(LiveSession.host_user_id == host_user_id)
        if statuses:
            conditions.append(LiveSession.status.in_([s.value for s in statuses]))
        query = select(LiveSession).where(*conditions)
        total = await self._session.scalar(
            select(func.count()).select_from(LiveSession).where(*conditions)
        )
        rows = await self._session.execute(
            query.order_by(LiveSession.scheduled_start_at, LiveSession.id)
            .limit(limit)
            .offset(offset)
        )
        return rows.scalars().all(), int(total or 0)

    async def existing_households(self, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        if not ids:
            return set()
        result = await self._session.execute(select(Household.id).where(Household.id.in_(ids)))
        return set(result.scalars())

    async def cooperative_exists(self, cooperative_id: uuid.UUID) -> bool:
        found = await self._session.scalar(select(exists().where(Cooperative.id == cooperative_id)))
        return bool(found)

    # --- host verification ----------------------------------------------------------------

    async def host_is_verified(self, host_user_id: uuid.UUID) -> bool:
        found = await self._session.scalar(
            select(
                exists().where(
                    HostVerification.host_user_id == host_user_id,
                    HostVerification.status == VerificationStatus.APPROVED.value,
                )
            )
        )
        return bool(found)

    async def add_verification(self, verification: HostVerification) -> None:
        """One submission waits at a time (partial unique index): a second, even a
        concurrent one, is `verification_pending`."""
        try:
            async with self._session.begin_nested():
                self._session.add(verification)
        except IntegrityError as exc:
            if "uq_host_verifications_one_pending" in str(exc.orig):
                raise VerificationPending() from None
            raise

    async def latest_verification(self, host_user_id: uuid.UUID) -> HostVerification | None:
        result = await self._session.execute(
            select(HostVerification)
            .where(HostVerification.host_user_id == host_user_id)
            .order_by(HostVerification.submitted_at.desc(), HostVerification.id)
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def get_verification(
        self, verification_id: uuid.UUID, *, lock: bool = False
    ) -> HostVerification | None:
        query = select(HostVerification).where(HostVerification.id == verification_id)
        if lock:
            query = query.with_for_update()
        result = await self._session.execute(query)
        return result.scalar_one_or_none()

    async def verifications_page(
        self, *, status: VerificationStatus | None, limit: int, offset: int
    ) -> tuple[Sequence[HostVerification], int]:
        conditions = [] if status is None else [HostVerification.status == status.value]
        total = await self._session.scalar(
            select(func.count()).select_from(HostVerification).where(*conditions)
        )
        rows = await self._session.execute(
            select(HostVerification)
            .where(*conditions)
            .order_by(HostVerification.submitted_at, HostVerification.id)
            .limit(limit)
            .offset(offset)
        )
        return rows.scalars().all(), int(total or 0)

    # --- complaints -----------------------------------------------------------------------

    async def add(self, row: Complaint | FlashDeal | Follow) -> None:
        self._session.add(row)
        await self._session.flush()

    async def get_complaint(
        self, complaint_id: uuid.UUID, *, lock: bool = False
    ) -> Complaint | None:
        query = select(Complaint).where(Complaint.id == complaint_id)
        if lock:
            query = query.with_for_update()
        result = await self._session.execute(query)
        return result.scalar_one_or_none()

    async def complaints_page(
        self,
        *,
        status: str | None,
        complainant_user_id: uuid.UUID | None,
        session_id: uuid.UUID | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[Complaint], int]:
        conditions = []
        if status is not None:
            conditions.append(Complaint.status == status)
        if complainant_user_id is not None:
            conditions.append(Complaint.complainant_user_id == complainant_user_id)
        if session_id is not None:
            conditions.append(Complaint.session_id == session_id)
        total = await self._session.scalar(
            select(func.count()).select_from(Complaint).where(*conditions)
        )
        rows = await self._session.execute(
            select(Complaint)
            .where(*conditions)
            .order_by(Complaint.created_at, Complaint.id)
            .limit(limit)
            .offset(offset)
        )
        return rows.scalars().all(), int(total or 0)

    # --- items and stock ------------------------------------------------------------------

    async def variant_with_product(self, variant_id: uuid.UUID) -> tuple[Variant, Product] | None:
        result = await self._session.execute(
            select(Variant, Product)
            .join(Product, Product.id == Variant.product_id)
            .where(Variant.id == variant_id)
        )
        row = result.one_or_none()
        return None if row is None else (row[0], row[1])

    async def take_from_variant(self, variant_id: uuid.UUID, quantity: int) -> bool:
        """Move `quantity` out of the variant's stock, or nothing when it has less."""
        result = await self._session.execute(
            update(Variant)
            .where(Variant.id == variant_id, Variant.available >= quantity)
            .values(available=Variant.available - quantity)
            .returning(Variant.available)
        )
        return result.scalar_one_or_none() is not None

    async def give_to_variant(self, variant_id: uuid.UUID, quantity: int) -> None:
        if quantity > 0:
            await self._session.execute(
                update(Variant)
                .where(Variant.id == variant_id)
                .values(available=Variant.available + quantity)
            )

    async def add_item(self, item: LiveItem) -> None:
        """The code is unique in the session (stored upper case): a concurrent pin of the
        same code is `item_code_taken` here, and the savepoint undoes only the insert."""
        try:
            async with self._session.begin_nested():
                self._session.add(item)
        except IntegrityError as exc:
            if "uq_livestream_items_session_id_code" in str(exc.orig):
                raise ItemCodeTaken(f"code {item.code} is taken in this session") from None
            raise

    async def code_taken(self, session_id: uuid.UUID, code: str) -> bool:
        found = await self._session.scalar(
            select(exists().where(LiveItem.session_id == session_id, LiveItem.code == code))
        )
        return bool(found)

    async def get_item(self, item_id: uuid.UUID, *, lock: bool = False) -> LiveItem | None:
        query = select(LiveItem).where(LiveItem.id == item_id)
        if lock:
            query = query.with_for_update()
        result = await self._session.execute(query)
        return result.scalar_one_or_none()

    async def item_and_session(self, item_id: uuid.UUID) -> tuple[LiveItem, LiveSession] | None:
        result = await self._session.execute(
            select(LiveItem, LiveSession)
            .join(LiveSession, LiveSession.id == LiveItem.session_id)
            .where(LiveItem.id == item_id)
        )
        row = result.one_or_none()
        return None if row is None else (row[0], row[1])

    async def items_of(
        self, session_id: uuid.UUID, *, pinned_only: bool = False
    ) -> Sequence[LiveItem]:
        query = select(LiveItem).where(LiveItem.session_id == session_id)
        if pinned_only:
            query = query.where(LiveItem.unpinned_at.is_(None))
        result = await self._session.execute(query.order_by(LiveItem.pinned_at, LiveItem.code))
        return result.scalars().all()

    async def count_for_buyer(
        self, item_id: uuid.UUID, buyer_key: str, quantity: int, limit: int
    ) -> int | None:
        """Add to the buyer's count only if it stays within the limit; None when it would
        not. One statement, so two comments of one buyer at once cannot both pass."""
        statement = insert(BuyerCount).values(
            id=uuid.uuid4(), item_id=item_id, buyer_key=buyer_key, quantity=quantity
        )
        upsert = statement.on_conflict_do_update(
            index_elements=[BuyerCount.item_id, BuyerCount.buyer_key],
            set_={
                "quantity": BuyerCount.quantity + statement.excluded.quantity,
                "updated_at": func.now(),
            },
            where=BuyerCount.quantity + statement.excluded.quantity <= limit,
        ).returning(BuyerCount.quantity)
        result = await self._session.execute(upsert)
        return result.scalar_one_or_none()

    async def lock_buyer_counts(
        self, item_id: uuid.UUID, buyer_keys: Sequence[str], now: datetime
    ) -> dict[str, int]:
        """Lock every buyer's count row of an item (made at zero when new) and read it: the
        batch that holds them decides each buyer's orders alone. Keys are locked in sorted
        order, so two batches cannot deadlock on them."""
        keys = sorted(set(buyer_keys))
        if not keys:
            return {}
        rows = await self._session.execute(
            _LOCK_BUYER_COUNTS,
            {
                "ids": [uuid.uuid4() for _ in keys],
                "item_id": item_id,
                "keys": keys,
                "now": now,
            },
        )
        return {row.buyer_key: int(row.quantity) for row in rows}

    async def take_for_buyers(
        self, item_id: uuid.UUID, quantity: int, counts: dict[str, int], now: datetime
    ) -> int | None:
        """One statement for a batch: the buyers' new totals (rows `lock_buyer_counts`
        holds) and `quantity` taken from the item's counter as `take_from_item` does. The
        units left, or None when the item had less (or is no longer pinned)."""
        keys = sorted(counts)
        result = await self._session.execute(
            _TAKE_FOR_BUYERS,
            {
                "item_id": item_id,
                "quantity": quantity,
                "keys": keys,
                "quantities": [counts[key] for key in keys],
                "now": now,
            },
        )
        return result.scalar_one_or_none()

    async def lock_item_available(self, item_id: uuid.UUID) -> int | None:
        """The counter of a pinned item, its row locked until the commit; None when the
        item is gone or no longer pinned. FOR NO KEY UPDATE, the lock the UPDATE would
        take: FOR UPDATE would also block the foreign-key checks (KEY SHARE) of the rows
        another batch inserts for the item, and two batches would deadlock."""
        result = await self._session.execute(
            select(LiveItem.available)
            .where(LiveItem.id == item_id, LiveItem.unpinned_at.is_(None))
            .with_for_update(key_share=True)
        )
        return result.scalar_one_or_none()

    async def uncount_for_buyer(self, item_id: uuid.UUID, buyer_key: str, quantity: int) -> None:
        await self._session.execute(
            update(BuyerCount)
            .where(BuyerCount.item_id == item_id, BuyerCount.buyer_key == buyer_key)
            .values(quantity=func.greatest(BuyerCount.quantity - quantity, 0))
        )

    async def take_from_item(self, item_id: uuid.UUID, quantity: int, now: datetime) -> int | None:
        """Take from a pinned item's own counter; the units left, or None when it has less
        than asked (or is no longer pinned). The first time it reaches zero is kept."""
        result = await self._session.execute(
            update(LiveItem)
            .where(
                LiveItem.id == item_id,
                LiveItem.unpinned_at.is_(None),
                LiveItem.available >= quantity,
            )
            .values(
                available=LiveItem.available - quantity,
                sold_out_at=case(
                    (
                        LiveItem.available - quantity == 0,
                        func.coalesce(LiveItem.sold_out_at, now),
                    ),
                    else_=LiveItem.sold_out_at,
                ),
            )
            .returning(LiveItem.available)
        )
        return result.scalar_one_or_none()

    async def item_available(self, item_id: uuid.UUID) -> int | None:
        result = await self._session.execute(
            select(LiveItem.available).where(LiveItem.id == item_id)
        )
        return result.scalar_one_or_none()

    async def give_to_item(self, item_id: uuid.UUID, quantity: int) -> int | None:
        """Return units to a pinned item; None when it is no longer pinned (they then go
        back to the variant)."""
        result = await self._session.execute(
            update(LiveItem)
            .where(
                LiveItem.id == item_id,
                LiveItem.unpinned_at.is_(None),
                LiveItem.available + quantity <= LiveItem.stock_cap,
            )
            .values(available=LiveItem.available + quantity)
            .returning(LiveItem.available)
        )
        return result.scalar_one_or_none()

    async def resize_item(self, item_id: uuid.UUID, delta: int) -> int | None:
        """Change the stock cap and the counter by the same amount; None when the counter
        would go below zero (more is already held than the new cap allows)."""
        result = await self._session.execute(
            update(LiveItem)
            .where(
                LiveItem.id == item_id,
                LiveItem.unpinned_at.is_(None),
                LiveItem.available + delta >= 0,
                LiveItem.stock_cap + delta >= 1,
            )
            .values(available=LiveItem.available + delta, stock_cap=LiveItem.stock_cap + delta)
            .returning(LiveItem.available)
        )
        return result.scalar_one_or_none()

    async def unpin(
        self, session_id: uuid.UUID, now: datetime, item_id: uuid.UUID | None = None
    ) -> list[ReleasedStock]:
        """Unpin one item or every pinned item of the session and give each one's unsold
        remainder back to its variant. Items are locked before variants, as everywhere."""
        old = (
            select(LiveItem.id, LiveItem.available)
            .where(LiveItem.session_id == session_id, LiveItem.unpinned_at.is_(None))
            .with_for_update()
        )
        if item_id is not None:
            old = old.where(LiveItem.id == item_id)
        old_rows = old.cte("old")
        result = await self._session.execute(
            update(LiveItem)
            .where(LiveItem.id == old_rows.c.id)
            .values(available=0, unpinned_at=now)
            .returning(LiveItem.id, LiveItem.variant_id, old_rows.c.available)
        )
        released = [
            ReleasedStock(item_id=row[0], variant_id=row[1], quantity=row[2]) for row in result
        ]
        by_variant: dict[uuid.UUID, int] = {}
        for stock in released:
            by_variant[stock.variant_id] = by_variant.get(stock.variant_id, 0) + stock.quantity
        for variant_id in sorted(by_variant):
            await self.give_to_variant(variant_id, by_variant[variant_id])
        return released

    async def held_or_sold(self, session_id: uuid.UUID) -> list[ItemSales]:
        """Per item, the units buyers hold or bought (their counters' sum)."""
        result = await self._session.execute(
            select(LiveItem.id, func.coalesce(func.sum(BuyerCount.quantity), 0))
            .outerjoin(BuyerCount, BuyerCount.item_id == LiveItem.id)
            .where(LiveItem.session_id == session_id)
            .group_by(LiveItem.id)
        )
        return [ItemSales(item_id=row[0], held_or_sold=int(row[1])) for row in result]

    # --- flash deals ----------------------------------------------------------------------

    async def flash_price_at(self, item_id: uuid.UUID, now: datetime) -> int | None:
        result = await self._session.execute(
            select(FlashDeal.price_amount)
            .where(
                FlashDeal.item_id == item_id,
                FlashDeal.cancelled_at.is_(None),
                FlashDeal.starts_at <= now,
                FlashDeal.ends_at > now,
            )
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def unfinished_flash_deals(
        self, now: datetime, *, session_id: uuid.UUID, item_id: uuid.UUID | None = None
    ) -> Sequence[FlashDeal]:
        """Deals counting down or running at `now` (not cancelled, not yet over)."""
        query = select(FlashDeal).where(
            FlashDeal.session_id == session_id,
            FlashDeal.cancelled_at.is_(None),
            FlashDeal.ends_at > now,
        )
        if item_id is not None:
            query = query.where(FlashDeal.item_id == item_id)
        result = await self._session.execute(query.order_by(FlashDeal.starts_at))
        return result.scalars().all()

    async def cancel_flash_deals(self, deal_ids: Sequence[uuid.UUID], now: datetime) -> None:
        if deal_ids:
            await self._session.execute(
                update(FlashDeal).where(FlashDeal.id.in_(deal_ids)).values(cancelled_at=now)
            )

    # --- comments and the live queue -------------------------------------------------------

    async def insert_comment(self, values: dict[str, object]) -> Comment | None:
        """The new comment, or None when (platform, external id) was already received."""
        statement = (
            insert(Comment)
            .values(id=uuid.uuid4(), **values)
            .on_conflict_do_nothing(index_elements=[Comment.platform, Comment.external_id])
            .returning(Comment)
        )
        result = await self._session.execute(statement)
        return result.scalar_one_or_none()

    async def comment_by_external_id(self, platform: str, external_id: str) -> Comment | None:
        result = await self._session.execute(
            select(Comment).where(Comment.platform == platform, Comment.external_id == external_id)
        )
        return result.scalar_one_or_none()

    async def comments_page(
        self, session_id: uuid.UUID, *, after_seq: int, limit: int
    ) -> Sequence[Comment]:
        result = await self._session.execute(
            select(Comment)
            .where(Comment.session_id == session_id, Comment.seq > after_seq)
            .order_by(Comment.seq)
            .limit(limit)
        )
        return result.scalars().all()

    async def last_phone_of(self, session_id: uuid.UUID, author_platform_id: str) -> str | None:
        result = await self._session.execute(
            select(Comment.phone)
            .where(
                Comment.session_id == session_id,
                Comment.author_platform_id == author_platform_id,
                Comment.phone.is_not(None),
            )
            .order_by(Comment.seq.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def add_entries(self, entries: Sequence[QueueEntry]) -> None:
        self._session.add_all(entries)
        await self._session.flush()

    async def entries_of_comment(self, comment_id: uuid.UUID) -> Sequence[QueueEntry]:
        result = await self._session.execute(
            select(QueueEntry)
            .where(QueueEntry.comment_id == comment_id)
            .order_by(QueueEntry.position)
        )
        return result.scalars().all()

    async def queue_page(
        self,
        session_id: uuid.UUID,
        *,
        statuses: Sequence[EntryStatus] | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[tuple[QueueEntry, Comment]], int]:
        conditions = [QueueEntry.session_id == session_id]
        if statuses:
            conditions.append(QueueEntry.status.in_([s.value for s in statuses]))
        total = await self._session.scalar(
            select(func.count()).select_from(QueueEntry).where(*conditions)
        )
        rows = await self._session.execute(
            select(QueueEntry, Comment)
            .join(Comment, Comment.id == QueueEntry.comment_id)
            .where(*conditions)
            .order_by(QueueEntry.comment_seq, QueueEntry.position)
            .limit(limit)
            .offset(offset)
        )
        return [(row[0], row[1]) for row in rows], int(total or 0)

    async def get_entry(
        self, entry_id: uuid.UUID, *, lock: bool = False
    ) -> tuple[QueueEntry, Comment] | None:
        query = (
            select(QueueEntry, Comment)
            .join(Comment, Comment.id == QueueEntry.comment_id)
            .where(QueueEntry.id == entry_id)
        )
        if lock:
            query = query.with_for_update(of=QueueEntry)
        result = await self._session.execute(query)
        row = result.one_or_none()
        return None if row is None else (row[0], row[1])

    async def held_entries(
        self, session_id: uuid.UUID, buyer_key: str, item_id: uuid.UUID
    ) -> Sequence[QueueEntry]:
        """A buyer's orders for an item that a cancel comment can still call off: held, or
        accepted while orders could not be placed."""
        result = await self._session.execute(
            select(QueueEntry)
            .where(
                QueueEntry.session_id == session_id,
                QueueEntry.buyer_key == buyer_key,
                QueueEntry.item_id == item_id,
                QueueEntry.status.in_(
                    [EntryStatus.HELD.value, EntryStatus.ACCEPTED_PENDING_ORDERS.value]
                ),
            )
            .order_by(QueueEntry.comment_seq, QueueEntry.position)
            .with_for_update()
        )
        return result.scalars().all()

    async def entries_with_orders(self, session_id: uuid.UUID) -> Sequence[QueueEntry]:
        result = await self._session.execute(
            select(QueueEntry).where(
                QueueEntry.session_id == session_id, QueueEntry.order_id.is_not(None)
            )
        )
        return result.scalars().all()

    async def comment_counts(self, session_id: uuid.UUID) -> dict[str, int]:
        """Comments of the session by intent."""
        result = await self._session.execute(
            select(Comment.intent, func.count())
            .where(Comment.session_id == session_id)
            .group_by(Comment.intent)
        )
        return {row[0]: int(row[1]) for row in result}

    async def entry_counts(self, session_id: uuid.UUID) -> dict[str, int]:
        result = await self._session.execute(
            select(QueueEntry.status, func.count())
            .where(QueueEntry.session_id == session_id)
            .group_by(QueueEntry.status)
        )
        return {row[0]: int(row[1]) for row in result}

    # --- follows and reminders ------------------------------------------------------------

    async def add_follow(self, follow: Follow) -> Follow:
        """Following twice is following once: the existing row is returned."""
        statement = (
            insert(Follow)
            .values(
                id=follow.id or uuid.uuid4(),
                user_id=follow.user_id,
                household_id=follow.household_id,
                cooperative_id=follow.cooperative_id,
            )
            .on_conflict_do_nothing()
            .returning(Follow)
        )
        created = (await self._session.execute(statement)).scalar_one_or_none()
        if created is not None:
            return created
        result = await self._session.execute(
            select(Follow).where(
                Follow.user_id == follow.user_id,
                Follow.household_id == follow.household_id
                if follow.household_id is not None
                else Follow.cooperative_id == follow.cooperative_id,
            )
        )
        return result.scalar_one()

    async def get_follow(self, follow_id: uuid.UUID) -> Follow | None:
        return await self._session.get(Follow, follow_id)

    async def delete_follow(self, follow: Follow) -> None:
        await self._session.delete(follow)
        await self._session.flush()

    async def follows_of(self, user_id: uuid.UUID) -> Sequence[Follow]:
        result = await self._session.execute(
            select(Follow).where(Follow.user_id == user_id).order_by(Follow.created_at, Follow.id)
        )
        return result.scalars().all()

    async def record_due_reminders(self, now: datetime, lead_until: datetime) -> list[DueReminder]:
        """Record a reminder for every follower of a seller of every session scheduled to
        start in (now, lead_until], and return only the ones this call recorded.

        One INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING: when two sweeps run at
        once, the unique (session, user) lets exactly one of them record each reminder, and
        only that one goes on to send it.
        """
        follows_seller = or_(
            and_(
                SessionSeller.household_id.is_not(None),
                Follow.household_id == SessionSeller.household_id,
            ),
            and_(
                SessionSeller.cooperative_id.is_not(None),
                Follow.cooperative_id == SessionSeller.cooperative_id,
            ),
        )
        pairs = (
            select(LiveSession.id.label("session_id"), Follow.user_id.label("user_id"))
            .select_from(LiveSession)
            .join(SessionSeller, SessionSeller.session_id == LiveSession.id)
            .join(Follow, follows_seller)
            .where(
                LiveSession.status == SessionStatus.SCHEDULED.value,
                LiveSession.scheduled_start_at > now,
                LiveSession.scheduled_start_at <= lead_until,
            )
            .distinct()
            .subquery()
        )
        due = select(
            func.gen_random_uuid(),
            pairs.c.session_id,
            pairs.c.user_id,
            literal(now, DateTime(timezone=True)),
        )
        statement = (
            insert(Reminder)
            .from_select(["id", "session_id", "user_id", "sent_at"], due)
            .on_conflict_do_nothing(index_elements=[Reminder.session_id, Reminder.user_id])
            .returning(Reminder.session_id, Reminder.user_id)
        )
        result = await self._session.execute(statement)
        return [DueReminder(session_id=row[0], user_id=row[1]) for row in result]

    async def reminders_of(
        self, user_id: uuid.UUID, *, limit: int
    ) -> Sequence[tuple[Reminder, LiveSession]]:
        result = await self._session.execute(
            select(Reminder, LiveSession)
            .join(LiveSession, LiveSession.id == Reminder.session_id)
            .where(Reminder.user_id == user_id)
            .order_by(Reminder.sent_at.desc(), Reminder.id)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in result]


# ON CONFLICT DO UPDATE (not DO NOTHING) so an existing row is locked and returned too.
_LOCK_BUYER_COUNTS = text(
    """
    INSERT INTO livestream_buyer_counts AS c
           (id, item_id, buyer_key, quantity, created_at, updated_at)
    SELECT u.id, :item_id, u.buyer_key, 0, :now, :now
      FROM unnest(CAST(:ids AS uuid[]), CAST(:keys AS varchar[])) AS u(id, buyer_key)
    ORDER BY u.buyer_key
    ON CONFLICT (item_id, buyer_key) DO UPDATE SET quantity = c.quantity
    RETURNING c.buyer_key, c.quantity
    """
)

_TAKE_FOR_BUYERS = text(
    """
    WITH counted AS (
        UPDATE livestream_buyer_counts AS c
           SET quantity = u.quantity, updated_at = :now
          FROM unnest(CAST(:keys AS varchar[]), CAST(:quantities AS integer[]))
               AS u(buyer_key, quantity)
         WHERE c.item_id = :item_id AND c.buyer_key = u.buyer_key
    )
    UPDATE livestream_items
       SET available = available - :quantity,
           sold_out_at = CASE WHEN available - :quantity = 0
                              THEN coalesce(sold_out_at, :now) ELSE sold_out_at END,
           updated_at = :now
     WHERE id = :item_id AND unpinned_at IS NULL AND available >= :quantity
    RETURNING available
    """
)

"""Every query of the payments domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction

from marketplace.payments.models import (
    BankTransaction,
    CardPayment,
    CodRemittance,
    OutboxEvent,
    Payout,
    Refund,
    RefundLine,
    RefundStatus,
    SellerLedgerEntry,
    SettledLine,
    StripeEvent,
)


class PaymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def savepoint(self) -> AbstractAsyncContextManager[AsyncSessionTransaction]:
        """One row of an import: its failure undoes its own writes, not the good rows'."""
        return self._session.begin_nested()

    async def add(self, *rows: Any) -> None:
        self._session.add_all(rows)
        await self._session.flush()

    async def flush(self) -> None:
        await self._session.flush()

    # ---- Bank -----------------------------------------------------------------------------

    async def insert_bank_transaction(self, values: dict[str, Any]) -> uuid.UUID | None:
        """The dedup point of the bank feed: None when this bank reference is already
        recorded (a concurrent duplicate waits for the first to commit, then sees it)."""
        statement = (
            insert(BankTransaction)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[BankTransaction.bank_reference])
            .returning(BankTransaction.id)
        )
        return (await self._session.execute(statement)).scalar_one_or_none()

    async def bank_transaction(
        self, transaction_id: uuid.UUID, *, for_update: bool = False
    ) -> BankTransaction | None:
        query = select(BankTransaction).where(BankTransaction.id == transaction_id)
        if for_update:
            query = query.with_for_update().execution_options(populate_existing=True)
        return (await self._session.execute(query)).scalar_one_or_none()

    async def bank_transactions(
        self, *, status: str | None, limit: int, offset: int
    ) -> Sequence[BankTransaction]:
        query = select(BankTransaction)
        if status is not None:
            query = query.where(BankTransaction.status == status)
        result = await self._session.execute(
            query.order_by(BankTransaction.credited_at.desc(), BankTransaction.id)
            .limit(limit)
            .offset(offset)
        )
        return result.scalars().all()

    # ---- Cards ----------------------------------------------------------------------------

    async def card_payment_of(self, order_id: uuid.UUID) -> CardPayment | None:
        result = await self._session.execute(
            select(CardPayment).where(CardPayment.order_id == order_id)
        )
        return result.scalar_one_or_none()

    async def card_payment_by_intent(
        self, payment_intent_id: str, *, for_update: bool = False
    ) -> CardPayment | None:
        query = select(CardPayment).where(CardPayment.payment_intent_id == payment_intent_id)
        if for_update:
            query = query.with_for_update().execution_options(populate_existing=True)
        return (await self._session.execute(query)).scalar_one_or_none()

    async def claim_stripe_event(self, event_id: str, event_type: str) -> uuid.UUID | None:
        """None when the event id is known: Stripe redelivers, and a replay finds it."""
        statement = (
            insert(StripeEvent)
            .values(id=uuid.uuid4(), event_id=event_id, type=event_type, outcome="")
            .on_conflict_do_nothing(index_elements=[StripeEvent.event_id])
            .returning(StripeEvent.id)
        )
        return (await self._session.execute(statement)).scalar_one_or_none()

    async def set_stripe_outcome(self, row_id: uuid.UUID, outcome: str) -> None:
        await self._session.execute(
            update(StripeEvent).where(StripeEvent.id == row_id).values(outcome=outcome)
        )

    # ---- Refunds --------------------------------------------------------------------------

    async def refund_by_key(self, order_id: uuid.UUID, request_key: str) -> Refund | None:
        result = await self._session.execute(
            select(Refund).where(Refund.order_id == order_id, Refund.request_key == request_key)
        )
        return result.scalar_one_or_none()

    async def refunds_of(self, order_id: uuid.UUID) -> Sequence[Refund]:
        result = await self._session.execute(
            select(Refund).where(Refund.order_id == order_id).order_by(Refund.created_at)
        )
        return result.scalars().all()

    async def pending_refund_total(self, order_id: uuid.UUID) -> int:
        total = await self._session.scalar(
            select(func.coalesce(func.sum(Refund.amount), 0)).where(
                Refund.order_id == order_id, Refund.status == RefundStatus.PENDING.value
            )
        )
        return int(total or 0)

    async def settled_lines(self, order_id: uuid.UUID) -> Sequence[SettledLine]:
        result = await self._session.execute(
            select(SettledLine).where(SettledLine.order_id == order_id).order_by(SettledLine.id)
        )
        return result.scalars().all()

    async def refunded_per_line(self, order_id: uuid.UUID) -> dict[uuid.UUID, tuple[int, int]]:
        """Gross and net already refunded, per order line."""
        result = await self._session.execute(
            select(
                RefundLine.order_line_id,
                func.sum(RefundLine.gross_amount),
                func.sum(RefundLine.net_amount),
            )
            .join(SettledLine, SettledLine.order_line_id == RefundLine.order_line_id)
            .where(SettledLine.order_id == order_id)
            .group_by(RefundLine.order_line_id)
        )
        return {line_id: (int(gross), int(net)) for line_id, gross, net in result.all()}

    # ---- Cash on delivery -----------------------------------------------------------------

    async def remittance_of(self, order_id: uuid.UUID) -> CodRemittance | None:
        result = await self._session.execute(
            select(CodRemittance).where(CodRemittance.order_id == order_id)
        )
        return result.scalar_one_or_none()

    async def shortfalls(self, *, limit: int, offset: int) -> Sequence[CodRemittance]:
        result = await self._session.execute(
            select(CodRemittance)
            .where(CodRemittance.shortfall_amount > 0)
            .order_by(CodRemittance.remitted_on.desc(), CodRemittance.id)
            .limit(limit)
            .offset(offset)
        )
        return result.scalars().all()

    # ---- Sellers' ledger ------------------------------------------------------------------

    async def lock_seller(self, seller_id: uuid.UUID) -> None:
        """Serialises payouts of one seller (a balance check then a debit) for the rest of
        the transaction; other sellers are not held up."""
        await self._session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"seller-ledger:{seller_id}"},
        )

    async def balance(
        self, *, household_id: uuid.UUID | None, cooperative_id: uuid.UUID | None
    ) -> int:
        query = select(func.coalesce(func.sum(SellerLedgerEntry.amount), 0))
        if household_id is not None:
            query = query.where(SellerLedgerEntry.household_id == household_id)
        else:
            query = query.where(SellerLedgerEntry.cooperative_id == cooperative_id)
        return int(await self._session.scalar(query) or 0)

    async def ledger_entries(
        self,
        *,
        household_id: uuid.UUID | None,
        cooperative_id: uuid.UUID | None,
        limit: int,
        offset: int,
    ) -> Sequence[SellerLedgerEntry]:
        query = select(SellerLedgerEntry)
        if household_id is not None:
            query = query.where(SellerLedgerEntry.household_id == household_id)
        else:
            query = query.where(SellerLedgerEntry.cooperative_id == cooperative_id)
        result = await self._session.execute(
            query.order_by(SellerLedgerEntry.occurred_at.desc(), SellerLedgerEntry.id)
            .limit(limit)
            .offset(offset)
        )
        return result.scalars().all()

    async def ledger_totals_by_order(self) -> dict[uuid.UUID, int]:
        """Net đồng per order (sales less refunds); payouts belong to no order."""
        result = await self._session.execute(
            select(SellerLedgerEntry.order_id, func.sum(SellerLedgerEntry.amount))
            .where(SellerLedgerEntry.order_id.is_not(None))
            .group_by(SellerLedgerEntry.order_id)
        )
        return {order_id: int(total) for order_id, total in result.all() if order_id}

    async def payout_reference_used(self, reference: str) -> bool:
        found = await self._session.scalar(select(Payout.id).where(Payout.reference == reference))
        return found is not None

    # ---- Outbox ---------------------------------------------------------------------------

    async def undelivered_for_update(
        self, event_ids: Sequence[uuid.UUID] | None, limit: int
    ) -> Sequence[OutboxEvent]:
        """Fewest attempts, then oldest, first (an event impact keeps refusing cannot hold
        back the others); locked with SKIP LOCKED, so a job and the beat task running at
        once deliver disjoint events and neither waits for the other."""
        query = select(OutboxEvent).where(OutboxEvent.delivered_at.is_(None))
        if event_ids is not None:
            query = query.where(OutboxEvent.id.in_(event_ids))
        result = await self._session.execute(
            query.order_by(OutboxEvent.attempts, OutboxEvent.created_at, OutboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return result.scalars().all()

    async def mark_delivered(self, event_id: uuid.UUID, at: datetime) -> None:
        await self._session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event_id)
            .values(delivered_at=at, attempts=OutboxEvent.attempts + 1, last_error=None)
        )

    async def mark_failed(self, event_id: uuid.UUID, error: str) -> None:
        await self._session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event_id)
            .values(attempts=OutboxEvent.attempts + 1, last_error=error[:2000])
        )

"""Request and response bodies of payments: bank feeds and statements, VietQR, cards,
refunds, carrier remittances, the sellers' ledger and payouts."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec

from marketplace.payments.models import (
    BankTransaction,
    CodRemittance,
    Payout,
    Refund,
    SellerLedgerEntry,
)

Amount = Annotated[int, msgspec.Meta(gt=0, le=10_000_000_000, examples=[180_000])]
Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=64, examples=["FT26327812345"])]


class BankTransfer(msgspec.Struct, forbid_unknown_fields=True):
    """One incoming transfer as the bank (or aggregator) reports it."""

    reference: Reference
    amount: Amount
    description: Annotated[str, msgspec.Meta(max_length=500)]
    credited_at: datetime
    account_number: Annotated[str, msgspec.Meta(max_length=19)] | None = None


class BankFeed(msgspec.Struct, forbid_unknown_fields=True):
    transactions: Annotated[list[BankTransfer], msgspec.Meta(min_length=1, max_length=500)]


class TransferOutcomeRead(msgspec.Struct):
    reference: str
    outcome: str
    """exact | partial | over | unmatched | duplicate."""
    order_id: uuid.UUID | None = None
    amount_still_due: int | None = None
    excess_amount: int | None = None


class BankFeedRead(msgspec.Struct):
    results: list[TransferOutcomeRead]


class LineErrorRead(msgspec.Struct):
    line: int
    """1-based line number in the file (the header is line 1)."""
    message: str


class ImportRead(msgspec.Struct):
    imported: int
    duplicates: int
    results: list[TransferOutcomeRead]
    errors: list[LineErrorRead]


class BankTransactionRead(msgspec.Struct):
    id: uuid.UUID
    reference: str
    amount: int
    description: str
    credited_at: datetime
    source: str
    status: str
    outcome: str | None
    reason: str | None
    order_id: uuid.UUID | None
    note: str


class BankTransactionPage(msgspec.Struct):
    items: list[BankTransactionRead]
    limit: int
    offset: int


class ResolveCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Either apply the credit to an order, or dismiss it with a note saying why."""

    order_id: uuid.UUID | None = None
    dismiss: bool = False
    note: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class VietQRRead(msgspec.Struct):
    payload: str
    bank_bin: str
    account_number: str
    amount: int
    description: str
    """The payment code: the buyer's bank app fills it in from the QR."""


class CardPaymentRead(msgspec.Struct):
    payment_intent_id: str
    client_secret: str
    amount: int
    currency: str


class RefundCreate(msgspec.Struct, forbid_unknown_fields=True):
    amount: Amount
    reason: Annotated[str, msgspec.Meta(max_length=200)] = ""


class RefundRead(msgspec.Struct):
    id: uuid.UUID
    order_id: uuid.UUID
    amount: int
    method: str
    status: str
    reason: str
    refunded_at: datetime | None


class RemittanceRead(msgspec.Struct):
    order_id: uuid.UUID
    carrier: str
    amount: int
    remitted_on: date
    shortfall_amount: int


class RemittanceImportRead(msgspec.Struct):
    imported: int
    duplicates: int
    shortfalls: list[RemittanceRead]
    errors: list[LineErrorRead]


class RemittancePage(msgspec.Struct):
    items: list[RemittanceRead]
    limit: int
    offset: int


class LedgerEntryRead(msgspec.Struct):
    id: uuid.UUID
    kind: str
    amount: int
    gross_amount: int
    fee_amount: int
    order_id: uuid.UUID | None
    refund_id: uuid.UUID | None
    payout_id: uuid.UUID | None
    occurred_at: datetime


class LedgerRead(msgspec.Struct):
    seller_kind: str
    seller_id: uuid.UUID
    balance_amount: int
    """The sum of every entry: what the platform owes the seller now."""
    entries: list[LedgerEntryRead]
    limit: int
    offset: int


class PayoutCreate(msgspec.Struct, forbid_unknown_fields=True):
    amount: Amount
    reference: Reference
    household_id: uuid.UUID | None = None
    cooperative_id: uuid.UUID | None = None


class PayoutRead(msgspec.Struct):
    id: uuid.UUID
    seller_kind: str
    household_id: uuid.UUID | None
    cooperative_id: uuid.UUID | None
    amount: int
    reference: str
    paid_at: datetime
    balance_after: int


class StripeWebhookRead(msgspec.Struct):
    event_id: str
    outcome: str


def bank_transaction_read(row: BankTransaction) -> BankTransactionRead:
    return BankTransactionRead(
        id=row.id,
        reference=row.bank_reference,
        amount=row.amount,
        description=row.description,
        credited_at=row.credited_at,
        source=row.source,
        status=row.status,
        outcome=row.outcome,
        reason=row.reason,
        order_id=row.order_id,
        note=row.note,
    )


def refund_read(refund: Refund) -> RefundRead:
    return RefundRead(
        id=refund.id,
        order_id=refund.order_id,
        amount=refund.amount,
        method=refund.method,
        status=refund.status,
        reason=refund.reason,
        refunded_at=refund.refunded_at,
    )


def remittance_read(row: CodRemittance) -> RemittanceRead:
    return RemittanceRead(
        order_id=row.order_id,
        carrier=row.carrier,
        amount=row.amount,
        remitted_on=row.remitted_on,
        shortfall_amount=row.shortfall_amount,
    )


def ledger_entry_read(entry: SellerLedgerEntry) -> LedgerEntryRead:
    return LedgerEntryRead(
        id=entry.id,
        kind=entry.kind,
        amount=entry.amount,
        gross_amount=entry.gross_amount,
        fee_amount=entry.fee_amount,
        order_id=entry.order_id,
        refund_id=entry.refund_id,
        payout_id=entry.payout_id,
        occurred_at=entry.occurred_at,
    )


def payout_read(payout: Payout, balance_after: int) -> PayoutRead:
    return PayoutRead(
        id=payout.id,
        seller_kind=payout.seller_kind,
        household_id=payout.household_id,
        cooperative_id=payout.cooperative_id,
        amount=payout.amount,
        reference=payout.reference,
        paid_at=payout.paid_at,
        balance_after=balance_after,
    )

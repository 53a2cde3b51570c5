"""VietQR bank transfers: the QR a buyer scans, and the bank's feed that confirms it.

A transfer confirms nothing by itself: the bank's transaction feed (a signed webhook, or a
statement file for banks without one) is matched to an order by the payment code in the
description and by the amount:

- exact: the order is paid; partial: `partially_paid`, the rest still owed;
- over: paid, the excess recorded on the order to be returned;
- no code, an unknown code, several orders' codes, or an order that no longer waits for
  money (cancelled, already paid): an unmatched credit an admin resolves by hand.

Each bank reference is recorded once (unique), so a replayed webhook or a statement
imported twice changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import structlog

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.money import parse_vnd
from marketplace.orders.errors import IllegalTransition
from marketplace.orders.models import AWAITING_PAYMENT, Order, OrderStatus, PaymentMethod
from marketplace.orders.placement import PAYMENT_CODE_ALPHABET, PAYMENT_CODE_PREFIX
from marketplace.payments.csv_import import csv_rows
from marketplace.payments.errors import (
    AlreadyResolved,
    BankTransactionNotFound,
    CollectionAccountMissing,
    InvalidPaymentField,
    InvalidSignature,
    NotAwaitingTransfer,
    StaleWebhook,
    WebhookNotConfigured,
)
from marketplace.payments.models import (
    BankTransaction,
    BankTransactionSource,
    BankTransactionStatus,
    UnmatchedReason,
)
from marketplace.payments.schemas import (
    BankFeed,
    BankTransfer,
    ImportRead,
    LineErrorRead,
    ResolveCreate,
    TransferOutcomeRead,
    VietQRRead,
)
from marketplace.payments.service import PaymentService
from marketplace.payments.vietqr import build_vietqr, render_qr_png
from marketplace.storable_text import MESSAGE as NUL_MESSAGE
from marketplace.storable_text import json_nul_fields

log = structlog.get_logger(__name__)

SIGNATURE_WINDOW = timedelta(minutes=5)
TIMESTAMP_HEADER = "X-Bank-Timestamp"
SIGNATURE_HEADER = "X-Bank-Signature"
STATEMENT_COLUMNS = ("reference", "credited_at", "amount", "description")
VIETNAM = timezone(timedelta(hours=7))
DUPLICATE = "duplicate"
UNMATCHED = "unmatched"

# Overlapping search (lookahead): "DHDHABCD2345" still finds the real code at offset 2.
_CODE = re.compile(rf"(?=({PAYMENT_CODE_PREFIX}[{PAYMENT_CODE_ALPHABET}]{{8}}))")
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
_LOCAL_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over `timestamp + "." + body`, hex: what the bank feed sends."""
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: datetime
) -> None:
    if not secret:
        raise WebhookNotConfigured("set BANK_WEBHOOK_SECRET to accept the bank feed")
    if not timestamp or not signature:
        raise InvalidSignature(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    try:
        sent_at = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidSignature(f"{TIMESTAMP_HEADER} must be Unix seconds") from None
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected, signature.removeprefix("sha256=").strip().lower()):
        raise InvalidSignature("the signature does not match the timestamp and body")
    if abs(now - sent_at) > SIGNATURE_WINDOW:
        raise StaleWebhook("signed more than 5 minutes from now: refused as a possible replay")


def payment_codes_in(description: str) -> list[str]:
    """Codes as written, and as some banks pass them on (spaces and punctuation removed)."""
    text = description.upper()
    found = _CODE.findall(text) + _CODE.findall(_NOT_ALNUM.sub("", text))
    return list(dict.fromkeys(found))


def parse_local_time(raw: str) -> datetime:
    """ISO 8601 (a time without offset is Vietnam time) or `dd/mm/yyyy[ HH:MM[:SS]]`."""
    value = raw.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        for pattern in _LOCAL_FORMATS:
            try:
                parsed = datetime.strptime(value, pattern)  # noqa: DTZ007 - Vietnam time, set below
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"credited_at {raw!r} is not a date and time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=VIETNAM)
    return parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class _Match:
    order: Order | None
    reason: UnmatchedReason | None


class BankService:
    def __init__(self, payments: PaymentService) -> None:
        self._payments = payments
        self._orders = payments.orders
        self._repo = payments.repository
        self._settings = payments.settings
        self._clock = payments.now

    # ---- The QR -------------------------------------------------------------------------

    async def vietqr(self, user: AuthenticatedUser, order_id: uuid.UUID) -> VietQRRead:
        """A dynamic QR for what is still due, the payment code as its description."""
        details = await self._orders.order_for(user, order_id)
        order = details.order
        if (
            order.payment_method != PaymentMethod.VIETQR.value
            or OrderStatus(order.status) not in AWAITING_PAYMENT
            or order.payment_code is None
        ):
            raise NotAwaitingTransfer(
                f"the order is {order.status}, paid by {order.payment_method}"
            )
        bank_bin = self._settings.payments.collection_bank_bin
        account = self._settings.payments.collection_account_number
        if not bank_bin or not account:
            raise CollectionAccountMissing(
                "set COLLECTION_BANK_BIN and COLLECTION_ACCOUNT_NUMBER for VietQR"
            )
        payload = build_vietqr(bank_bin, account, order.amount_due, order.payment_code)
        return VietQRRead(
            payload=payload,
            bank_bin=bank_bin,
            account_number=account,
            amount=order.amount_due,
            description=order.payment_code,
        )

    async def vietqr_png(self, user: AuthenticatedUser, order_id: uuid.UUID) -> bytes:
        return render_qr_png((await self.vietqr(user, order_id)).payload)

    # ---- The feed -----------------------------------------------------------------------

    async def receive_webhook(
        self, *, body: bytes, timestamp: str | None, signature: str | None
    ) -> list[TransferOutcomeRead]:
        verify_signature(
            self._settings.payments.bank_webhook_secret, timestamp, signature, body, self._clock()
        )
        # The raw body is ours to read here, so the app-wide NUL check never saw it.
        if nul_fields := json_nul_fields(body):
            raise InvalidPaymentField(nul_fields[0], NUL_MESSAGE)
        try:
            feed = msgspec.json.decode(body, type=BankFeed)
        except msgspec.ValidationError as exc:
            raise InvalidPaymentField(_path_of(exc), str(exc).split(" - at ")[0]) from None
        except msgspec.DecodeError:
            raise InvalidPaymentField("body", "not JSON") from None
        return [
            await self.apply_transfer(transfer, BankTransactionSource.WEBHOOK)
            for transfer in feed.transactions
        ]

    async def import_statement(self, content: bytes) -> ImportRead:
        """Good rows are applied, each in its own savepoint; bad rows are reported by line
        number and change nothing. Importing the same statement again finds every bank
        reference already recorded."""
        reader = csv_rows(content, STATEMENT_COLUMNS)
        results: list[TransferOutcomeRead] = []
        errors: list[LineErrorRead] = []
        for row in reader:
            line = reader.line_num
            try:
                transfer = _transfer_from(row)
            except (ValueError, msgspec.ValidationError) as exc:
                errors.append(LineErrorRead(line=line, message=str(exc)))
                continue
            try:
                async with self._repo.savepoint():
                    results.append(
                        await self.apply_transfer(transfer, BankTransactionSource.STATEMENT)
                    )
            except IllegalTransition as exc:
                errors.append(LineErrorRead(line=line, message=exc.detail))
        return ImportRead(
            imported=sum(1 for r in results if r.outcome != DUPLICATE),
            duplicates=sum(1 for r in results if r.outcome == DUPLICATE),
            results=results,
            errors=errors,
        )

    async def apply_transfer(
        self, transfer: BankTransfer, source: BankTransactionSource
    ) -> TransferOutcomeRead:
        match = await self._match(transfer)
        order = match.order
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "bank_reference": transfer.reference,
            "amount": transfer.amount,
            "description": transfer.description,
            "credited_at": transfer.credited_at,
            "account_number": transfer.account_number,
            "source": source.value,
            "status": BankTransactionStatus.UNMATCHED.value,
            "reason": match.reason.value if match.reason else None,
            "order_id": order.id if order else None,
            "note": "",
        }
        if order is not None:
            values["status"] = BankTransactionStatus.MATCHED.value
            values["outcome"] = _outcome(order, transfer.amount)
        # The dedup point: the order (if any) is locked already, so a concurrent duplicate
        # of this reference waits here and then finds it recorded.
        if await self._repo.insert_bank_transaction(values) is None:
            return TransferOutcomeRead(reference=transfer.reference, outcome=DUPLICATE)
        if order is None:
            log.info("bank_credit_unmatched", reference=transfer.reference, reason=values["reason"])
            return TransferOutcomeRead(reference=transfer.reference, outcome=UNMATCHED)
        return await self._pay(order, transfer.reference, transfer.amount, transfer.credited_at)

    async def _match(self, transfer: BankTransfer) -> _Match:
        codes = payment_codes_in(transfer.description)
        if not codes:
            return _Match(None, UnmatchedReason.NO_CODE)
        candidates = await self._orders.orders_by_payment_codes(codes)
        if not candidates:
            return _Match(None, UnmatchedReason.UNKNOWN_CODE)
        if len(candidates) > 1:
            return _Match(None, UnmatchedReason.SEVERAL_CODES)
        order = await self._orders.lock_order(candidates[0].id)
        if OrderStatus(order.status) not in AWAITING_PAYMENT:
            return _Match(None, UnmatchedReason.ORDER_NOT_PAYABLE)
        return _Match(order, None)

    async def _pay(
        self, order: Order, reference: str, amount: int, credited_at: datetime
    ) -> TransferOutcomeRead:
        applied = await self._orders.record_payment(order.id, amount=amount, paid_at=credited_at)
        if applied.became_paid:
            await self._payments.settle(order, method=PaymentMethod.VIETQR.value, at=credited_at)
        log.info("bank_credit_applied", reference=reference, outcome=applied.outcome.value)
        return TransferOutcomeRead(
            reference=reference,
            outcome=applied.outcome.value,
            order_id=order.id,
            amount_still_due=order.amount_due,
            excess_amount=order.excess_amount,
        )

    # ---- The admin's queue --------------------------------------------------------------

    async def transactions(
        self, *, status: BankTransactionStatus, limit: int, offset: int
    ) -> list[BankTransaction]:
        """Newest first; the admin's queue is `status=unmatched`."""
        rows = await self._repo.bank_transactions(status=status.value, limit=limit, offset=offset)
        return list(rows)

    async def resolve(
        self, transaction_id: uuid.UUID, data: ResolveCreate, *, by: AuthenticatedUser
    ) -> BankTransaction:
        """Apply an unmatched credit to the order it was meant for, or dismiss it."""
        if data.dismiss == (data.order_id is not None):
            raise InvalidPaymentField("order_id", "give an order_id, or dismiss with a note")
        row = await self._repo.bank_transaction(transaction_id, for_update=True)
        if row is None:
            raise BankTransactionNotFound()
        if row.status != BankTransactionStatus.UNMATCHED.value:
            raise AlreadyResolved(f"the transaction is {row.status}")
        now = self._clock()
        row.resolved_by_user_id = by.id
        row.resolved_at = now
        row.note = data.note
        if data.order_id is None:
            row.status = BankTransactionStatus.DISMISSED.value
            await self._repo.flush()
            return row
        order = await self._orders.lock_order(data.order_id)
        if OrderStatus(order.status) not in AWAITING_PAYMENT:
            raise IllegalTransition(order.status, "take a payment")
        row.status = BankTransactionStatus.RESOLVED.value
        row.outcome = _outcome(order, row.amount)
        row.order_id = order.id
        await self._pay(order, row.bank_reference, row.amount, row.credited_at)
        return row


def _outcome(order: Order, amount: int) -> str:
    if amount < order.amount_due:
        return "partial"
    return "exact" if amount == order.amount_due else "over"


def _path_of(exc: msgspec.ValidationError) -> str:
    message = str(exc)
    marker = "at `$."
    return message.split(marker, 1)[1].rstrip("`") if marker in message else "body"


def _transfer_from(row: dict[str, str | None]) -> BankTransfer:
    values = {key: (value or "").strip() for key, value in row.items() if key}
    if not values["reference"]:
        raise ValueError("reference is empty")
    try:
        amount = parse_vnd(values["amount"])
    except ValueError:
        raise ValueError(f"amount {values['amount']!r} is not an amount of đồng") from None
    if amount <= 0:
        raise ValueError("amount must be a credit (positive)")
    return msgspec.convert(
        {
            "reference": values["reference"],
            "amount": amount,
            "description": values["description"],
            "credited_at": parse_local_time(values["credited_at"]),
            "account_number": values.get("account_number") or None,
        },
        BankTransfer,
    )

"""Cash on delivery: the carrier's remittance report pays the delivered orders.

A COD order is confirmed without payment when placed. When the carrier hands over the cash
it collected, its report (CSV: order_id, amount, remitted_on, carrier[, carrier_reference])
marks each delivered order paid with the amount and date remitted, and the sellers are
credited. An amount short of the order's total is recorded as a shortfall the carrier
owes, listed for an admin. Each order is remitted once: a report imported twice changes
nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

import structlog

from marketplace.errors import MarketplaceError
from marketplace.money import parse_vnd
from marketplace.orders.models import PaymentMethod
from marketplace.payments.csv_import import csv_rows
from marketplace.payments.models import CodRemittance
from marketplace.payments.schemas import LineErrorRead, RemittanceImportRead, remittance_read
from marketplace.payments.service import PaymentService, as_utc

log = structlog.get_logger(__name__)

REMITTANCE_COLUMNS = ("order_id", "amount", "remitted_on", "carrier")


@dataclass(frozen=True, slots=True)
class RemittanceRow:
    order_id: uuid.UUID
    amount: int
    remitted_on: date
    carrier: str
    carrier_reference: str


class RowRefused(Exception):
    """A remittance row that names an order it cannot pay; reported by its line."""


class CodService:
    def __init__(self, payments: PaymentService) -> None:
        self._payments = payments
        self._orders = payments.orders
        self._repo = payments.repository

    async def import_remittances(self, content: bytes) -> RemittanceImportRead:
        reader = csv_rows(content, REMITTANCE_COLUMNS)
        imported = duplicates = 0
        shortfalls: list[CodRemittance] = []
        errors: list[LineErrorRead] = []
        for raw in reader:
            line = reader.line_num
            try:
                row = _row_from(raw)
                async with self._repo.savepoint():
                    remittance = await self.record(row)
            except (ValueError, RowRefused) as exc:
                errors.append(LineErrorRead(line=line, message=str(exc)))
                continue
            except MarketplaceError as exc:
                errors.append(LineErrorRead(line=line, message=exc.detail))
                continue
            if remittance is None:
                duplicates += 1
                continue
            imported += 1
            if remittance.shortfall_amount:
                shortfalls.append(remittance)
        return RemittanceImportRead(
            imported=imported,
            duplicates=duplicates,
            shortfalls=[remittance_read(r) for r in shortfalls],
            errors=errors,
        )

    async def record(self, row: RemittanceRow) -> CodRemittance | None:
        """The remittance of one order, or None if that order was remitted already."""
        order = await self._orders.lock_order(row.order_id)
        if await self._repo.remittance_of(order.id) is not None:
            return None
        if order.payment_method != PaymentMethod.COD.value:
            raise RowRefused(f"order {order.id} is not cash on delivery")
        remitted_at = as_utc(row.remitted_on)
        await self._orders.record_cod_remittance(
            order.id, amount=row.amount, remitted_at=remitted_at
        )
        remittance = CodRemittance(
            order_id=order.id,
            carrier=row.carrier,
            carrier_reference=row.carrier_reference,
            amount=row.amount,
            remitted_on=row.remitted_on,
            shortfall_amount=max(0, order.total_amount - row.amount),
        )
        await self._repo.add(remittance)
        await self._payments.settle(order, method=PaymentMethod.COD.value, at=remitted_at)
        if remittance.shortfall_amount:
            log.warning(
                "cod_shortfall",
                order_id=str(order.id),
                carrier=row.carrier,
                shortfall_amount=remittance.shortfall_amount,
            )
        return remittance

    async def shortfalls(self, *, limit: int, offset: int) -> list[CodRemittance]:
        return list(await self._repo.shortfalls(limit=limit, offset=offset))


def _row_from(raw: dict[str, str | None]) -> RemittanceRow:
    values = {key: (value or "").strip() for key, value in raw.items() if key}
    try:
        order_id = uuid.UUID(values["order_id"])
    except ValueError:
        raise ValueError(f"order_id {values['order_id']!r} is not an order id") from None
    try:
        amount = parse_vnd(values["amount"])
    except ValueError:
        raise ValueError(f"amount {values['amount']!r} is not an amount of đồng") from None
    if amount < 0:
        raise ValueError("amount cannot be negative")
    try:
        remitted_on = date.fromisoformat(values["remitted_on"])
    except ValueError:
        raise ValueError(f"remitted_on {values['remitted_on']!r} is not a date") from None
    carrier = values["carrier"]
    if not carrier or len(carrier) > 64:
        raise ValueError("carrier must be 1 to 64 characters")
    return RemittanceRow(
        order_id=order_id,
        amount=amount,
        remitted_on=remitted_on,
        carrier=carrier,
        carrier_reference=values.get("carrier_reference", "")[:64],
    )

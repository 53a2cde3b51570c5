"""The nightly check that every settled order's đồng reached households, to the đồng.

The sellers' ledger belongs to payments (`seller_ledger_entries`, being built alongside).
Until payments exposes a service for it, `seller_ledger_totals` reads the table directly,
net per order (`SUM(amount) GROUP BY order_id`, credits positive and refund debits
negative), and reports plainly when the table is not there yet instead of pretending the
ledgers agree.
"""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.impact.service import ImpactService, ReconcileReport
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

SELLER_LEDGER_TABLE = "seller_ledger_entries"


async def seller_ledger_totals(session: AsyncSession) -> dict[uuid.UUID, int] | None:
    """Net đồng per order in the sellers' ledger; None when that ledger does not exist."""
    exists = await session.scalar(
        text("SELECT to_regclass(:name) IS NOT NULL"), {"name": SELLER_LEDGER_TABLE}
    )
    if not exists:
        return None
    result = await session.execute(
        text(f"SELECT order_id, SUM(amount) FROM {SELLER_LEDGER_TABLE} GROUP BY order_id")  # noqa: S608 - constant table name
    )
    return {order_id: int(total) for order_id, total in result}


async def reconcile_attribution(uow: UnitOfWork, settings: Settings) -> ReconcileReport | None:
    """Compare both ledgers order by order and the aggregates with their rows; every
    difference is an error log line and a count on the alert metric."""
    totals = await seller_ledger_totals(uow.session)
    if totals is None:
        log.error("seller_ledger_unavailable", table=SELLER_LEDGER_TABLE)
        return None
    return await ImpactService(uow, settings).reconcile(totals)

"""The nightly check that every settled order's đồng reached households, to the đồng.

The sellers' ledger belongs to payments; its service gives the net per order (sales less
refunds, payouts excluded), and impact compares that with its own ledger order by order.
"""

from __future__ import annotations

from redis.asyncio import Redis

from marketplace.impact.service import ImpactService, ReconcileReport
from marketplace.payments.service import PaymentService
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork


async def reconcile_attribution(
    uow: UnitOfWork, settings: Settings, redis: Redis
) -> ReconcileReport:
    """Every difference is an error log line and a count on the alert metric."""
    totals = await PaymentService(uow, settings, redis).ledger_totals_by_order()
    return await ImpactService(uow, settings).reconcile(totals)

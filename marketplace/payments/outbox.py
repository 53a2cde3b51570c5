"""Delivering settlement events from the outbox to the impact ledger.

An event is written in the transaction that moved the money; it is delivered after that
commits (a job queued by the unit of work) and, should that job be lost, by the beat task
that sweeps undelivered rows every 30 seconds. Delivery writes impact's rows and marks the
outbox row delivered in one transaction, and impact records each event id once, so a
delivery repeated after a crash changes nothing. An event impact refuses stays undelivered
with its error, retried by each sweep, visible to an operator.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from marketplace.db import utcnow
from marketplace.impact.events import SettlementEvent, decode_event
from marketplace.impact.service import ImpactService
from marketplace.payments.repository import PaymentRepository
from marketplace.resources import Clock
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

DELIVERY_BATCH = 100


async def deliver_to_impact(uow: UnitOfWork, settings: Settings, event: SettlementEvent) -> None:
    """The one place that hands an event to the impact domain, inside our transaction."""
    await ImpactService(uow, settings).record_event(event)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    delivered: int
    failed: int


class OutboxService:
    def __init__(self, uow: UnitOfWork, settings: Settings, clock: Clock = utcnow) -> None:
        self._uow = uow
        self._settings = settings
        self._clock = clock
        self._repo = PaymentRepository(uow.session)

    async def deliver(
        self, event_ids: Sequence[uuid.UUID] | None = None, *, limit: int = DELIVERY_BATCH
    ) -> DeliveryReport:
        """Deliver these events (or the oldest undelivered ones); each in a savepoint, so
        one event impact cannot take does not hold back the others."""
        delivered = failed = 0
        for row in await self._repo.undelivered_for_update(event_ids, limit):
            try:
                async with self._repo.savepoint():
                    await deliver_to_impact(self._uow, self._settings, decode_event(row.payload))
                    await self._repo.mark_delivered(row.id, self._clock())
            except Exception as exc:
                failed += 1
                await self._repo.mark_failed(row.id, f"{type(exc).__name__}: {exc}")
                log.warning("outbox_delivery_failed", event_id=str(row.id), error=str(exc))
                continue
            delivered += 1
        if delivered or failed:
            log.info("outbox_delivered", delivered=delivered, failed=failed)
        return DeliveryReport(delivered=delivered, failed=failed)

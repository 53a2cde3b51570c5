"""The outbox task: delivers what a settlement left for the impact ledger."""

from __future__ import annotations

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.orders.service import OrderService
from marketplace.payments.models import OutboxEvent
from marketplace.payments.service import PaymentService
from marketplace.sellers.models import PovertyStatus
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from tests.payments.factories import place
from tests.support.jobs import RecordingSender
from workers.payments import deliver_outbox
from workers.runtime import WorkerContext


async def test_the_outbox_task_delivers_the_named_events_and_then_nothing_more(
    *,
    session: AsyncSession,
    orders: OrderService,
    payments: PaymentService,
    uow: UnitOfWork,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    job_sender: RecordingSender,
) -> None:
    _, order = await place(session, orders, status=PovertyStatus.POOR)
    await orders.record_payment(order.id, amount=order.amount_due, paid_at=payments.now())
    await payments.settle(order, method="vietqr", at=payments.now())
    await uow.commit()
    event_id = (
        await session.execute(select(OutboxEvent.id).where(OutboxEvent.order_id == order.id))
    ).scalar_one()
    context = WorkerContext(
        settings=settings, sessionmaker=sessionmaker, redis=redis, job_sender=RecordingSender()
    )

    delivered = await deliver_outbox(context, [str(event_id)])
    again = await deliver_outbox(context, [str(event_id)])
    swept = await deliver_outbox(context)

    [job] = job_sender.sent
    assert job.kwargs == {"event_ids": [str(event_id)]}
    assert (delivered, again, swept) == (1, 0, 0)
    delivered_at = await session.scalar(
        select(OutboxEvent.delivered_at)
        .where(OutboxEvent.id == event_id)
        .execution_options(populate_existing=True)
    )
    assert delivered_at is not None

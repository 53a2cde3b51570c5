"""The report a host reads after a session: orders, revenue, when each item sold out, how many
order comments became paid orders, and revenue by household.

Orders are read through the orders domain's service, one comment order at a time (the
queue keeps each entry's order id). Revenue counts paid orders only (paid through
completed, as the orders domain's SETTLED says); a refunded order counts for nothing.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

from redis.asyncio import Redis

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.errors import MarketplaceError
from marketplace.livestreams.comments import Intent
from marketplace.livestreams.events import LiveEventPublisher
from marketplace.livestreams.models import SessionStatus
from marketplace.livestreams.repository import LivestreamRepository
from marketplace.livestreams.schemas import ItemReport, SellerRevenue, SessionReport
from marketplace.livestreams.service import LivestreamService
from marketplace.orders.models import SETTLED, OrderStatus
from marketplace.orders.service import OrderService
from marketplace.resources import Clock
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork


class SessionReporter:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        redis: Redis,
        clock: Clock,
        *,
        events: LiveEventPublisher,
    ) -> None:
        self._repo = LivestreamRepository(uow.session)
        self._live = LivestreamService(uow, redis, clock, events=events)
        self._orders = OrderService(uow, settings, redis, clock, livestreams=self._live)

    async def report(self, actor: AuthenticatedUser, session_id: uuid.UUID) -> SessionReport:
        live = await self._live.owned_session(actor, session_id)
        views = await self._live.items(live.id, pinned_only=False, with_sales=True)
        comments = await self._repo.comment_counts(live.id)
        outcomes = await self._repo.entry_counts(live.id)

        units_paid: dict[uuid.UUID, int] = defaultdict(int)
        revenue: dict[uuid.UUID, int] = defaultdict(int)
        orders_placed = orders_paid = 0
        paid_comments: set[uuid.UUID] = set()
        orders_data = "complete"
        for entry in await self._repo.entries_with_orders(live.id):
            if entry.order_id is None:
                continue
            orders_placed += 1
            try:
                details = await self._orders.lines_of(entry.order_id)
            except MarketplaceError:
                orders_data = "incomplete"
                continue
            if OrderStatus(details.order.status) not in SETTLED:
                continue
            orders_paid += 1
            paid_comments.add(entry.comment_id)
            for line in details.lines:
                if line.livestream_item_id is not None:
                    units_paid[line.livestream_item_id] += line.quantity
                    revenue[line.livestream_item_id] += line.line_amount

        items = []
        by_seller: dict[tuple[uuid.UUID | None, uuid.UUID | None], list[int]] = defaultdict(
            lambda: [0, 0]
        )
        for view in views:
            item = view.item
            sold_out_after = (
                int((item.sold_out_at - item.pinned_at).total_seconds())
                if item.sold_out_at is not None
                else None
            )
            items.append(
                ItemReport(
                    item_id=item.id,
                    code=item.code,
                    title=item.title,
                    household_id=item.household_id,
                    cooperative_id=item.cooperative_id,
                    stock_cap=item.stock_cap,
                    units_held_or_sold=view.held_or_sold,
                    units_paid=units_paid[item.id],
                    revenue_amount=revenue[item.id],
                    sold_out_at=item.sold_out_at,
                    seconds_to_sell_out=sold_out_after,
                )
            )
            seller = by_seller[(item.household_id, item.cooperative_id)]
            seller[0] += revenue[item.id]
            seller[1] += units_paid[item.id]

        order_comments = comments.get(Intent.ORDER.value, 0)
        return SessionReport(
            session_id=live.id,
            status=SessionStatus(live.status),
            started_at=live.started_at,
            ended_at=live.ended_at,
            comments=sum(comments.values()),
            order_comments=order_comments,
            cancel_comments=comments.get(Intent.CANCEL.value, 0),
            orders_placed=orders_placed,
            orders_paid=orders_paid,
            revenue_amount=sum(revenue.values()),
            comment_to_paid_conversion=round(len(paid_comments) / order_comments, 4)
            if order_comments
            else 0.0,
            queue_outcomes=dict(sorted(outcomes.items())),
            items=items,
            revenue_by_seller=[
                SellerRevenue(
                    household_id=household_id,
                    cooperative_id=cooperative_id,
                    revenue_amount=amounts[0],
                    units_paid=amounts[1],
                )
                for (household_id, cooperative_id), amounts in sorted(
                    by_seller.items(), key=lambda pair: -pair[1][0]
                )
            ],
            orders_data=orders_data,
        )

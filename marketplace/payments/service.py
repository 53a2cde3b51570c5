"""Settlement, refunds and the sellers' ledger: where settled money is split and recorded.

Revenue counts when money settles (a matched transfer, a succeeded card payment, a carrier's
remittance) and refunds reverse it. Settling an order, in one transaction:

- fixes each line's platform fee (settings.payments.platform_fee_bps, 0 for a household that
  is poor or near-poor on the day of sale) and net;
- credits each fulfilment's seller once (unique per fulfilment);
- records a `payment_settled` event in the outbox, delivered to the impact ledger after the
  commit by a job, and again by the beat task until it is delivered.

A refund is split over the settled lines by what each has left to refund (largest
remainder), and each line's net is reversed so that a full refund reverses exactly what was
credited, to the đồng.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

import structlog
from redis.asyncio import Redis

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.db import utcnow
from marketplace.errors import PermissionDenied
from marketplace.impact.attribution import split_amount
from marketplace.impact.events import (
    PaymentRefunded,
    PaymentSettled,
    RefundedLine,
    SettledLine,
    SettlementEvent,
    encode_event,
)
from marketplace.jobs import JobName
from marketplace.orders.errors import IllegalTransition
from marketplace.orders.models import SETTLED, Order, OrderStatus
from marketplace.orders.service import OrderService
from marketplace.payments.errors import (
    InvalidPaymentField,
    NothingToRefund,
    PayoutExceedsBalance,
    PayoutReferenceUsed,
    RefundKeyReused,
    RefundTooLarge,
)
from marketplace.payments.models import (
    LedgerKind,
    OutboxEvent,
    Payout,
    Refund,
    RefundLine,
    RefundStatus,
    SellerLedgerEntry,
)
from marketplace.payments.models import SettledLine as SettledLineRow
from marketplace.payments.repository import PaymentRepository
from marketplace.resources import Clock
from marketplace.sellers.models import POOR_OR_NEAR_POOR, ConsentScope
from marketplace.sellers.service import SellersService
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

VIETNAM = timezone(timedelta(hours=7))
BASIS_POINTS = 10_000
MAX_PAGE = 200


def sale_day(order: Order) -> date:
    """The day of sale is the day the order was accepted, in Vietnam."""
    return order.created_at.astimezone(VIETNAM).date()


@dataclass(frozen=True, slots=True)
class Seller:
    kind: str
    household_id: uuid.UUID | None
    cooperative_id: uuid.UUID | None

    @property
    def id(self) -> uuid.UUID:
        seller_id = self.household_id or self.cooperative_id
        assert seller_id is not None  # noqa: S101 - one of the two, by construction
        return seller_id

    @classmethod
    def named(cls, household_id: uuid.UUID | None, cooperative_id: uuid.UUID | None) -> Seller:
        if (household_id is None) == (cooperative_id is None):
            raise InvalidPaymentField(
                "household_id", "give exactly one of household_id and cooperative_id"
            )
        if household_id is not None:
            return cls("household", household_id, None)
        return cls("cooperative", None, cooperative_id)


@dataclass(frozen=True, slots=True)
class LedgerPage:
    seller: Seller
    balance: int
    entries: Sequence[SellerLedgerEntry]


class PaymentService:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        redis: Redis,
        clock: Clock = utcnow,
        *,
        orders: OrderService | None = None,
        sellers: SellersService | None = None,
    ) -> None:
        self._uow = uow
        self._settings = settings
        self._clock = clock
        self._repo = PaymentRepository(uow.session)
        self._sellers = sellers or SellersService(uow, settings, clock)
        self._orders = orders or OrderService(uow, settings, redis, clock, sellers=self._sellers)

    @property
    def orders(self) -> OrderService:
        return self._orders

    @property
    def repository(self) -> PaymentRepository:
        return self._repo

    @property
    def settings(self) -> Settings:
        return self._settings

    def now(self) -> datetime:
        return self._clock()

    # ---- Settlement ---------------------------------------------------------------------

    async def settle(self, order: Order, *, method: str, at: datetime) -> PaymentSettled | None:
        """Credit the sellers and record the settlement event; nothing if already settled."""
        if OrderStatus(order.status) not in SETTLED:
            raise IllegalTransition(order.status, "settle")
        if await self._repo.settled_lines(order.id):
            return None
        details = await self._orders.details(order)
        households = [f.household_id for f in details.fulfilments if f.household_id]
        statuses = (
            await self._sellers.statuses_on(households, sale_day(order)) if households else {}
        )
        bps_of: dict[uuid.UUID, int] = {}
        for fulfilment in details.fulfilments:
            poor = fulfilment.household_id is not None and (
                statuses.get(fulfilment.household_id) in POOR_OR_NEAR_POOR
            )
            bps_of[fulfilment.id] = 0 if poor else self._settings.payments.platform_fee_bps
        fulfilment_of = {f.id: f for f in details.fulfilments}

        rows: list[SettledLineRow] = []
        event_lines: list[SettledLine] = []
        totals: dict[uuid.UUID, list[int]] = {f.id: [0, 0, 0] for f in details.fulfilments}
        for line in details.lines:
            bps = bps_of[line.fulfilment_id]
            fee = line.line_amount * bps // BASIS_POINTS
            net = line.line_amount - fee
            fulfilment = fulfilment_of[line.fulfilment_id]
            rows.append(
                SettledLineRow(
                    order_id=order.id,
                    order_line_id=line.id,
                    fulfilment_id=line.fulfilment_id,
                    gross_amount=line.line_amount,
                    fee_bps=bps,
                    fee_amount=fee,
                    net_amount=net,
                    settled_at=at,
                )
            )
            event_lines.append(
                SettledLine(
                    order_line_id=line.id,
                    net_amount=net,
                    gross_amount=line.line_amount,
                    fee_amount=fee,
                    product_id=line.product_id,
                    category=line.category,
                    lot_id=line.lot_id,
                    household_id=fulfilment.household_id,
                    cooperative_id=fulfilment.cooperative_id,
                )
            )
            total = totals[line.fulfilment_id]
            total[0] += line.line_amount
            total[1] += fee
            total[2] += net
        credits = [
            SellerLedgerEntry(
                kind=LedgerKind.SALE.value,
                seller_kind=fulfilment.seller_kind,
                household_id=fulfilment.household_id,
                cooperative_id=fulfilment.cooperative_id,
                amount=totals[fulfilment.id][2],
                gross_amount=totals[fulfilment.id][0],
                fee_amount=totals[fulfilment.id][1],
                order_id=order.id,
                fulfilment_id=fulfilment.id,
                occurred_at=at,
            )
            for fulfilment in details.fulfilments
        ]
        event = PaymentSettled(
            event_id=uuid.uuid4(),
            order_id=order.id,
            settled_at=at,
            method=method,
            lines=tuple(event_lines),
        )
        await self._repo.add(*rows)
        await self._repo.add(*credits)
        await self._record(event, order.id)
        log.info("order_settled", order_id=str(order.id), method=method, lines=len(rows))
        return event

    async def _record(self, event: SettlementEvent, order_id: uuid.UUID) -> None:
        kind = "payment_settled" if isinstance(event, PaymentSettled) else "payment_refunded"
        await self._repo.add(
            OutboxEvent(
                id=event.event_id,
                kind=kind,
                order_id=order_id,
                payload=encode_event(event).decode(),
                attempts=0,
            )
        )
        self._uow.add_job(JobName.DELIVER_OUTBOX, {"event_ids": [str(event.event_id)]})

    # ---- Refunds ------------------------------------------------------------------------

    async def start_refund(
        self,
        order_id: uuid.UUID,
        *,
        amount: int,
        request_key: str,
        method: str,
        reason: str,
        by: AuthenticatedUser | None,
    ) -> tuple[Order, Refund, bool]:
        """The refund row for this key: made now (False) or found from an earlier call with
        the same key and amount (True). The order is locked and checked first."""
        order = await self._orders.lock_order(order_id)
        existing = await self._repo.refund_by_key(order_id, request_key)
        if existing is not None:
            if existing.amount != amount:
                raise RefundKeyReused("this key was used for a refund of another amount")
            return order, existing, True
        if OrderStatus(order.status) not in SETTLED:
            raise NothingToRefund(f"the order is {order.status}")
        refundable = order.refundable_amount - await self._repo.pending_refund_total(order_id)
        if amount > refundable:
            raise RefundTooLarge(f"at most {refundable} đồng can still be refunded")
        refund = Refund(
            id=uuid.uuid4(),
            order_id=order_id,
            request_key=request_key,
            amount=amount,
            method=method,
            status=RefundStatus.PENDING.value,
            reason=reason,
            requested_by_user_id=by.id if by else None,
        )
        await self._repo.add(refund)
        return order, refund, False

    async def complete_refund(self, order: Order, refund: Refund, *, at: datetime) -> None:
        """The money went back: reverse the sellers' credit line by line, update the order
        and record the `payment_refunded` event. Completing twice does nothing."""
        if refund.status == RefundStatus.SUCCEEDED.value:
            return
        lines = await self._repo.settled_lines(order.id)
        done = await self._repo.refunded_per_line(order.id)
        left = {
            line.order_line_id: line.gross_amount - done.get(line.order_line_id, (0, 0))[0]
            for line in lines
        }
        if refund.amount > sum(left.values()):
            raise RefundTooLarge(f"at most {sum(left.values())} đồng can still be refunded")
        weights = {str(line_id): remaining for line_id, remaining in left.items() if remaining}
        shares = split_amount(refund.amount, weights)

        refund_lines: list[RefundLine] = []
        by_fulfilment: dict[uuid.UUID, list[int]] = {}
        for line in lines:
            gross = shares.get(str(line.order_line_id), 0)
            if gross == 0:
                continue
            gross_before, net_before = done.get(line.order_line_id, (0, 0))
            # Cumulative, so rounding never drifts: all refunded means all net reversed.
            net_after = line.net_amount * (gross_before + gross) // line.gross_amount
            net = net_after - net_before
            refund_lines.append(
                RefundLine(
                    refund_id=refund.id,
                    order_line_id=line.order_line_id,
                    gross_amount=gross,
                    net_amount=net,
                )
            )
            total = by_fulfilment.setdefault(line.fulfilment_id, [0, 0])
            total[0] += gross
            total[1] += net
        details = await self._orders.details(order)
        debits = [
            SellerLedgerEntry(
                kind=LedgerKind.REFUND.value,
                seller_kind=fulfilment.seller_kind,
                household_id=fulfilment.household_id,
                cooperative_id=fulfilment.cooperative_id,
                amount=-by_fulfilment[fulfilment.id][1],
                gross_amount=by_fulfilment[fulfilment.id][0],
                fee_amount=by_fulfilment[fulfilment.id][0] - by_fulfilment[fulfilment.id][1],
                order_id=order.id,
                fulfilment_id=fulfilment.id,
                refund_id=refund.id,
                occurred_at=at,
            )
            for fulfilment in details.fulfilments
            if fulfilment.id in by_fulfilment
        ]
        await self._orders.record_refund(order.id, amount=refund.amount, at=at)
        refund.status = RefundStatus.SUCCEEDED.value
        refund.refunded_at = at
        await self._repo.add(*refund_lines)
        await self._repo.add(*debits)
        await self._record(
            PaymentRefunded(
                event_id=uuid.uuid4(),
                order_id=order.id,
                refunded_at=at,
                lines=tuple(
                    RefundedLine(order_line_id=row.order_line_id, net_amount=row.net_amount)
                    for row in refund_lines
                ),
            ),
            order.id,
        )
        log.info("refund_applied", order_id=str(order.id), amount=refund.amount)

    async def fail_refund(self, refund: Refund) -> None:
        refund.status = RefundStatus.FAILED.value
        await self._repo.flush()

    # ---- Sellers' ledger ----------------------------------------------------------------

    async def _may_read_ledger(self, user: AuthenticatedUser, seller: Seller) -> None:
        if user.role is Role.ADMIN:
            return
        if seller.household_id is not None:
            await self._sellers.require_household_manager(
                user, seller.household_id, ConsentScope.VIEW_INCOME
            )
            return
        if seller.cooperative_id is not None and await self._sellers.can_manage_cooperative(
            user, seller.cooperative_id
        ):
            return
        raise PermissionDenied("you do not act for this seller")

    async def ledger(
        self,
        user: AuthenticatedUser,
        *,
        household_id: uuid.UUID | None,
        cooperative_id: uuid.UUID | None,
        limit: int,
        offset: int,
    ) -> LedgerPage:
        if household_id is None and cooperative_id is None and user.role is Role.FARMER:
            own = await self._sellers.household_of_farmer(user.id)
            household_id = own.id if own else None
        seller = Seller.named(household_id, cooperative_id)
        await self._may_read_ledger(user, seller)
        balance = await self._repo.balance(
            household_id=seller.household_id, cooperative_id=seller.cooperative_id
        )
        entries = await self._repo.ledger_entries(
            household_id=seller.household_id,
            cooperative_id=seller.cooperative_id,
            limit=limit,
            offset=offset,
        )
        return LedgerPage(seller=seller, balance=balance, entries=entries)

    async def record_payout(
        self,
        *,
        household_id: uuid.UUID | None,
        cooperative_id: uuid.UUID | None,
        amount: int,
        reference: str,
        by: AuthenticatedUser,
    ) -> tuple[Payout, int]:
        """A payout may not exceed the balance: the seller's ledger is locked, summed and
        debited in one transaction, so two payouts at once cannot both pass."""
        seller = Seller.named(household_id, cooperative_id)
        await self._repo.lock_seller(seller.id)
        if await self._repo.payout_reference_used(reference):
            raise PayoutReferenceUsed(f"reference {reference!r} is already recorded")
        balance = await self._repo.balance(
            household_id=seller.household_id, cooperative_id=seller.cooperative_id
        )
        if amount > balance:
            raise PayoutExceedsBalance(f"the balance is {balance} đồng")
        now = self._clock()
        payout = Payout(
            id=uuid.uuid4(),
            seller_kind=seller.kind,
            household_id=seller.household_id,
            cooperative_id=seller.cooperative_id,
            amount=amount,
            reference=reference,
            paid_at=now,
            recorded_by_user_id=by.id,
        )
        await self._repo.add(payout)
        await self._repo.add(
            SellerLedgerEntry(
                kind=LedgerKind.PAYOUT.value,
                seller_kind=seller.kind,
                household_id=seller.household_id,
                cooperative_id=seller.cooperative_id,
                amount=-amount,
                gross_amount=amount,
                fee_amount=0,
                payout_id=payout.id,
                occurred_at=now,
            )
        )
        return payout, balance - amount

    async def ledger_totals_by_order(self) -> dict[uuid.UUID, int]:
        """Net đồng per settled order in the sellers' ledger, for the impact reconciliation."""
        return await self._repo.ledger_totals_by_order()


def as_utc(day: date) -> datetime:
    """A remittance dated by day counts from that day's start in Vietnam."""
    return datetime(day.year, day.month, day.day, tzinfo=VIETNAM).astimezone(UTC)

"""Attribution of settled money to households, and the aggregates kept from it.

`record_event` is the one entry point payments calls (from its outbox), in the unit of work
that marks the outbox row delivered: the ledger rows, the household-month figures and the
area aggregates are written in that same transaction, so a report never sees a sale in the
ledger that its aggregates miss.

Rules, in one place:
- A household line attributes its net amount to the household. A cooperative line is split
  among the member households by their contributions to the lot sold (`split_amount`, the
  households ordered by contribution, largest first, then by household id: ties in the
  remainder go to the larger contributor, then to the smaller id).
- Each row records the household's status on the Vietnamese calendar day of the settlement
  (UTC+7), from its review history, with the review's income per person, its members, its
  commune, province and administrative version, the commune's area and the category.
- A refund appends negative rows for the refunded part of a line, dated on the day of the
  sale it reverses (so a month's figures are its sales net of their refunds, never negative).
  It is split among the households of the line's sale rows in proportion to what each still
  has attributed there: a first refund splits exactly by the original rows, later partial
  refunds by what is left, so no household is reversed more than it received and a full
  refund returns every one of them to exactly zero.
- The same event delivered twice, even concurrently, is attributed once.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import Counter

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.catalog.models import Category
from marketplace.geo.errors import CommuneNotFound
from marketplace.geo.service import GeoService
from marketplace.impact.attribution import split_amount
from marketplace.impact.errors import (
    CannotAttribute,
    InvalidIncomeShare,
    InvalidSettlementEvent,
    RefundExceedsAttribution,
)
from marketplace.impact.events import (
    PaymentRefunded,
    PaymentSettled,
    RefundedLine,
    SettledLine,
    SettlementEvent,
)
from marketplace.impact.figures import (
    AREA_COUNTERS,
    BPS,
    DEFAULT_SHARE_KEY,
    AreaDeltas,
    HouseholdMonthView,
    MonthFacts,
    MonthFigures,
    local_day,
    month_figures,
    month_of,
    share_bps_for,
)
from marketplace.impact.models import (
    AttributionEntry,
    EntryKind,
    HouseholdMonth,
    IncomeShare,
    StatusGroup,
)
from marketplace.impact.repository import HouseholdMonthKey, ImpactRepository
from marketplace.jobs import JobName
from marketplace.sellers.service import SellersService
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

ATTRIBUTION_MISMATCHES = Counter(
    "marketplace_attribution_mismatches",
    "Settled orders whose attribution ledger and sellers' ledger disagree (nightly check)",
)
"""Exposed as marketplace_attribution_mismatches_total; alert on any increase."""

REFRESH_CHUNK = 2_000
"""Household-months recomputed per statement batch in a rebuild."""


@dataclass(frozen=True, slots=True)
class RecordResult:
    event_id: uuid.UUID
    already_recorded: bool
    entries: int
    amount_total: int


@dataclass(frozen=True, slots=True)
class Mismatch:
    order_id: uuid.UUID
    attributed_amount: int
    seller_ledger_amount: int

    @property
    def difference(self) -> int:
        return self.attributed_amount - self.seller_ledger_amount


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    orders_checked: int
    mismatches: tuple[Mismatch, ...]
    aggregate_mismatches: int


def _view(row: HouseholdMonth) -> HouseholdMonthView:
    return HouseholdMonthView(
        commune_code=row.commune_code,
        province_code=row.province_code,
        admin_version=row.admin_version,
        month=row.month,
        revenue_amount=row.revenue_amount,
        revenue_by_status={g.value: getattr(row, f"revenue_{g.value}") for g in StatusGroup},
        income_amount=row.income_amount,
        closes_gap=row.closes_gap,
        baseline_known=row.baseline_income_per_person is not None,
    )


def _figures_view(f: MonthFigures) -> HouseholdMonthView:
    return HouseholdMonthView(
        commune_code=f.commune_code,
        province_code=f.province_code,
        admin_version=f.admin_version,
        month=f.month,
        revenue_amount=f.revenue_amount,
        revenue_by_status=f.revenue_by_status,
        income_amount=f.income_amount,
        closes_gap=f.closes_gap,
        baseline_known=f.baseline_income_per_person is not None,
    )


class ImpactService:
    def __init__(self, uow: UnitOfWork, settings: Settings) -> None:
        self._uow = uow
        self._settings = settings
        self._repo = ImpactRepository(uow.session)
        self._geo = GeoService(uow)
        self._sellers = SellersService(uow, settings)

    # ---- Attribution -------------------------------------------------------------------

    async def record_event(self, event: PaymentSettled | PaymentRefunded) -> RecordResult:
        """Attribute one settlement event (idempotent per event id)."""
        _check_event(event)
        kind = EntryKind.SALE if isinstance(event, PaymentSettled) else EntryKind.REFUND
        occurred_at = event.settled_at if isinstance(event, PaymentSettled) else event.refunded_at
        if not await self._repo.claim_event(
            event.event_id, kind.value, event.order_id, occurred_at
        ):
            log.info("attribution_event_already_recorded", event_id=str(event.event_id))
            return RecordResult(event.event_id, already_recorded=True, entries=0, amount_total=0)
        if isinstance(event, PaymentSettled):
            rows = await self._sale_rows(event)
        else:
            rows = await self._refund_rows(event)
        await self._repo.add_entries(rows)
        total = sum(int(row["amount"]) for row in rows)
        await self._repo.finish_event(event.event_id, len(rows), total)
        await self._refresh({(row["household_id"], month_of(row["sale_date"])) for row in rows})
        log.info(
            "attribution_event_recorded",
            event_id=str(event.event_id),
            order_id=str(event.order_id),
            kind=kind.value,
            entries=len(rows),
            amount_total=total,
        )
        return RecordResult(
            event.event_id, already_recorded=False, entries=len(rows), amount_total=total
        )

    async def _sale_rows(self, event: PaymentSettled) -> list[dict[str, Any]]:
        day = local_day(event.settled_at)
        shares_by_line: list[tuple[Any, list[tuple[uuid.UUID, int]]]] = []
        for line in event.lines:
            if line.net_amount == 0:
                continue
            if line.household_id is not None:
                shares_by_line.append((line, [(line.household_id, line.net_amount)]))
                continue
            contributions = (
                await self._repo.lot_contributions(line.lot_id) if line.lot_id is not None else []
            )
            if not contributions:
                raise CannotAttribute(
                    f"lot {line.lot_id} of cooperative {line.cooperative_id} records no member "
                    "contributions to split its revenue by"
                )
            split = split_amount(line.net_amount, {str(h): q for h, q in contributions})
            shares_by_line.append((line, [(uuid.UUID(h), amount) for h, amount in split.items()]))

        household_ids = sorted({h for _, shares in shares_by_line for h, _ in shares})
        facts = await self._repo.household_facts(household_ids, day)
        missing = [h for h in household_ids if h not in facts]
        if missing:
            raise CannotAttribute(f"unknown household {missing[0]}")
        standings = await self._sellers.standings_on(household_ids, day)
        areas = await self._areas({f.commune_code for f in facts.values()})

        rows: list[dict[str, Any]] = []
        for line, shares in shares_by_line:
            for household_id, amount in shares:
                if amount == 0:
                    continue  # a contribution too small to earn one đồng of this line
                fact = facts[household_id]
                standing = standings[household_id]
                if standing.status is None:
                    status = StatusGroup.UNREVIEWED.value
                elif standing.newly_escaped:
                    status = StatusGroup.NEWLY_ESCAPED.value
                else:
                    status = standing.status.value
                rows.append(
                    {
                        "event_id": event.event_id,
                        "kind": EntryKind.SALE.value,
                        "order_id": event.order_id,
                        "order_line_id": line.order_line_id,
                        "household_id": household_id,
                        "cooperative_id": line.cooperative_id,
                        "product_id": line.product_id,
                        "lot_id": line.lot_id,
                        "category": line.category,
                        "amount": amount,
                        "poverty_status": status,
                        "income_per_person_month": fact.income_per_person_month,
                        "members_count": fact.members_count,
                        "area": areas[fact.commune_code],
                        "commune_code": fact.commune_code,
                        "province_code": fact.province_code,
                        "admin_version": fact.admin_version,
                        "sale_date": day,
                        "booked_at": event.settled_at,
                    }
                )
        return rows

    async def _refund_rows(self, event: PaymentRefunded) -> list[dict[str, Any]]:
        lines = [line for line in event.lines if line.net_amount > 0]
        entries = await self._repo.line_entries([line.order_line_id for line in lines])
        by_line: dict[uuid.UUID, list[AttributionEntry]] = defaultdict(list)
        for entry in entries:
            by_line[entry.order_line_id].append(entry)

        rows: list[dict[str, Any]] = []
        for line in lines:
            line_entries = by_line.get(line.order_line_id, [])
            sales = [e for e in line_entries if e.kind == EntryKind.SALE.value]
            if not sales or any(e.order_id != event.order_id for e in sales):
                raise CannotAttribute(
                    f"order line {line.order_line_id} of order {event.order_id} has no "
                    "attributed sale to refund"
                )
            original: dict[uuid.UUID, int] = defaultdict(int)
            remaining: dict[uuid.UUID, int] = defaultdict(int)
            sale_of: dict[uuid.UUID, AttributionEntry] = {}
            for entry in line_entries:
                remaining[entry.household_id] += entry.amount
                if entry.kind == EntryKind.SALE.value:
                    original[entry.household_id] += entry.amount
                    sale_of.setdefault(entry.household_id, entry)
            left = sum(remaining.values())
            if line.net_amount > left:
                raise RefundExceedsAttribution(
                    f"order line {line.order_line_id}: refund of {line.net_amount} đồng but "
                    f"only {left} đồng are still attributed"
                )
            order = sorted(original, key=lambda h: (-original[h], h))
            split = split_amount(line.net_amount, {str(h): remaining[h] for h in order})
            for household_id in order:
                amount = split[str(household_id)]
                if amount == 0:
                    continue
                sale = sale_of[household_id]
                rows.append(
                    {
                        "event_id": event.event_id,
                        "kind": EntryKind.REFUND.value,
                        "order_id": event.order_id,
                        "order_line_id": line.order_line_id,
                        "household_id": household_id,
                        "cooperative_id": sale.cooperative_id,
                        "product_id": sale.product_id,
                        "lot_id": sale.lot_id,
                        "category": sale.category,
                        "amount": -amount,
                        "poverty_status": sale.poverty_status,
                        "income_per_person_month": sale.income_per_person_month,
                        "members_count": sale.members_count,
                        "area": sale.area,
                        "commune_code": sale.commune_code,
                        "province_code": sale.province_code,
                        "admin_version": sale.admin_version,
                        "sale_date": sale.sale_date,
                        "booked_at": event.refunded_at,
                    }
                )
        return rows

    async def _areas(self, commune_codes: Iterable[str]) -> dict[str, str]:
        areas: dict[str, str] = {}
        for code in sorted(commune_codes):
            try:
                areas[code] = (await self._geo.area_of(code)).value
            except CommuneNotFound:
                raise CannotAttribute(f"the household's commune {code!r} is not known") from None
        return areas

    # ---- Aggregates --------------------------------------------------------------------

    async def _refresh(self, keys: Iterable[HouseholdMonthKey]) -> int:
        """Recompute the household-months of `keys` from the ledger and add the change of
        each to its commune's and province's aggregates. Runs under the rows' locks, so the
        old figures subtracted are exactly the ones a concurrent writer left."""
        ordered = sorted(set(keys))
        if not ordered:
            return 0
        locked = await self._repo.lock_household_months(ordered)
        shares = await self._repo.income_shares()
        revenue: dict[HouseholdMonthKey, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        income_bps: dict[HouseholdMonthKey, int] = defaultdict(int)
        for household_id, month, status, category, amount in await self._repo.month_sums(ordered):
            key = (household_id, month)
            revenue[key][status] += amount
            income_bps[key] += amount * share_bps_for(category, shares)

        deltas = AreaDeltas()
        updates: list[tuple[uuid.UUID, MonthFigures]] = []
        for latest in await self._repo.month_latest_sales(ordered):
            key = (latest.household_id, latest.month)
            figures = month_figures(
                MonthFacts(
                    household_id=latest.household_id,
                    month=latest.month,
                    commune_code=latest.commune_code,
                    province_code=latest.province_code,
                    admin_version=latest.admin_version,
                    area=latest.area,
                    status=latest.poverty_status,
                    members_count=latest.members_count,
                    baseline_income_per_person=latest.income_per_person_month,
                    revenue_by_status=revenue[key],
                    income_bps_amount=income_bps[key],
                )
            )
            row = locked[key]
            deltas.apply(_view(row), -1)
            deltas.apply(_figures_view(figures), +1)
            updates.append((row.id, figures))
        await self._repo.save_household_months(updates)
        await self._repo.add_to_areas(deltas.nonzero())
        await self._repo.refresh_area_medians([key for key, _ in deltas.nonzero()])
        return len(updates)

    async def refresh_household_months(self, keys: Iterable[HouseholdMonthKey]) -> int:
        """Bring the aggregates of these household-months up to date with the ledger (used
        after a bulk load and by the rebuild); idempotent."""
        ordered = sorted(set(keys))
        done = 0
        for start in range(0, len(ordered), REFRESH_CHUNK):
            done += await self._refresh(ordered[start : start + REFRESH_CHUNK])
        return done

    async def refresh_entries(self, entry_ids: Sequence[uuid.UUID]) -> int:
        return await self.refresh_household_months(await self._repo.keys_of_entries(entry_ids))

    async def rebuild_aggregates(self) -> int:
        """Recompute every aggregate from the ledger: after an income share changes, or to
        repair what the nightly check found. Writers wait for it; readers keep reading the
        previous figures until it commits."""
        await self._repo.lock_aggregates_exclusively()
        await self._repo.clear_aggregates()
        keys = await self._repo.ledger_keys()
        done = await self.refresh_household_months(keys)
        log.info("impact_aggregates_rebuilt", household_months=done)
        return done

    # ---- Income shares -----------------------------------------------------------------

    async def income_shares(self) -> Sequence[IncomeShare]:
        return await self._repo.list_income_shares()

    async def set_income_share(
        self, user: AuthenticatedUser, category: str, share_percent: Any
    ) -> IncomeShare:
        """An admin sets a category's share (or the default) in percent, 0-100 with at most
        two decimals; the aggregates are then rebuilt by a job after the commit."""
        known = {c.value for c in Category} | {DEFAULT_SHARE_KEY}
        if category not in known:
            raise InvalidIncomeShare(
                "category", f"must be one of {', '.join(sorted(known))}, got {category!r}"
            )
        share_bps = percent_to_bps(share_percent)
        row = await self._repo.set_income_share(category, share_bps, user.id)
        self._uow.add_job(JobName.REBUILD_IMPACT_AGGREGATES)
        log.info("income_share_set", category=category, share_bps=share_bps, user_id=str(user.id))
        return row

    # ---- Reconciliation ----------------------------------------------------------------

    async def reconcile(self, seller_ledger_totals: Mapping[uuid.UUID, int]) -> ReconcileReport:
        """Compare, order by order, the đồng attributed to households with the sellers'
        ledger (net of refunds). Every difference is logged at error level and counted in
        `marketplace_attribution_mismatches_total`; the aggregates are checked against the
        household-month rows they are kept from."""
        attributed = await self._repo.totals_by_order()
        mismatches: list[Mismatch] = []
        for order_id in sorted(set(attributed) | set(seller_ledger_totals)):
            ours = attributed.get(order_id, 0)
            theirs = seller_ledger_totals.get(order_id, 0)
            if ours != theirs:
                mismatch = Mismatch(order_id, ours, theirs)
                mismatches.append(mismatch)
                ATTRIBUTION_MISMATCHES.inc()
                log.error(
                    "attribution_mismatch",
                    order_id=str(order_id),
                    attributed_amount=ours,
                    seller_ledger_amount=theirs,
                    difference=mismatch.difference,
                )
        stored = await self._repo.area_counters()
        expected = await self._repo.area_totals_from_household_months()
        zero = dict.fromkeys(AREA_COUNTERS, 0)
        aggregate_mismatches = 0
        for key in sorted(set(stored) | set(expected), key=str):
            if stored.get(key, zero) != expected.get(key, zero):
                aggregate_mismatches += 1
                log.error("impact_aggregate_mismatch", area=str(key))
        log.info(
            "attribution_reconciled",
            orders_checked=len(set(attributed) | set(seller_ledger_totals)),
            mismatches=len(mismatches),
            aggregate_mismatches=aggregate_mismatches,
        )
        return ReconcileReport(
            orders_checked=len(set(attributed) | set(seller_ledger_totals)),
            mismatches=tuple(mismatches),
            aggregate_mismatches=aggregate_mismatches,
        )


def percent_to_bps(share_percent: Any) -> int:
    """0-100 percent with at most two decimals, as exact basis points (no float rounding)."""
    from decimal import Decimal, InvalidOperation  # noqa: PLC0415 - only this parser needs it

    if isinstance(share_percent, bool):
        raise InvalidIncomeShare("share_percent", "must be a number from 0 to 100")
    try:
        value = Decimal(str(share_percent))
    except InvalidOperation:
        raise InvalidIncomeShare("share_percent", "must be a number from 0 to 100") from None
    if not value.is_finite() or value < 0 or value > 100:
        raise InvalidIncomeShare("share_percent", f"must be from 0 to 100, got {share_percent}")
    bps = value * 100
    if bps != bps.to_integral_value():
        raise InvalidIncomeShare("share_percent", "at most two decimals")
    return int(bps)


def _check_event(event: SettlementEvent) -> None:
    """Refuse an event that cannot be right before anything is written."""
    if isinstance(event, PaymentSettled):
        at, at_field = event.settled_at, "settled_at"
    else:
        at, at_field = event.refunded_at, "refunded_at"
    if at.tzinfo is None:
        raise InvalidSettlementEvent(at_field, "must carry a time zone")
    if not event.lines:
        raise InvalidSettlementEvent("lines", "an event needs at least one line")
    seen: set[uuid.UUID] = set()
    lines: Sequence[SettledLine | RefundedLine] = event.lines
    for index, line in enumerate(lines):
        if line.order_line_id in seen:
            raise InvalidSettlementEvent(f"lines[{index}].order_line_id", "appears twice")
        seen.add(line.order_line_id)
        if line.net_amount < 0:
            raise InvalidSettlementEvent(f"lines[{index}].net_amount", "must not be negative")
    if isinstance(event, PaymentSettled):
        for index, sale in enumerate(event.lines):
            if (sale.household_id is None) == (sale.cooperative_id is None):
                raise InvalidSettlementEvent(
                    f"lines[{index}]", "needs exactly one of household_id and cooperative_id"
                )
            if sale.cooperative_id is not None and sale.lot_id is None:
                raise InvalidSettlementEvent(
                    f"lines[{index}].lot_id", "a cooperative's line must name the lot sold"
                )
            if sale.net_amount > sale.gross_amount:
                raise InvalidSettlementEvent(
                    f"lines[{index}].net_amount", "must not exceed gross_amount"
                )


__all__ = [
    "ATTRIBUTION_MISMATCHES",
    "BPS",
    "ImpactService",
    "Mismatch",
    "ReconcileReport",
    "RecordResult",
]

"""Every query of the impact domain.

Households, their reviews and lot contributions belong to the sellers and catalog domains;
the few facts attribution needs from them (members, the review's income, a lot's
contributions) are read here, never written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Date,
    and_,
    cast,
    func,
    literal_column,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.catalog.models import LotContribution
from marketplace.impact.figures import (
    AREA_COUNTERS,
    STATUS_GROUPS,
    AreaKey,
    MonthFigures,
)
from marketplace.impact.models import (
    AreaLevel,
    AreaMonth,
    AttributionEntry,
    AttributionEvent,
    HouseholdMonth,
    ImpactExport,
    IncomeShare,
)
from marketplace.sellers.models import Household, HouseholdStatusEntry

HouseholdMonthKey = tuple[uuid.UUID, date]


@dataclass(frozen=True, slots=True)
class HouseholdFacts:
    household_id: uuid.UUID
    head_name: str
    members_count: int
    commune_code: str
    province_code: str
    admin_version: str
    income_per_person_month: int | None
    """Of the latest review on or before the day asked about; None if none or not recorded."""


@dataclass(frozen=True, slots=True)
class HouseholdMonthRow:
    figures: HouseholdMonth
    head_name: str


@dataclass(frozen=True, slots=True)
class HouseholdFilter:
    admin_version: str
    province_code: str | None
    commune_code: str | None
    status: str | None
    month_from: date
    month_to: date


class AreaMonthFigures(NamedTuple):
    """An area-month row as reports read it; the field names are the table's columns and
    their order is the order the report statements select them in."""

    month: date
    households_selling: int
    revenue_amount: int
    households_poor: int
    revenue_poor: int
    households_near_poor: int
    revenue_near_poor: int
    households_newly_escaped: int
    revenue_newly_escaped: int
    households_average_living_standard: int
    revenue_average_living_standard: int
    households_not_poor: int
    revenue_not_poor: int
    households_unreviewed: int
    revenue_unreviewed: int
    income_amount: int
    median_uplift_per_person: int | None
    households_closing_gap: int
    households_income_unknown: int


class CommuneTotals(NamedTuple):
    """A commune's counters summed over the months of a range."""

    code: str
    households_selling: int
    revenue_amount: int
    revenue_poor: int
    revenue_near_poor: int
    income_amount: int


@dataclass(frozen=True, slots=True)
class AreaSummaryRows:
    code: str
    name: str
    province_code: str
    months: list[AreaMonthFigures]
    communes: list[CommuneTotals] | None


class HouseholdPageRow(NamedTuple):
    """A household-month of a report page; `head_name` is the household's, the rest the
    household-month row's columns of the same names."""

    household_id: uuid.UUID
    head_name: str
    commune_code: str
    province_code: str
    month: date
    status: str
    members_count: int
    revenue_amount: int
    income_amount: int
    uplift_per_person: int
    poverty_line: int | None
    baseline_income_per_person: int | None
    gap_before: int | None
    gap_after: int | None
    closes_gap: bool | None


@dataclass(frozen=True, slots=True)
class HouseholdPage:
    province_code: str | None
    """The province of the commune or province looked up; None for every place."""
    total: int
    rows: list[HouseholdPageRow]


PlaceLevel = Literal["commune", "province", "all"]


_INSERT_EMPTY_MONTHS = text(
    "INSERT INTO household_month_impact (id, household_id, month, commune_code, province_code, "
    "admin_version, area, status, members_count, revenue_amount, revenue_poor, "
    "revenue_near_poor, revenue_newly_escaped, revenue_average_living_standard, "
    "revenue_not_poor, revenue_unreviewed, income_amount, uplift_per_person, created_at, "
    "updated_at) "
    "SELECT gen_random_uuid(), k.h, k.m, '', '', '', '', '', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, "
    "now(), now() FROM unnest(CAST(:hids AS uuid[]), CAST(:months AS date[])) "
    "WITH ORDINALITY AS k(h, m, n) ORDER BY k.n "
    "ON CONFLICT (household_id, month) DO NOTHING"
)
"""Empty household-month rows for keys (arrays of household ids and months, in order)."""

_MEDIAN_OF_AREA = (
    "UPDATE area_month_impact a SET median_uplift_per_person = ("
    "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY h.uplift_per_person) "
    "FROM household_month_impact h WHERE h.admin_version = a.admin_version "
    "AND h.{column} = a.code AND h.month = a.month AND h.revenue_amount > 0) "
    "FROM unnest(CAST(:codes AS varchar[]), CAST(:versions AS varchar[]), "
    "CAST(:months AS date[])) AS k(code, admin_version, month) "
    "WHERE a.level = :level AND a.code = k.code "
    "AND a.admin_version = k.admin_version AND a.month = k.month"
)
_AREA_MEDIANS = {
    "commune": text(_MEDIAN_OF_AREA.replace("{column}", "commune_code")),
    "province": text(_MEDIAN_OF_AREA.replace("{column}", "province_code")),
}

# The ledger rows of each household-month, found per key through the (household, day) index:
# a LATERAL subquery with an aggregate or a LIMIT is not flattened into a join, so the work
# follows the keys asked for, never the size of the ledger (a plain join of the keys made
# the planner hash the whole ledger). Keys travel as two arrays; the SQL is built from
# constants only (S608 below).
_KEYS = "unnest(CAST(:hids AS uuid[]), CAST(:months AS date[])) AS k(household_id, month)"
_ROWS_OF_KEY = (
    "e.household_id = k.household_id AND e.sale_date >= k.month "
    "AND e.sale_date < CAST(k.month + interval '1 month' AS date)"
)
_MONTH_SUMS = text(
    "SELECT k.household_id, k.month, s.poverty_status, s.category, s.total "  # noqa: S608
    f"FROM {_KEYS} CROSS JOIN LATERAL ("
    "SELECT e.poverty_status, e.category, sum(e.amount) AS total "
    f"FROM attribution_entries e WHERE {_ROWS_OF_KEY} "
    "GROUP BY e.poverty_status, e.category) s"
)
_MONTH_LATEST_SALES = text(
    "SELECT k.household_id, k.month, l.commune_code, l.province_code, l.admin_version, "  # noqa: S608
    "l.area, l.poverty_status, l.members_count, l.income_per_person_month "
    f"FROM {_KEYS} CROSS JOIN LATERAL ("
    "SELECT e.commune_code, e.province_code, e.admin_version, e.area, e.poverty_status, "
    "e.members_count, e.income_per_person_month FROM attribution_entries e "
    f"WHERE {_ROWS_OF_KEY} AND e.kind = 'sale' "
    "ORDER BY e.sale_date DESC, e.booked_at DESC, e.id DESC LIMIT 1) l"
)

# The household-months of some ledger rows, each row found by its primary key: as a plain
# filter (`id = ANY(...)` of 10,000 ids) the planner read the whole ledger instead.
_KEYS_OF_ENTRIES = text(
    "SELECT DISTINCT e.household_id, CAST(date_trunc('month', e.sale_date) AS date) "
    "FROM unnest(CAST(:ids AS uuid[])) AS i(id) CROSS JOIN LATERAL ("
    "SELECT household_id, sale_date FROM attribution_entries WHERE id = i.id LIMIT 1) e"
)


class ImpactRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # ---- Facts from other domains ------------------------------------------------------

    async def household_facts(
        self, household_ids: Sequence[uuid.UUID], on: date
    ) -> dict[uuid.UUID, HouseholdFacts]:
        """Members, place and the income of the review in force on `on` (latest review on
        or before it; of one review day the last recorded, as the sellers domain reads it)."""
        if not household_ids:
            return {}
        latest = (
            select(
                HouseholdStatusEntry.household_id,
                HouseholdStatusEntry.income_per_person_month,
            )
            .where(
                HouseholdStatusEntry.household_id.in_(household_ids),
                HouseholdStatusEntry.review_date <= on,
            )
            .ext(distinct_on(HouseholdStatusEntry.household_id))
            .order_by(
                HouseholdStatusEntry.household_id,
                HouseholdStatusEntry.review_date.desc(),
                HouseholdStatusEntry.created_at.desc(),
                HouseholdStatusEntry.id.desc(),
            )
            .subquery()
        )
        result = await self._session.execute(
            select(Household, latest.c.income_per_person_month)
            .outerjoin(latest, latest.c.household_id == Household.id)
            .where(Household.id.in_(household_ids))
        )
        return {
            household.id: HouseholdFacts(
                household_id=household.id,
                head_name=household.head_name,
                members_count=household.members_count,
                commune_code=household.commune_code,
                province_code=household.province_code,
                admin_version=household.admin_version,
                income_per_person_month=income,
            )
            for household, income in result
        }

    async def lot_contributions(self, lot_id: uuid.UUID) -> list[tuple[uuid.UUID, int]]:
        """Member households and their quantities in a cooperative lot, largest first, then
        by household id: the stable order in which split ties go to the earlier share."""
        result = await self._session.execute(
            select(LotContribution.household_id, LotContribution.quantity)
            .where(LotContribution.lot_id == lot_id)
            .order_by(LotContribution.quantity.desc(), LotContribution.household_id)
        )
        return [(household_id, quantity) for household_id, quantity in result]

    # ---- Ledger ------------------------------------------------------------------------

    async def claim_event(
        self, event_id: uuid.UUID, kind: str, order_id: uuid.UUID, occurred_at: datetime
    ) -> bool:
        """True for the first delivery of an event. A concurrent second delivery waits here
        on the unique index until the first commits (then gets False) or rolls back (then
        gets True and does the work itself)."""
        result = await self._session.execute(
            insert(AttributionEvent)
            .values(
                id=uuid.uuid4(),
                event_id=event_id,
                kind=kind,
                order_id=order_id,
                occurred_at=occurred_at,
                entries_count=0,
                amount_total=0,
            )
            .on_conflict_do_nothing(index_elements=[AttributionEvent.event_id])
            .returning(AttributionEvent.id)
        )
        return result.scalar_one_or_none() is not None

    async def finish_event(
        self, event_id: uuid.UUID, entries_count: int, amount_total: int
    ) -> None:
        await self._session.execute(
            update(AttributionEvent)
            .where(AttributionEvent.event_id == event_id)
            .values(entries_count=entries_count, amount_total=amount_total)
        )

    async def line_entries(self, order_line_ids: Sequence[uuid.UUID]) -> Sequence[AttributionEntry]:
        """Every ledger row of these order lines, sales and refunds, oldest first."""
        if not order_line_ids:
            return []
        result = await self._session.execute(
            select(AttributionEntry)
            .where(AttributionEntry.order_line_id.in_(order_line_ids))
            .order_by(AttributionEntry.booked_at, AttributionEntry.id)
        )
        return result.scalars().all()

    async def add_entries(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self._session.execute(
                insert(AttributionEntry), [{"id": uuid.uuid4(), **row} for row in rows]
            )

    async def income_shares(self) -> dict[str, int]:
        result = await self._session.execute(select(IncomeShare.category, IncomeShare.share_bps))
        return {str(category): int(share) for category, share in result}

    async def list_income_shares(self) -> Sequence[IncomeShare]:
        result = await self._session.execute(select(IncomeShare).order_by(IncomeShare.category))
        return result.scalars().all()

    async def set_income_share(
        self, category: str, share_bps: int, user_id: uuid.UUID | None
    ) -> IncomeShare:
        result = await self._session.execute(
            insert(IncomeShare)
            .values(
                id=uuid.uuid4(), category=category, share_bps=share_bps, updated_by_user_id=user_id
            )
            .on_conflict_do_update(
                index_elements=[IncomeShare.category],
                set_={
                    "share_bps": share_bps,
                    "updated_by_user_id": user_id,
                    "updated_at": func.now(),
                },
            )
            .returning(IncomeShare)
        )
        return result.scalar_one()

    async def totals_by_order(
        self, order_ids: Sequence[uuid.UUID] | None = None
    ) -> dict[uuid.UUID, int]:
        """Net đồng attributed per order (sales minus refunds)."""
        query = select(AttributionEntry.order_id, func.sum(AttributionEntry.amount)).group_by(
            AttributionEntry.order_id
        )
        if order_ids is not None:
            query = query.where(AttributionEntry.order_id.in_(order_ids))
        result = await self._session.execute(query)
        return {order_id: int(total) for order_id, total in result}

    # ---- Household-month and area aggregates -------------------------------------------

    async def lock_household_months(
        self, keys: Sequence[HouseholdMonthKey]
    ) -> dict[HouseholdMonthKey, HouseholdMonth]:
        """Make sure a row exists for every key, then lock them all in key order.

        An empty row (empty codes, every amount 0: it counts for nothing) is inserted first
        so that two transactions adding the first sale of the same household-month
        serialise on its unique index instead of both believing the row is new; the fixed
        order keeps concurrent transactions from deadlocking. The keys travel as two arrays,
        so any number of them is one statement with two parameters."""
        ordered = sorted(set(keys))
        if not ordered:
            return {}
        await self._session.execute(
            _INSERT_EMPTY_MONTHS,
            {"hids": [h for h, _ in ordered], "months": [m for _, m in ordered]},
        )
        keyed = _keys_table(ordered)
        result = await self._session.execute(
            select(HouseholdMonth)
            .join(
                keyed,
                and_(
                    HouseholdMonth.household_id == keyed.c.household_id,
                    HouseholdMonth.month == keyed.c.month,
                ),
            )
            .order_by(HouseholdMonth.household_id, HouseholdMonth.month)
            .with_for_update(of=HouseholdMonth)
            .execution_options(populate_existing=True)
        )
        return {(row.household_id, row.month): row for row in result.scalars().all()}

    async def month_sums(
        self, keys: Sequence[HouseholdMonthKey]
    ) -> list[tuple[uuid.UUID, date, str, str, int]]:
        """(household, month, status, category, Σ amount) over the ledger rows of the keys."""
        result = await self._session.execute(_MONTH_SUMS, _key_arrays(keys))
        return [(h, m, s, c, int(total)) for h, m, s, c, total in result]

    async def month_latest_sales(self, keys: Sequence[HouseholdMonthKey]) -> Sequence[Any]:
        """Facts of each key's latest sale: the status, place and members the month shows."""
        result = await self._session.execute(_MONTH_LATEST_SALES, _key_arrays(keys))
        return result.all()

    async def save_household_months(self, rows: Sequence[tuple[uuid.UUID, MonthFigures]]) -> None:
        """Write recomputed figures onto the locked rows (by primary key, one round trip)."""
        if not rows:
            return
        await self._session.execute(
            update(HouseholdMonth),
            [
                {
                    "id": row_id,
                    "commune_code": f.commune_code,
                    "province_code": f.province_code,
                    "admin_version": f.admin_version,
                    "area": f.area,
                    "status": f.status,
                    "members_count": f.members_count,
                    "revenue_amount": f.revenue_amount,
                    **{f"revenue_{g.value}": f.revenue_by_status[g.value] for g in STATUS_GROUPS},
                    "income_amount": f.income_amount,
                    "uplift_per_person": f.uplift_per_person,
                    "poverty_line": f.poverty_line,
                    "baseline_income_per_person": f.baseline_income_per_person,
                    "gap_before": f.gap_before,
                    "gap_after": f.gap_after,
                    "closes_gap": f.closes_gap,
                }
                for row_id, f in rows
            ],
        )

    async def add_to_areas(self, deltas: Sequence[tuple[AreaKey, dict[str, int]]]) -> None:
        """Add each change to its area row (created at zero if missing) in one statement,
        rows in the given order, which the caller keeps fixed so that concurrent
        transactions lock area rows in the same order."""
        if not deltas:
            return
        stmt = insert(AreaMonth)
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[
                    AreaMonth.level,
                    AreaMonth.admin_version,
                    AreaMonth.code,
                    AreaMonth.month,
                ],
                set_={
                    **{
                        name: getattr(AreaMonth, name) + stmt.excluded[name]
                        for name in AREA_COUNTERS
                    },
                    "updated_at": func.now(),
                },
            ),
            [
                {
                    "id": uuid.uuid4(),
                    "level": key.level,
                    "code": key.code,
                    "province_code": key.province_code,
                    "admin_version": key.admin_version,
                    "month": key.month,
                    **delta,
                }
                for key, delta in deltas
            ],
        )

    async def refresh_area_medians(self, keys: Sequence[AreaKey]) -> None:
        """Recompute the median uplift of these area-months from their household-months.
        Called after `add_to_areas` has locked the area rows, so a concurrent writer's
        household-months are committed (and seen) before this statement runs."""
        for level, statement in _AREA_MEDIANS.items():
            chosen = [k for k in keys if k.level == level and k.code]
            if not chosen:
                continue
            await self._session.execute(
                statement,
                {
                    "level": level,
                    "codes": [k.code for k in chosen],
                    "versions": [k.admin_version for k in chosen],
                    "months": [k.month for k in chosen],
                },
            )

    async def lock_aggregates_exclusively(self) -> None:
        """For a rebuild: writers of the aggregates wait until it commits; readers do not."""
        await self._session.execute(
            text("LOCK TABLE household_month_impact, area_month_impact IN SHARE ROW EXCLUSIVE MODE")
        )

    async def clear_aggregates(self) -> None:
        await self._session.execute(text("DELETE FROM area_month_impact"))
        await self._session.execute(text("DELETE FROM household_month_impact"))

    async def ledger_keys(self, *, since: datetime | None = None) -> list[HouseholdMonthKey]:
        """Household-months that have ledger rows (booked since `since`, when given)."""
        month = cast(func.date_trunc("month", AttributionEntry.sale_date), Date)
        query = select(AttributionEntry.household_id, month).distinct()
        if since is not None:
            query = query.where(AttributionEntry.created_at >= since)
        result = await self._session.execute(query)
        return [(h, m) for h, m in result]

    async def keys_of_entries(self, entry_ids: Sequence[uuid.UUID]) -> list[HouseholdMonthKey]:
        result = await self._session.execute(_KEYS_OF_ENTRIES, {"ids": list(entry_ids)})
        return [(h, m) for h, m in result]

    async def area_totals_from_household_months(
        self,
    ) -> dict[tuple[str, str, str, date], dict[str, int]]:
        """The area counters recomputed from the household-month rows (for the nightly check)."""
        out: dict[tuple[str, str, str, date], dict[str, int]] = {}
        for level, code_column in (
            ("commune", HouseholdMonth.commune_code),
            ("province", HouseholdMonth.province_code),
        ):
            selling = HouseholdMonth.revenue_amount > 0
            columns: list[ColumnElement[Any]] = [
                func.count().filter(selling).label("households_selling"),
                func.sum(HouseholdMonth.revenue_amount).label("revenue_amount"),
                func.sum(HouseholdMonth.income_amount).label("income_amount"),
                func.count()
                .filter(selling, HouseholdMonth.closes_gap.is_(True))
                .label("households_closing_gap"),
                func.count()
                .filter(selling, HouseholdMonth.baseline_income_per_person.is_(None))
                .label("households_income_unknown"),
            ]
            for g in STATUS_GROUPS:
                column = getattr(HouseholdMonth, f"revenue_{g.value}")
                columns.append(func.count().filter(column > 0).label(f"households_{g.value}"))
                columns.append(func.sum(column).label(f"revenue_{g.value}"))
            result = await self._session.execute(
                select(
                    HouseholdMonth.admin_version, code_column, HouseholdMonth.month, *columns
                ).group_by(HouseholdMonth.admin_version, code_column, HouseholdMonth.month)
            )
            for row in result.mappings():
                key = (level, row["admin_version"], row[code_column.key], row["month"])
                out[key] = {name: int(row[name] or 0) for name in AREA_COUNTERS}
        return out

    async def area_counters(self) -> dict[tuple[str, str, str, date], dict[str, int]]:
        result = await self._session.execute(select(AreaMonth))
        return {
            (a.level, a.admin_version, a.code, a.month): {
                name: getattr(a, name) for name in AREA_COUNTERS
            }
            for a in result.scalars().all()
        }

    # ---- Reports -----------------------------------------------------------------------
    #
    # Each report is one statement: the place (its name, its province, whether it exists)
    # and every figure come back together, so a request makes one round trip and reads one
    # snapshot. The statement runs on the session's connection through the driver: outside
    # a transaction that is one snapshot by itself and needs no BEGIN or COMMIT; inside one
    # (a request that wrote first, a test's outer transaction) it reads that transaction.
    # The geo tables are read here, never written (as households and reviews are above).

    async def _fetch(self, sql: str, *args: object) -> list[Any]:
        """asyncpg records (asyncpg ships no type information): by name or by position."""
        connection = await self._session.connection()
        driver: Any = (await connection.get_raw_connection()).driver_connection
        rows: list[Any] = await driver.fetch(sql, *args)
        return rows

    async def area_summary(
        self,
        level: AreaLevel,
        admin_version: str,
        code: str,
        month_from: date,
        month_to: date,
        *,
        with_communes: bool = False,
    ) -> AreaSummaryRows | None:
        """A commune's or province's name and figures by month (only the months that have a
        row), with each commune's totals over the range when asked; None if no such place."""
        sql = _AREA_SUMMARY_SQL[level, with_communes and level is AreaLevel.PROVINCE]
        rows = await self._fetch(sql, admin_version, code, month_from, month_to)
        if not rows:
            return None
        row = rows[0]
        return AreaSummaryRows(
            code=row["code"],
            name=row["name"],
            province_code=row["province_code"],
            months=[AreaMonthFigures._make(m) for m in row["months"]],
            communes=(
                [CommuneTotals._make(c) for c in row["communes"]]
                if row["communes"] is not None
                else None
            ),
        )

    async def area_months(
        self, level: AreaLevel, admin_version: str, code: str, month_from: date, month_to: date
    ) -> list[AreaMonthFigures]:
        rows = await self._fetch(
            _AREA_MONTHS_SQL, level.value, admin_version, code, month_from, month_to
        )
        return [AreaMonthFigures._make(r) for r in rows]

    async def household_page(
        self,
        place: PlaceLevel,
        code: str | None,
        *,
        admin_version: str,
        status: str | None,
        month_from: date,
        month_to: date,
        limit: int,
        offset: int,
    ) -> HouseholdPage | None:
        """One page of the household-months with sales of a commune, a province or every
        place (newest month first, then by household), the total, and the place's province;
        None if the commune or province does not exist.

        Without a status filter the total is the sum of the area-months' `households_selling`
        (kept in the same transaction as the household-months, so equal to counting them);
        with one it is a count, since a household reviewed mid-month counts in two groups of
        its area-month but has one status in the list."""
        sql = _HOUSEHOLD_PAGE_SQL[place, status is not None]
        args: list[object] = [admin_version, code, month_from, month_to, limit, offset]
        if status is not None:
            args.append(status)
        rows = await self._fetch(sql, *args)
        if not rows:
            return None
        first = rows[0]
        items = (
            [HouseholdPageRow._make(r[2:]) for r in rows]
            if first["household_id"] is not None
            else []
        )
        return HouseholdPage(
            province_code=first["place_province_code"], total=int(first["total"]), rows=items
        )

    async def uplift_distribution(self, scope: HouseholdFilter, edges: Sequence[int]) -> list[int]:
        """Households selling per uplift bucket [edges[i], edges[i+1]) over the range; the last
        bucket is open-ended."""
        bucket = func.width_bucket(
            HouseholdMonth.uplift_per_person,
            cast(
                literal_column(_array_literal(edges)), ARRAY(HouseholdMonth.uplift_per_person.type)
            ),
        )
        result = await self._session.execute(
            select(bucket, func.count())
            .where(*_scope_conditions(scope), HouseholdMonth.revenue_amount > 0)
            .group_by(bucket)
        )
        counts = [0] * len(edges)
        for index, count in result:
            if index >= 1:
                counts[int(index) - 1] += int(count)
        return counts

    async def household_months(
        self,
        scope: HouseholdFilter,
        *,
        limit: int,
        offset: int,
        order: str = "household",
    ) -> tuple[list[HouseholdMonthRow], int]:
        """One page of household-months in scope, and the total count."""
        conditions = [*_scope_conditions(scope), HouseholdMonth.revenue_amount > 0]
        if scope.status is not None:
            conditions.append(HouseholdMonth.status == scope.status)
        total = await self._session.scalar(
            select(func.count()).select_from(HouseholdMonth).where(*conditions)
        )
        query = (
            select(HouseholdMonth, Household.head_name)
            .join(Household, Household.id == HouseholdMonth.household_id)
            .where(*conditions)
        )
        if order == "gap":
            query = query.where(HouseholdMonth.gap_after > 0).order_by(
                HouseholdMonth.gap_after.desc(), HouseholdMonth.household_id
            )
        else:
            query = query.order_by(HouseholdMonth.month.desc(), HouseholdMonth.household_id.desc())
        result = await self._session.execute(query.limit(limit).offset(offset))
        rows = [HouseholdMonthRow(figures=hm, head_name=name) for hm, name in result]
        return rows, int(total or 0)

    async def household_months_after(
        self, scope: HouseholdFilter, after: tuple[date, uuid.UUID] | None, limit: int
    ) -> list[HouseholdMonthRow]:
        """Keyset pages (month, household) for exports: stable while rows are added."""
        conditions = [*_scope_conditions(scope), HouseholdMonth.revenue_amount > 0]
        if scope.status is not None:
            conditions.append(HouseholdMonth.status == scope.status)
        if after is not None:
            conditions.append(
                tuple_(HouseholdMonth.month, HouseholdMonth.household_id) > tuple_(*after)
            )
        result = await self._session.execute(
            select(HouseholdMonth, Household.head_name)
            .join(Household, Household.id == HouseholdMonth.household_id)
            .where(*conditions)
            .order_by(HouseholdMonth.month, HouseholdMonth.household_id)
            .limit(limit)
        )
        return [HouseholdMonthRow(figures=hm, head_name=name) for hm, name in result]

    async def count_household_months(self, scope: HouseholdFilter) -> int:
        conditions = [*_scope_conditions(scope), HouseholdMonth.revenue_amount > 0]
        if scope.status is not None:
            conditions.append(HouseholdMonth.status == scope.status)
        return int(
            await self._session.scalar(
                select(func.count()).select_from(HouseholdMonth).where(*conditions)
            )
            or 0
        )

    # ---- Exports -----------------------------------------------------------------------

    async def add_export(self, export: ImpactExport) -> ImpactExport:
        self._session.add(export)
        await self._session.flush()
        return export

    async def get_export(
        self, export_id: uuid.UUID, *, for_update: bool = False
    ) -> ImpactExport | None:
        query = select(ImpactExport).where(ImpactExport.id == export_id)
        if for_update:
            query = query.with_for_update()
        result = await self._session.execute(query.execution_options(populate_existing=True))
        return result.scalar_one_or_none()

    async def set_export_progress(self, export_id: uuid.UUID, percent: int) -> None:
        await self._session.execute(
            update(ImpactExport)
            .where(ImpactExport.id == export_id)
            .values(progress_percent=percent, updated_at=func.now())
        )

    async def flush(self) -> None:
        await self._session.flush()


def _key_arrays(keys: Sequence[HouseholdMonthKey]) -> dict[str, list[Any]]:
    return {"hids": [h for h, _ in keys], "months": [m for _, m in keys]}


def _keys_table(keys: Sequence[HouseholdMonthKey]) -> Any:
    households = [h for h, _ in keys]
    months = [m for _, m in keys]
    return (
        select(
            func.unnest(cast(households, ARRAY(AttributionEntry.household_id.type))).label(
                "household_id"
            ),
            func.unnest(cast(months, ARRAY(Date()))).label("month"),
        )
    ).subquery("keys")


def _scope_conditions(scope: HouseholdFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        HouseholdMonth.admin_version == scope.admin_version,
        HouseholdMonth.month.between(scope.month_from, scope.month_to),
    ]
    if scope.commune_code is not None:
        conditions.append(HouseholdMonth.commune_code == scope.commune_code)
    if scope.province_code is not None:
        conditions.append(HouseholdMonth.province_code == scope.province_code)
    return conditions


def _array_literal(edges: Iterable[int]) -> str:
    return "ARRAY[" + ",".join(str(int(e)) for e in edges) + "]"


# ---- Report statements (see "Reports" in ImpactRepository) -------------------------------
# Parameters: $1 admin version, $2 the place's code, $3 and $4 the first and last month;
# the household page adds $5 limit, $6 offset and, with a status filter, $7 the status.

_AREA_MONTH_ROW = "ROW(" + ", ".join(f"a.{name}" for name in AreaMonthFigures._fields) + ")"

_AREA_MONTHS_SQL = (
    "SELECT " + ", ".join(f"a.{name}" for name in AreaMonthFigures._fields) + " "
    "FROM area_month_impact a WHERE a.level = $1 AND a.admin_version = $2 AND a.code = $3 "
    "AND a.month BETWEEN $4 AND $5 ORDER BY a.month"
)

_COMMUNE_TOTALS_ROW = (
    "ROW(c.code, " + ", ".join(f"sum(c.{name})::bigint" for name in CommuneTotals._fields[1:]) + ")"
)


def _area_summary_sql(level: AreaLevel, with_communes: bool) -> str:
    # Built once at import from our own identifiers (S608 below): values are bound parameters.
    table = "communes" if level is AreaLevel.COMMUNE else "provinces"
    province = "pl.province_code" if level is AreaLevel.COMMUNE else "pl.code"
    communes = (
        f"ARRAY(SELECT {_COMMUNE_TOTALS_ROW} "  # noqa: S608 - our own identifiers
        "FROM area_month_impact c "
        "WHERE c.level = 'commune' AND c.admin_version = $1 AND c.province_code = $2 "
        "AND c.month BETWEEN $3 AND $4 GROUP BY c.code ORDER BY c.code)"
        if with_communes
        else "NULL"
    )
    return (
        f"SELECT pl.code, pl.name, {province} AS province_code, "  # noqa: S608 - as above
        f"ARRAY(SELECT {_AREA_MONTH_ROW} FROM area_month_impact a "
        f"WHERE a.level = '{level.value}' AND a.admin_version = $1 AND a.code = $2 "
        "AND a.month BETWEEN $3 AND $4 ORDER BY a.month) AS months, "
        f"{communes} AS communes "
        f"FROM {table} pl WHERE pl.admin_version = $1 AND pl.code = $2"
    )


_AREA_SUMMARY_SQL = {
    (level, with_communes): _area_summary_sql(level, with_communes)
    for level in AreaLevel
    for with_communes in (False, True)
}


def _household_page_sql(place: PlaceLevel, by_status: bool) -> str:
    # Built once at import from our own identifiers (S608 below): values are bound parameters.
    # Commune codes are national (see ensure_jurisdiction), so a commune's rows are found
    # by its code alone, as its area-month rows are.
    if place == "commune":
        source, found = "communes pl", "pl.admin_version = $1 AND pl.code = $2"
        province, rows_of_place = "pl.province_code", "AND h.commune_code = $2"
        area = "a.level = 'commune' AND a.code = $2"
    elif place == "province":
        source, found = "provinces pl", "pl.admin_version = $1 AND pl.code = $2"
        province, rows_of_place = "pl.code", "AND h.province_code = $2"
        area = "a.level = 'province' AND a.code = $2"
    else:
        source, found = "(SELECT $2::varchar AS code) pl", "true"
        province, rows_of_place = "NULL::varchar", ""
        area = "a.level = 'province'"
    rows = (
        f"h.admin_version = $1 {rows_of_place} AND h.month BETWEEN $3 AND $4 "
        "AND h.revenue_amount > 0" + (" AND h.status = $7" if by_status else "")
    )
    total = (
        f"SELECT count(*) AS total FROM household_month_impact h WHERE {rows}"  # noqa: S608
        if by_status
        else "SELECT coalesce(sum(a.households_selling), 0)::bigint AS total "  # noqa: S608
        f"FROM area_month_impact a WHERE {area} AND a.admin_version = $1 "
        "AND a.month BETWEEN $3 AND $4"
    )
    columns = ", ".join(
        "hh.head_name" if name == "head_name" else f"h.{name}" for name in HouseholdPageRow._fields
    )
    return (
        f"SELECT {province} AS place_province_code, t.total, p.* "  # noqa: S608 - as above
        f"FROM {source} "
        f"CROSS JOIN LATERAL ({total}) t "
        f"LEFT JOIN LATERAL (SELECT {columns} FROM household_month_impact h "
        f"JOIN households hh ON hh.id = h.household_id WHERE {rows} "
        "ORDER BY h.month DESC, h.household_id DESC LIMIT $5 OFFSET $6) p ON true "
        f"WHERE {found}"
    )


_HOUSEHOLD_PAGE_SQL: dict[tuple[PlaceLevel, bool], str] = {
    (place, by_status): _household_page_sql(place, by_status)
    for place in ("commune", "province", "all")
    for by_status in (False, True)
}

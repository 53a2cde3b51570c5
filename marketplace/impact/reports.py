"""Reads for officials and the public: scoped to a jurisdiction, never recomputed from the
ledger per request (they read the household-month and area-month tables).

Access: an official sees their commune or province, an admin everything; a request naming a
place outside the jurisdiction is refused (403), never answered with an empty page. Household
names appear only for an official whose jurisdiction holds the household; an admin sees the
household's id, not its name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from marketplace.accounts.guards import ensure_jurisdiction
from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import JurisdictionLevel, Role
from marketplace.errors import PermissionDenied
from marketplace.geo.errors import CommuneNotFound, ProvinceNotFound, UnknownCommune
from marketplace.geo.models import ADMIN_VERSION
from marketplace.geo.service import GeoService, canonical_code
from marketplace.geo.source import COMMUNE_CODE_WIDTH, PROVINCE_CODE_WIDTH
from marketplace.impact.errors import InvalidMonthRange, UnknownProvince
from marketplace.impact.figures import (
    STATUS_GROUPS,
    VIETNAM,
    month_of,
    months_between,
    next_month,
)
from marketplace.impact.models import AreaLevel, HouseholdMonth, StatusGroup
from marketplace.impact.repository import (
    AreaMonthFigures,
    AreaSummaryRows,
    CommuneTotals,
    HouseholdFilter,
    HouseholdMonthRow,
    HouseholdPageRow,
    ImpactRepository,
    PlaceLevel,
)
from marketplace.impact.schemas import (
    AreaMonthRead,
    AreaSummaryRead,
    CommuneTotalRead,
    GroupFigures,
    HouseholdUpliftPage,
    HouseholdUpliftRead,
    PublicGroupRead,
    PublicMonthRead,
    PublicProvinceRead,
)
from marketplace.resources import Clock
from marketplace.unit_of_work import UnitOfWork

MAX_MONTHS = 36
DEFAULT_MONTHS = 12
MAX_PAGE = 200
SMALL_GROUP = 5
"""Public figures of a group of fewer households than this are not shown ("< 5")."""

UPLIFT_EDGES = (0, 100_000, 250_000, 500_000, 1_000_000, 1_500_000, 2_000_000)
"""Per-person monthly uplift buckets of the dashboard's distribution (đồng)."""

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class MonthRange:
    first: date
    last: date

    def months(self) -> list[date]:
        out, month = [], self.first
        while month <= self.last:
            out.append(month)
            month = next_month(month)
        return out


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a report looks: a commune, a province, or everything (admin only)."""

    province_code: str | None
    commune_code: str | None
    names_visible: bool


def month_text(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def parse_month(value: str, field: str) -> date:
    match = _MONTH.match(value.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise InvalidMonthRange(field, f"must be a month written YYYY-MM, got {value!r}")
    return date(int(match.group(1)), int(match.group(2)), 1)


def month_range(month_from: str | None, month_to: str | None, now: datetime) -> MonthRange:
    """The months asked for, both included; by default the 12 months up to this one. A range
    that runs backwards or spans more than 36 months is refused, naming the field."""
    last = (
        parse_month(month_to, "month_to") if month_to else month_of(now.astimezone(VIETNAM).date())
    )
    if month_from:
        first = parse_month(month_from, "month_from")
    else:
        first = last
        for _ in range(DEFAULT_MONTHS - 1):
            first = date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
    if first > last:
        raise InvalidMonthRange("month_from", "must not be after month_to")
    if months_between(first, last) > MAX_MONTHS:
        raise InvalidMonthRange("month_to", f"a range may span at most {MAX_MONTHS} months")
    return MonthRange(first, last)


def _group_figures(row: AreaMonthFigures | None, group: StatusGroup) -> GroupFigures:
    if row is None:
        return GroupFigures(households=0, revenue_amount=0)
    return GroupFigures(
        households=getattr(row, f"households_{group.value}"),
        revenue_amount=getattr(row, f"revenue_{group.value}"),
    )


def area_month_read(month: date, row: AreaMonthFigures | None) -> AreaMonthRead:
    return AreaMonthRead(
        month=month_text(month),
        households_selling=row.households_selling if row else 0,
        revenue_amount=row.revenue_amount if row else 0,
        groups={g: _group_figures(row, g) for g in STATUS_GROUPS},
        income_uplift_amount=row.income_amount if row else 0,
        median_uplift_per_person=row.median_uplift_per_person if row else None,
        households_closing_gap=row.households_closing_gap if row else 0,
        households_income_unknown=row.households_income_unknown if row else 0,
    )


def area_months_read(months: MonthRange, rows: list[AreaMonthFigures]) -> list[AreaMonthRead]:
    """Every month of the range, a month without a row as zeros."""
    by_month = {r.month: r for r in rows}
    return [area_month_read(m, by_month.get(m)) for m in months.months()]


def commune_total_read(t: CommuneTotals) -> CommuneTotalRead:
    return CommuneTotalRead(
        commune_code=t.code,
        households_selling_months=t.households_selling,
        revenue_amount=t.revenue_amount,
        revenue_poor=t.revenue_poor,
        revenue_near_poor=t.revenue_near_poor,
        income_uplift_amount=t.income_amount,
    )


def household_page_read(row: HouseholdPageRow, *, names_visible: bool) -> HouseholdUpliftRead:
    return HouseholdUpliftRead(
        household_id=row.household_id,
        household_name=row.head_name if names_visible else None,
        commune_code=row.commune_code,
        province_code=row.province_code,
        month=month_text(row.month),
        status=StatusGroup(row.status),
        members_count=row.members_count,
        revenue_amount=row.revenue_amount,
        income_amount=row.income_amount,
        uplift_per_person=row.uplift_per_person,
        poverty_line=row.poverty_line,
        baseline_income_per_person=row.baseline_income_per_person,
        gap_before=row.gap_before,
        gap_after=row.gap_after,
        closes_gap=row.closes_gap,
    )


def household_uplift_read(row: HouseholdMonthRow, *, names_visible: bool) -> HouseholdUpliftRead:
    f: HouseholdMonth = row.figures
    return HouseholdUpliftRead(
        household_id=f.household_id,
        household_name=row.head_name if names_visible else None,
        commune_code=f.commune_code,
        province_code=f.province_code,
        month=month_text(f.month),
        status=StatusGroup(f.status),
        members_count=f.members_count,
        revenue_amount=f.revenue_amount,
        income_amount=f.income_amount,
        uplift_per_person=f.uplift_per_person,
        poverty_line=f.poverty_line,
        baseline_income_per_person=f.baseline_income_per_person,
        gap_before=f.gap_before,
        gap_after=f.gap_after,
        closes_gap=f.closes_gap,
    )


def _public_group(households: int, revenue: int) -> PublicGroupRead:
    if households < SMALL_GROUP:
        return PublicGroupRead(households="< 5", revenue_amount=None)
    return PublicGroupRead(households=households, revenue_amount=revenue)


def _household_place(
    user: AuthenticatedUser, commune_code: str | None, province_code: str | None
) -> tuple[PlaceLevel, str | None, bool]:
    """Which place a household list reads (before its existence and the jurisdiction are
    checked on the statement's answer) and whether names are shown: the commune or province
    named, else an admin's every place, a commune official's commune or a province
    official's province."""
    names_visible = user.role is Role.OFFICIAL
    if commune_code:
        return "commune", canonical_code(commune_code, COMMUNE_CODE_WIDTH), names_visible
    if province_code:
        return "province", canonical_code(province_code, PROVINCE_CODE_WIDTH), names_visible
    if user.role is Role.ADMIN:
        return "all", None, False
    if user.jurisdiction_level is JurisdictionLevel.COMMUNE and user.jurisdiction_code:
        return "commune", canonical_code(user.jurisdiction_code, COMMUNE_CODE_WIDTH), True
    return "province", user.jurisdiction_code, True


@dataclass(frozen=True, slots=True)
class DashboardData:
    place_name: str
    level: str
    code: str
    month_from: str
    month_to: str
    months: list[AreaMonthRead]
    distribution: list[int]
    largest_gaps: list[HouseholdUpliftRead]

    def chart_data(self) -> dict[str, object]:
        """What dashboard.js draws, as plain JSON."""
        return {
            "months": [m.month for m in self.months],
            "revenue_by_group": {
                g.value: [m.groups[g].revenue_amount for m in self.months] for g in STATUS_GROUPS
            },
            "poor_households": [m.groups[StatusGroup.POOR].households for m in self.months],
            "uplift_edges": list(UPLIFT_EDGES),
            "distribution": self.distribution,
        }


LARGEST_GAPS = 10


class ReportService:
    def __init__(self, uow: UnitOfWork, clock: Clock, admin_version: str = ADMIN_VERSION) -> None:
        self._repo = ImpactRepository(uow.session)
        self._geo = GeoService(uow, admin_version)
        self._clock = clock
        self.admin_version = admin_version

    def month_range(self, month_from: str | None, month_to: str | None) -> MonthRange:
        return month_range(month_from, month_to, self._clock())

    async def scope_for(
        self, user: AuthenticatedUser, *, commune_code: str | None, province_code: str | None
    ) -> Scope:
        """The place a report covers: the one named (checked against the jurisdiction), or
        the caller's whole jurisdiction. Unknown codes are the caller's bad field (422)."""
        if user.role not in (Role.OFFICIAL, Role.ADMIN):
            raise PermissionDenied("impact reports are for officials and admins")
        if commune_code:
            commune = await self._geo.require_commune(commune_code, field="commune_code")
            if province_code and province_code.strip().zfill(2) != commune.province_code:
                raise PermissionDenied("the commune is not in that province")
            ensure_jurisdiction(
                user, commune_code=commune.code, province_code=commune.province_code
            )
            return Scope(commune.province_code, commune.code, user.role is Role.OFFICIAL)
        if province_code:
            try:
                province = await self._geo.get_province(province_code)
            except ProvinceNotFound:
                raise UnknownProvince("province_code", province_code) from None
            ensure_jurisdiction(user, commune_code=None, province_code=province.code)
            return Scope(province.code, None, user.role is Role.OFFICIAL)
        if user.role is Role.ADMIN:
            return Scope(None, None, names_visible=False)
        if user.jurisdiction_level is JurisdictionLevel.COMMUNE and user.jurisdiction_code:
            commune = await self._geo.get_commune(user.jurisdiction_code)
            return Scope(commune.province_code, commune.code, names_visible=True)
        return Scope(user.jurisdiction_code, None, names_visible=True)

    def household_filter(
        self, scope: Scope, months: MonthRange, status: str | None
    ) -> HouseholdFilter:
        return HouseholdFilter(
            admin_version=self.admin_version,
            province_code=scope.province_code,
            commune_code=scope.commune_code,
            status=status,
            month_from=months.first,
            month_to=months.last,
        )

    async def household_list(
        self,
        user: AuthenticatedUser,
        *,
        commune_code: str | None,
        province_code: str | None,
        status: StatusGroup | None,
        month_from: str | None,
        month_to: str | None,
        limit: int,
        offset: int,
    ) -> HouseholdUpliftPage:
        """The scope of `scope_for`, settled from one statement that also reads the page: the
        place is looked up with the figures, and the checks run on what came back before
        anything is returned (the same answers and errors as `scope_for`, in its order)."""
        months = self.month_range(month_from, month_to)
        if user.role not in (Role.OFFICIAL, Role.ADMIN):
            raise PermissionDenied("impact reports are for officials and admins")
        place, code, names_visible = _household_place(user, commune_code, province_code)
        limit, offset = max(1, min(limit, MAX_PAGE)), max(0, offset)
        page = await self._repo.household_page(
            place,
            code,
            admin_version=self.admin_version,
            status=status.value if status else None,
            month_from=months.first,
            month_to=months.last,
            limit=limit,
            offset=offset,
        )
        if page is None:
            if commune_code:
                raise UnknownCommune("commune_code", commune_code, self.admin_version)
            if province_code:
                raise UnknownProvince("province_code", province_code)
            if place == "commune":
                raise CommuneNotFound(f"no commune {code!r} in version {self.admin_version}")
            # An official's own province that is not (or no longer) a province: nothing to show.
            return HouseholdUpliftPage(items=[], total=0, limit=limit, offset=offset)
        if commune_code:
            if province_code and province_code.strip().zfill(2) != page.province_code:
                raise PermissionDenied("the commune is not in that province")
            ensure_jurisdiction(user, commune_code=code, province_code=page.province_code or "")
        elif province_code:
            ensure_jurisdiction(user, commune_code=None, province_code=page.province_code or "")
        return HouseholdUpliftPage(
            items=[household_page_read(r, names_visible=names_visible) for r in page.rows],
            total=page.total,
            limit=limit,
            offset=offset,
        )

    async def commune_summary(
        self,
        user: AuthenticatedUser,
        commune_code: str,
        month_from: str | None,
        month_to: str | None,
    ) -> AreaSummaryRead:
        months = self.month_range(month_from, month_to)
        found = await self._area_summary(AreaLevel.COMMUNE, commune_code, months)
        if found is None:
            raise CommuneNotFound(f"no commune {commune_code!r} in version {self.admin_version}")
        ensure_jurisdiction(user, commune_code=found.code, province_code=found.province_code)
        return self._summary_read(AreaLevel.COMMUNE, found, months)

    async def province_summary(
        self,
        user: AuthenticatedUser,
        province_code: str,
        month_from: str | None,
        month_to: str | None,
    ) -> AreaSummaryRead:
        months = self.month_range(month_from, month_to)
        found = await self._area_summary(AreaLevel.PROVINCE, province_code, months)
        if found is None:
            raise ProvinceNotFound(f"no province {province_code!r} in version {self.admin_version}")
        ensure_jurisdiction(user, commune_code=None, province_code=found.code)
        return self._summary_read(AreaLevel.PROVINCE, found, months)

    async def _area_summary(
        self, level: AreaLevel, code: str, months: MonthRange
    ) -> AreaSummaryRows | None:
        width = COMMUNE_CODE_WIDTH if level is AreaLevel.COMMUNE else PROVINCE_CODE_WIDTH
        return await self._repo.area_summary(
            level,
            self.admin_version,
            canonical_code(code, width),
            months.first,
            months.last,
            with_communes=level is AreaLevel.PROVINCE,
        )

    def _summary_read(
        self, level: AreaLevel, found: AreaSummaryRows, months: MonthRange
    ) -> AreaSummaryRead:
        return AreaSummaryRead(
            level="commune" if level is AreaLevel.COMMUNE else "province",
            code=found.code,
            name=found.name,
            province_code=found.province_code,
            admin_version=self.admin_version,
            month_from=month_text(months.first),
            month_to=month_text(months.last),
            months=area_months_read(months, found.months),
            communes=(
                [commune_total_read(t) for t in found.communes]
                if found.communes is not None
                else None
            ),
        )

    async def _months(self, level: AreaLevel, code: str, months: MonthRange) -> list[AreaMonthRead]:
        rows = await self._repo.area_months(
            level, self.admin_version, code, months.first, months.last
        )
        return area_months_read(months, rows)

    async def dashboard(
        self, user: AuthenticatedUser, month_from: str | None, month_to: str | None
    ) -> DashboardData:
        """An official's jurisdiction at a glance: monthly revenue by status group, poor
        households selling, the uplift distribution and the largest gaps still open (each
        household once, at its latest month in the range)."""
        months = self.month_range(month_from, month_to)
        scope = await self.scope_for(user, commune_code=None, province_code=None)
        level, code = (
            (AreaLevel.COMMUNE, scope.commune_code)
            if scope.commune_code
            else (AreaLevel.PROVINCE, scope.province_code or "")
        )
        figures = self.household_filter(scope, months, None)
        rows, _ = await self._repo.household_months(
            figures, limit=LARGEST_GAPS * 5, offset=0, order="gap"
        )
        latest: dict[object, HouseholdMonthRow] = {}
        for row in rows:
            seen = latest.get(row.figures.household_id)
            if seen is None or row.figures.month > seen.figures.month:
                latest[row.figures.household_id] = row
        gaps = sorted(
            latest.values(),
            key=lambda r: (-(r.figures.gap_after or 0), str(r.figures.household_id)),
        )
        return DashboardData(
            place_name=await self.place_name(scope),
            level=level.value,
            code=code,
            month_from=month_text(months.first),
            month_to=month_text(months.last),
            months=await self._months(level, code, months),
            distribution=await self._repo.uplift_distribution(figures, UPLIFT_EDGES),
            largest_gaps=[
                household_uplift_read(r, names_visible=scope.names_visible)
                for r in gaps[:LARGEST_GAPS]
            ],
        )

    async def public_province(
        self, province_code: str, month_from: str | None, month_to: str | None
    ) -> PublicProvinceRead:
        """Aggregate figures only; any group of fewer than 5 households shows "< 5" and no
        revenue, so no published number points at one household."""
        months = self.month_range(month_from, month_to)
        found = await self._repo.area_summary(
            AreaLevel.PROVINCE,
            self.admin_version,
            canonical_code(province_code, PROVINCE_CODE_WIDTH),
            months.first,
            months.last,
        )
        if found is None:
            raise ProvinceNotFound(f"no province {province_code!r} in version {self.admin_version}")
        rows = {r.month: r for r in found.months}
        out = []
        for month in months.months():
            row = rows.get(month)
            selling = row.households_selling if row else 0
            out.append(
                PublicMonthRead(
                    month=month_text(month),
                    households_selling="< 5" if selling < SMALL_GROUP else selling,
                    poor=_public_group(
                        row.households_poor if row else 0, row.revenue_poor if row else 0
                    ),
                    near_poor=_public_group(
                        row.households_near_poor if row else 0, row.revenue_near_poor if row else 0
                    ),
                )
            )
        return PublicProvinceRead(
            province_code=found.code,
            province_name=found.name,
            month_from=month_text(months.first),
            month_to=month_text(months.last),
            months=out,
        )

    async def place_name(self, scope: Scope) -> str:
        if scope.commune_code:
            return (await self._geo.get_commune(scope.commune_code)).name
        if scope.province_code:
            return (await self._geo.get_province(scope.province_code)).name
        return "Toàn quốc"

    async def commune_names(self, codes: Sequence[str]) -> dict[str, str]:
        names: dict[str, str] = {}
        for code in sorted(set(codes)):
            names[code] = (await self._geo.get_commune(code)).name
        return names

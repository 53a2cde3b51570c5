"""JSON endpoints: officials' reports and exports, income shares, the public province page."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED

from marketplace.accounts.guards import allow, public
from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.db import BIGINT_MAX
from marketplace.impact.exports import ExportService, storage_from
from marketplace.impact.figures import BPS
from marketplace.impact.models import IncomeShare, StatusGroup
from marketplace.impact.reports import MAX_PAGE, ReportService
from marketplace.impact.schemas import (
    AreaSummaryRead,
    ExportCreate,
    ExportRead,
    HouseholdUpliftPage,
    IncomeShareRead,
    IncomeShareUpdate,
    PublicProvinceRead,
)
from marketplace.impact.service import ImpactService
from marketplace.resources import Resources
from marketplace.unit_of_work import UnitOfWork

BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}]

MonthParam = Annotated[
    str | None, QueryParameter(description="First or last month, YYYY-MM", max_length=7)
]


async def provide_reports(
    uow: NamedDependency[UnitOfWork], resources: NamedDependency[Resources]
) -> ReportService:
    return ReportService(uow, resources.clock)


async def provide_exports(
    uow: NamedDependency[UnitOfWork], resources: NamedDependency[Resources]
) -> ExportService:
    return ExportService(uow, storage_from(resources.settings, resources.extras), resources.clock)


async def provide_impact(
    uow: NamedDependency[UnitOfWork], resources: NamedDependency[Resources]
) -> ImpactService:
    return ImpactService(uow, resources.settings)


def income_share_read(row: IncomeShare) -> IncomeShareRead:
    # Basis points are hundredths of a percent: 3750 is "37.5".
    whole, cents = divmod(row.share_bps, BPS // 100)
    text = str(whole) if cents == 0 else f"{whole}.{cents:02d}".rstrip("0")
    return IncomeShareRead(
        category=row.category,
        share_percent=text,
        share_bps=row.share_bps,
        updated_at=row.updated_at,
    )


class ImpactReportController(Controller):
    path = "/api/impact"
    tags = ["impact"]
    guards = [allow(Role.OFFICIAL, Role.ADMIN)]
    security = BEARER
    dependencies = {
        "reports": Provide(provide_reports),
        "exports": Provide(provide_exports),
        "impact": Provide(provide_impact),
    }

    @get("/households", summary="Uplift per household and month in the jurisdiction")
    async def households(
        self,
        *,
        current_user: NamedDependency[AuthenticatedUser],
        reports: NamedDependency[ReportService],
        commune_code: Annotated[str | None, QueryParameter(max_length=10)] = None,
        province_code: Annotated[str | None, QueryParameter(max_length=10)] = None,
        status: FromQuery[StatusGroup | None] = None,
        month_from: MonthParam = None,
        month_to: MonthParam = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, QueryParameter(ge=0, le=BIGINT_MAX)] = 0,
    ) -> HouseholdUpliftPage:
        return await reports.household_list(
            current_user,
            commune_code=commune_code,
            province_code=province_code,
            status=status,
            month_from=month_from,
            month_to=month_to,
            limit=limit,
            offset=offset,
        )

    @get("/communes/{commune_code:str}/summary", summary="A commune's figures by month")
    async def commune_summary(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        reports: NamedDependency[ReportService],
        commune_code: FromPath[str],
        month_from: MonthParam = None,
        month_to: MonthParam = None,
    ) -> AreaSummaryRead:
        return await reports.commune_summary(current_user, commune_code, month_from, month_to)

    @get("/provinces/{province_code:str}/summary", summary="A province's figures by month")
    async def province_summary(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        reports: NamedDependency[ReportService],
        province_code: FromPath[str],
        month_from: MonthParam = None,
        month_to: MonthParam = None,
    ) -> AreaSummaryRead:
        return await reports.province_summary(current_user, province_code, month_from, month_to)

    @post("/exports", status_code=HTTP_202_ACCEPTED, summary="Request a CSV or XLSX export")
    async def request_export(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        exports: NamedDependency[ExportService],
        data: JSONBody[ExportCreate],
    ) -> ExportRead:
        return await exports.request(current_user, data)

    @get("/exports/{export_id:uuid}", summary="An export's progress and download link")
    async def get_export(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        exports: NamedDependency[ExportService],
        export_id: FromPath[uuid.UUID],
    ) -> ExportRead:
        return await exports.get(current_user, export_id)

    @get("/income-shares", summary="Income share per product category")
    async def income_shares(self, impact: NamedDependency[ImpactService]) -> list[IncomeShareRead]:
        return [income_share_read(row) for row in await impact.income_shares()]

    @put(
        "/income-shares/{category:str}",
        guards=[allow(Role.ADMIN)],
        summary="Set a category's income share (admin)",
    )
    async def set_income_share(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        impact: NamedDependency[ImpactService],
        category: FromPath[str],
        data: JSONBody[IncomeShareUpdate],
    ) -> IncomeShareRead:
        row = await impact.set_income_share(current_user, category, data.share_percent)
        return income_share_read(row)


class PublicImpactController(Controller):
    path = "/api/public/impact"
    tags = ["impact"]
    opt = public()
    dependencies = {"reports": Provide(provide_reports)}

    @get("/provinces/{province_code:str}", summary="A province's public figures by month")
    async def province(
        self,
        reports: NamedDependency[ReportService],
        province_code: FromPath[str],
        month_from: MonthParam = None,
        month_to: MonthParam = None,
    ) -> PublicProvinceRead:
        return await reports.public_province(province_code, month_from, month_to)

"""Officials' exports: requested through the API, built by a Celery task into object storage,
downloaded through a presigned link that expires.

The request is checked when it is made (jurisdiction, months, codes) and stored as a row;
the task only reads that row, so a refused request writes nothing and a built file holds
exactly what was allowed. Files never contain national IDs or phone numbers (the columns are
fixed below and none of them holds either); household names only when the requester is an
official whose jurisdiction holds the households.
"""

from __future__ import annotations

import csv
import functools
import io
import uuid
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

import anyio.to_thread
import structlog
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.catalog.storage import build_storage
from marketplace.impact.errors import ExportNotFound
from marketplace.impact.models import ExportFormat, ExportStatus, ImpactExport, StatusGroup
from marketplace.impact.reports import ReportService, Scope, month_text
from marketplace.impact.repository import HouseholdFilter, HouseholdMonthRow, ImpactRepository
from marketplace.impact.schemas import ExportCreate, ExportRead
from marketplace.jobs import JobName
from marketplace.resources import Clock
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from media.storage import ObjectStorage

log = structlog.get_logger(__name__)

DOWNLOAD_LIFETIME = timedelta(minutes=15)
PAGE_ROWS = 1_000
CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

STATUS_LABELS = {
    StatusGroup.POOR: "Hộ nghèo",
    StatusGroup.NEAR_POOR: "Hộ cận nghèo",
    StatusGroup.NEWLY_ESCAPED: "Hộ mới thoát nghèo",
    StatusGroup.AVERAGE_LIVING_STANDARD: "Hộ có mức sống trung bình",
    StatusGroup.NOT_POOR: "Hộ không nghèo",
    StatusGroup.UNREVIEWED: "Chưa rà soát",
}

HEADERS = (
    "Mã hộ",
    "Hộ gia đình",
    "Xã/Phường",
    "Mã xã/phường",
    "Tháng",
    "Tình trạng",
    "Số nhân khẩu",
    "Doanh thu",
    "Thu nhập từ sàn",
    "Thu nhập tăng thêm/người/tháng",
    "Chuẩn nghèo",
    "Thu nhập bình quân/người/tháng trước",
    "Khoảng cách đến chuẩn nghèo trước",
    "Khoảng cách đến chuẩn nghèo sau",
    "Vượt chuẩn nghèo nhờ thu nhập từ sàn",
)
"""The export's columns (amounts in đồng; per person and month where the header says so),
fixed: nothing else of a household (no ID number, no phone) can
reach a file."""


def export_row(row: HouseholdMonthRow, commune_names: dict[str, str], *, names: bool) -> list[Any]:
    f = row.figures
    closes = {True: "Có", False: "Không", None: "Chưa rõ"}[f.closes_gap]
    return [
        str(f.household_id),
        row.head_name if names else "",
        commune_names.get(f.commune_code, f.commune_code),
        f.commune_code,
        month_text(f.month),
        STATUS_LABELS[StatusGroup(f.status)],
        f.members_count,
        f.revenue_amount,
        f.income_amount,
        f.uplift_per_person,
        f.poverty_line,
        f.baseline_income_per_person,
        f.gap_before,
        f.gap_after,
        closes,
    ]


def render_csv(rows: Sequence[Sequence[Any]]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens the Vietnamese headers correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def render_xlsx(rows: Sequence[Sequence[Any]], title: str) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31] or "Bao cao")
    header_cells = []
    for name in HEADERS:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = Font(bold=True)
        header_cells.append(cell)
    sheet.append(header_cells)
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def storage_from(settings: Settings, extras: dict[str, Any]) -> ObjectStorage:
    """The app's store (`extras["storage"]`, put there by create_app), else the configured
    one built the same way (workers)."""
    found = extras.get("storage")
    if found is not None:
        store: ObjectStorage = found
        return store
    return build_storage(settings)


class ExportService:
    def __init__(self, uow: UnitOfWork, storage: ObjectStorage, clock: Clock) -> None:
        self._uow = uow
        self._repo = ImpactRepository(uow.session)
        self._reports = ReportService(uow, clock)
        self._storage = storage
        self._clock = clock

    async def request(self, user: AuthenticatedUser, data: ExportCreate) -> ExportRead:
        """Check the request fully (403 outside the jurisdiction, 422 for bad months or
        codes) before the row is written; the job goes out after the commit."""
        months = self._reports.month_range(data.month_from, data.month_to)
        scope = await self._reports.scope_for(
            user, commune_code=data.commune_code, province_code=data.province_code
        )
        export = await self._repo.add_export(
            ImpactExport(
                requested_by_user_id=user.id,
                format=data.format.value,
                status=ExportStatus.QUEUED.value,
                progress_percent=0,
                admin_version=self._reports.admin_version,
                province_code=scope.province_code,
                commune_code=scope.commune_code,
                status_filter=data.status.value if data.status else None,
                month_from=months.first,
                month_to=months.last,
                include_names=scope.names_visible and user.role is Role.OFFICIAL,
            )
        )
        self._uow.add_job(JobName.BUILD_EXPORT, {"export_id": str(export.id)})
        log.info("impact_export_requested", export_id=str(export.id), user_id=str(user.id))
        return self.read(export)

    async def get(self, user: AuthenticatedUser, export_id: uuid.UUID) -> ExportRead:
        """Only its requester sees an export (another user's is "not found")."""
        export = await self._repo.get_export(export_id)
        if export is None or export.requested_by_user_id != user.id:
            raise ExportNotFound()
        return self.read(export)

    def read(self, export: ImpactExport) -> ExportRead:
        url = expires = None
        if export.status == ExportStatus.DONE.value and export.object_key:
            url = self._storage.presigned_get_url(export.object_key, expires=DOWNLOAD_LIFETIME)
            expires = self._clock() + DOWNLOAD_LIFETIME
        return ExportRead(
            id=export.id,
            format=ExportFormat(export.format),
            status=ExportStatus(export.status),
            progress_percent=export.progress_percent,
            month_from=month_text(export.month_from),
            month_to=month_text(export.month_to),
            commune_code=export.commune_code,
            province_code=export.province_code,
            row_count=export.row_count,
            error=export.error,
            download_url=url,
            download_expires_at=expires,
            created_at=export.created_at,
        )


async def build_export(
    unit_of_work: Callable[[], UnitOfWork],
    storage: ObjectStorage,
    clock: Clock,
    export_id: uuid.UUID,
) -> str:
    """The task body: build the file page by page, committing progress as it goes so the
    official's poll sees it, then store it and mark the row done. Idempotent: a finished
    export is left alone, a re-run after a crash rebuilds the same file under the same key."""
    async with unit_of_work() as uow:
        repo = ImpactRepository(uow.session)
        export = await repo.get_export(export_id, for_update=True)
        if export is None:
            log.warning("impact_export_missing", export_id=str(export_id))
            return "missing"
        if export.status == ExportStatus.DONE.value:
            return "already_done"
        export.status = ExportStatus.RUNNING.value
        export.started_at = clock()
        export.progress_percent = 0
        scope = HouseholdFilter(
            admin_version=export.admin_version,
            province_code=export.province_code,
            commune_code=export.commune_code,
            status=export.status_filter,
            month_from=export.month_from,
            month_to=export.month_to,
        )
        fmt = ExportFormat(export.format)
        names = export.include_names
        await uow.commit()

    try:
        rows, place = await _collect(unit_of_work, clock, export_id, scope, names=names)
        key = f"exports/{export_id}.{fmt.value}"
        data = render_csv(rows) if fmt is ExportFormat.CSV else render_xlsx(rows, place)
        await anyio.to_thread.run_sync(
            functools.partial(storage.put_bytes, key, data, content_type=CONTENT_TYPES[fmt])
        )
    except Exception as exc:
        async with unit_of_work() as uow:
            failed = await ImpactRepository(uow.session).get_export(export_id, for_update=True)
            if failed is not None:
                failed.status = ExportStatus.FAILED.value
                failed.error = type(exc).__name__
                failed.finished_at = clock()
            await uow.commit()
        log.exception("impact_export_failed", export_id=str(export_id))
        raise

    async with unit_of_work() as uow:
        done = await ImpactRepository(uow.session).get_export(export_id, for_update=True)
        if done is not None:
            done.status = ExportStatus.DONE.value
            done.progress_percent = 100
            done.object_key = key
            done.row_count = len(rows)
            done.error = None
            done.finished_at = clock()
        await uow.commit()
    log.info("impact_export_built", export_id=str(export_id), rows=len(rows))
    return "done"


async def _collect(
    unit_of_work: Callable[[], UnitOfWork],
    clock: Clock,
    export_id: uuid.UUID,
    scope: HouseholdFilter,
    *,
    names: bool,
) -> tuple[list[list[Any]], str]:
    rows: list[list[Any]] = []
    async with unit_of_work() as uow:
        repo = ImpactRepository(uow.session)
        reports = ReportService(uow, clock, scope.admin_version)
        total = await repo.count_household_months(scope)
        place = await reports.place_name(
            Scope(scope.province_code, scope.commune_code, names_visible=names)
        )
        after: tuple[date, uuid.UUID] | None = None
        commune_names: dict[str, str] = {}
        while True:
            page = await repo.household_months_after(scope, after, PAGE_ROWS)
            if not page:
                break
            missing = [
                r.figures.commune_code for r in page if r.figures.commune_code not in commune_names
            ]
            if missing:
                commune_names.update(await reports.commune_names(missing))
            rows.extend(export_row(r, commune_names, names=names) for r in page)
            after = (page[-1].figures.month, page[-1].figures.household_id)
            async with unit_of_work() as progress:
                # Its own short transaction: the official's poll sees progress while we work.
                await ImpactRepository(progress.session).set_export_progress(
                    export_id, min(99, len(rows) * 100 // max(total, 1))
                )
                await progress.commit()
    return rows, place


__all__ = ["ExportService", "build_export", "storage_from"]

"""Every query of the geo domain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Insert,
    Select,
    Subquery,
    case,
    func,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from marketplace.geo.models import Commune, CommuneUnitType, Province
from marketplace.geo.source import CommuneRow, ProvinceRow


@dataclass(frozen=True, slots=True)
class UpsertCount:
    inserted: int
    updated: int


def contains_pattern(folded_query: str) -> str:
    """A LIKE pattern matching the query anywhere, with LIKE's wildcards taken literally.

    Built here rather than as `'%' || :q || '%'` in SQL so the planner sees a constant
    pattern and can use the trigram index."""
    escaped = folded_query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class GeoRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def _commune_counts(self, admin_version: str) -> Subquery:
        return (
            select(Commune.province_code, func.count().label("commune_count"))
            .where(Commune.admin_version == admin_version)
            .group_by(Commune.province_code)
            .subquery()
        )

    def _provinces_with_counts(self, admin_version: str) -> Select[Province, int]:
        counts = self._commune_counts(admin_version)
        return (
            select(Province, func.coalesce(counts.c.commune_count, 0))
            .outerjoin(counts, counts.c.province_code == Province.code)
            .where(Province.admin_version == admin_version)
        )

    async def list_provinces(
        self, admin_version: str, folded_query: str | None
    ) -> Sequence[tuple[Province, int]]:
        stmt = self._provinces_with_counts(admin_version).order_by(Province.code)
        if folded_query:
            stmt = stmt.where(_folded_contains(Province.name_folded, folded_query))
        rows = await self._session.execute(stmt)
        return [(province, count) for province, count in rows]

    async def get_province(self, admin_version: str, code: str) -> tuple[Province, int] | None:
        stmt = self._provinces_with_counts(admin_version).where(Province.code == code)
        row = (await self._session.execute(stmt)).one_or_none()
        return None if row is None else (row[0], row[1])

    def _communes_with_province_name(self, admin_version: str) -> Select[Commune, str]:
        return (
            select(Commune, Province.name)
            .join(
                Province,
                (Province.admin_version == Commune.admin_version)
                & (Province.code == Commune.province_code),
            )
            .where(Commune.admin_version == admin_version)
        )

    async def list_communes(
        self,
        admin_version: str,
        province_code: str,
        folded_query: str | None,
        unit_type: CommuneUnitType | None,
    ) -> Sequence[tuple[Commune, str]]:
        stmt = (
            self._communes_with_province_name(admin_version)
            .where(Commune.province_code == province_code)
            .order_by(Commune.code)
        )
        if folded_query:
            stmt = stmt.where(_folded_contains(Commune.name_folded, folded_query))
        if unit_type is not None:
            stmt = stmt.where(Commune.unit_type == unit_type)
        rows = await self._session.execute(stmt)
        return [(commune, name) for commune, name in rows]

    async def get_commune(self, admin_version: str, code: str) -> tuple[Commune, str] | None:
        stmt = self._communes_with_province_name(admin_version).where(Commune.code == code)
        row = (await self._session.execute(stmt)).one_or_none()
        return None if row is None else (row[0], row[1])

    async def upsert_provinces(self, rows: Sequence[ProvinceRow]) -> UpsertCount:
        """Insert new provinces, rewrite changed ones, leave identical ones untouched."""
        stmt = insert(Province)
        stmt = stmt.on_conflict_do_update(
            index_elements=[Province.admin_version, Province.code],
            set_={
                "name": stmt.excluded.name,
                "unit_type": stmt.excluded.unit_type,
                "name_folded": stmt.excluded.name_folded,
                "updated_at": func.now(),
            },
            where=tuple_(Province.name, Province.unit_type, Province.name_folded).is_distinct_from(
                tuple_(stmt.excluded.name, stmt.excluded.unit_type, stmt.excluded.name_folded)
            ),
        )
        return await self._execute_many(stmt, [asdict(r) for r in rows])

    async def upsert_communes(self, rows: Sequence[CommuneRow]) -> UpsertCount:
        """Like `upsert_provinces`, but a special zone keeps the area it was set to: that area
        is a per-zone setting, not package data."""
        stmt = insert(Commune)
        area = case(
            (Commune.unit_type == CommuneUnitType.DAC_KHU.value, Commune.area),
            else_=stmt.excluded.area,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[Commune.admin_version, Commune.code],
            set_={
                "name": stmt.excluded.name,
                "unit_type": stmt.excluded.unit_type,
                "name_folded": stmt.excluded.name_folded,
                "province_code": stmt.excluded.province_code,
                "area": area,
                "updated_at": func.now(),
            },
            where=tuple_(
                Commune.name,
                Commune.unit_type,
                Commune.name_folded,
                Commune.province_code,
                Commune.area,
            ).is_distinct_from(
                tuple_(
                    stmt.excluded.name,
                    stmt.excluded.unit_type,
                    stmt.excluded.name_folded,
                    stmt.excluded.province_code,
                    area,
                )
            ),
        )
        return await self._execute_many(stmt, [asdict(r) for r in rows])

    async def _execute_many(self, stmt: Insert, params: list[dict[str, Any]]) -> UpsertCount:
        # RETURNING makes SQLAlchemy batch the rows into multi-row VALUES statements
        # ("insertmanyvalues") and tells new rows (xmax = 0) from rewritten ones; rows the
        # WHERE clause left untouched return nothing.
        returning = stmt.returning(literal_column("xmax = 0", Boolean))
        flags = (await self._session.execute(returning, params)).scalars().all()
        inserted = sum(1 for new in flags if new)
        return UpsertCount(inserted=inserted, updated=len(flags) - inserted)

    async def flush(self) -> None:
        await self._session.flush()


def _folded_contains(column: InstrumentedAttribute[str], folded_query: str) -> ColumnElement[bool]:
    return column.like(contains_pattern(folded_query), escape="\\")

"""Administrative units for the API and for other domains (households, sellers, officials).

Other domains hold commune codes and ask this service what they mean: which commune,
which province, rural or urban. They never read the geo tables themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.geo.errors import CommuneNotFound, ProvinceNotFound, UnknownCommune
from marketplace.geo.models import ADMIN_VERSION, Area, Commune, CommuneUnitType, Province
from marketplace.geo.repository import GeoRepository, UpsertCount
from marketplace.geo.schemas import CommuneRead, ProvinceRead
from marketplace.geo.source import (
    COMMUNE_CODE_WIDTH,
    PROVINCE_CODE_WIDTH,
    commune_rows,
    province_rows,
)
from marketplace.text import fold
from marketplace.unit_of_work import UnitOfWork


def canonical_code(code: str, width: int) -> str:
    """Codes are zero-padded digits; "1" and "01" name the same province. Anything else
    is returned as given and simply matches nothing."""
    code = code.strip()
    return code.zfill(width) if code.isdigit() else code


def _folded_query(q: str | None) -> str | None:
    folded = fold(q) if q else ""
    return folded or None


def province_read(province: Province, commune_count: int) -> ProvinceRead:
    return ProvinceRead(
        code=province.code,
        name=province.name,
        unit_type=province.unit_type,
        admin_version=province.admin_version,
        commune_count=commune_count,
    )


def commune_read(commune: Commune, province_name: str) -> CommuneRead:
    return CommuneRead(
        code=commune.code,
        name=commune.name,
        unit_type=commune.unit_type,
        area=commune.area,
        admin_version=commune.admin_version,
        province_code=commune.province_code,
        province_name=province_name,
    )


class GeoService:
    """Reads the units of one administrative version (the current one unless told)."""

    def __init__(self, uow: UnitOfWork, admin_version: str = ADMIN_VERSION) -> None:
        self._repo = GeoRepository(uow.session)
        self.admin_version = admin_version

    async def list_provinces(self, q: str | None = None) -> list[ProvinceRead]:
        rows = await self._repo.list_provinces(self.admin_version, _folded_query(q))
        return [province_read(province, count) for province, count in rows]

    async def get_province(self, code: str) -> ProvinceRead:
        row = await self._repo.get_province(
            self.admin_version, canonical_code(code, PROVINCE_CODE_WIDTH)
        )
        if row is None:
            raise ProvinceNotFound(f"no province {code!r} in version {self.admin_version}")
        return province_read(*row)

    async def list_communes(
        self,
        province_code: str,
        q: str | None = None,
        unit_type: CommuneUnitType | None = None,
    ) -> list[CommuneRead]:
        """An unknown province is a 404, not an empty list: a typo must not look like a
        province without communes."""
        province = await self.get_province(province_code)
        rows = await self._repo.list_communes(
            self.admin_version, province.code, _folded_query(q), unit_type
        )
        return [commune_read(commune, name) for commune, name in rows]

    async def get_commune(self, code: str) -> CommuneRead:
        return commune_read(*await self._commune(code))

    async def require_commune(self, code: str, field: str = "commune_code") -> CommuneRead:
        """For input validation in other domains: an unknown code is the caller's bad field
        (422 `unknown_commune` naming `field`), not a missing resource."""
        try:
            return await self.get_commune(code)
        except CommuneNotFound:
            raise UnknownCommune(field, code, self.admin_version) from None

    async def area_of(self, commune_code: str) -> Area:
        """Which poverty line applies to a household living in this commune."""
        commune, _ = await self._commune(commune_code)
        return commune.area

    async def province_of(self, commune_code: str) -> ProvinceRead:
        commune, _ = await self._commune(commune_code)
        return await self.get_province(commune.province_code)

    async def set_special_zone_area(self, commune_code: str, area: Area) -> CommuneRead:
        commune, province_name = await self._commune(commune_code)
        commune.set_special_zone_area(area)
        await self._repo.flush()
        return commune_read(commune, province_name)

    async def _commune(self, code: str) -> tuple[Commune, str]:
        row = await self._repo.get_commune(
            self.admin_version, canonical_code(code, COMMUNE_CODE_WIDTH)
        )
        if row is None:
            raise CommuneNotFound(f"no commune {code!r} in version {self.admin_version}")
        return row


@dataclass(frozen=True, slots=True)
class LoadReport:
    provinces: UpsertCount
    communes: UpsertCount


async def load_admin_units(session: AsyncSession) -> LoadReport:
    """Upsert the 2025-07 units from the installed package; running it again changes nothing.

    Migration 0003 loads the same data on a fresh database; this function is for bringing an
    existing database up to a newer package release (a corrected name) without a migration.
    A special zone's area survives a reload: it is a per-zone setting, not package data."""
    repo = GeoRepository(session)
    provinces = await repo.upsert_provinces(province_rows())
    communes = await repo.upsert_communes(commune_rows())
    return LoadReport(provinces=provinces, communes=communes)

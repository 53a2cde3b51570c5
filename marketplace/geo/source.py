"""The 2025-07 units as rows, read from the `vietnam-provinces` package (never a hand list).

The package labels its data by release, not by administrative version, so a release that
follows a later reform would silently change what "2025-07" means. The expected totals
below guard that: a package that no longer holds exactly the 2025-07 set is refused.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from vietnam_provinces import Province as PackageProvince
from vietnam_provinces import VietNamDivisionType
from vietnam_provinces import Ward as PackageWard

from marketplace.geo.models import ADMIN_VERSION, Area, CommuneUnitType, ProvinceUnitType
from marketplace.text import fold

EXPECTED_PROVINCES = 34
EXPECTED_COMMUNES = 3321

PROVINCE_CODE_WIDTH = 2
COMMUNE_CODE_WIDTH = 5
"""Official codes are zero-padded ("01" Hà Nội, "00070" Phường Hoàn Kiếm); the package
keeps them as integers."""

_PROVINCE_TYPES = {
    VietNamDivisionType.TINH: ProvinceUnitType.PROVINCE,
    VietNamDivisionType.THANH_PHO_TRUNG_UONG: ProvinceUnitType.MUNICIPALITY,
}
_COMMUNE_TYPES = {
    VietNamDivisionType.XA: CommuneUnitType.XA,
    VietNamDivisionType.PHUONG: CommuneUnitType.PHUONG,
    VietNamDivisionType.DAC_KHU: CommuneUnitType.DAC_KHU,
}
SPECIAL_ZONE_DEFAULT_AREA = Area.RURAL
"""A special zone starts rural; its area is then a per-zone setting kept on its row."""


_ID_NAMESPACE = uuid.UUID("3b0d5c52-7f3e-4a59-9b7c-0a2e61c8e925")


def unit_id(kind: str, admin_version: str, code: str) -> uuid.UUID:
    """Ids derived from version and code: every database holds the same id for a unit."""
    return uuid.uuid5(_ID_NAMESPACE, f"{kind}:{admin_version}:{code}")


class SourceDataMismatch(RuntimeError):
    """The installed package does not hold the administrative set we label it as."""


@dataclass(frozen=True, slots=True)
class ProvinceRow:
    id: uuid.UUID
    code: str
    name: str
    unit_type: ProvinceUnitType
    name_folded: str
    admin_version: str = ADMIN_VERSION


@dataclass(frozen=True, slots=True)
class CommuneRow:
    id: uuid.UUID
    code: str
    name: str
    unit_type: CommuneUnitType
    name_folded: str
    province_code: str
    area: Area
    admin_version: str = ADMIN_VERSION


def province_code(value: int) -> str:
    return str(value).zfill(PROVINCE_CODE_WIDTH)


def commune_code(value: int) -> str:
    return str(value).zfill(COMMUNE_CODE_WIDTH)


def area_for(unit_type: CommuneUnitType) -> Area:
    """xã is rural, phường urban; a special zone gets the default until set per zone."""
    if unit_type is CommuneUnitType.XA:
        return Area.RURAL
    if unit_type is CommuneUnitType.PHUONG:
        return Area.URBAN
    return SPECIAL_ZONE_DEFAULT_AREA


def province_rows() -> list[ProvinceRow]:
    rows = [
        ProvinceRow(
            id=unit_id("province", ADMIN_VERSION, province_code(int(p.code))),
            code=province_code(int(p.code)),
            name=p.name,
            unit_type=_PROVINCE_TYPES[p.division_type],
            name_folded=fold(p.name),
        )
        for p in PackageProvince.iter_all()
    ]
    _check_total("provinces", len(rows), EXPECTED_PROVINCES)
    return sorted(rows, key=lambda r: r.code)


def commune_rows() -> list[CommuneRow]:
    rows = []
    for w in PackageWard.iter_all():
        unit_type = _COMMUNE_TYPES[w.division_type]
        code = commune_code(int(w.code))
        rows.append(
            CommuneRow(
                id=unit_id("commune", ADMIN_VERSION, code),
                code=code,
                name=w.name,
                unit_type=unit_type,
                name_folded=fold(w.name),
                province_code=province_code(int(w.province_code)),
                area=area_for(unit_type),
            )
        )
    _check_total("communes", len(rows), EXPECTED_COMMUNES)
    return sorted(rows, key=lambda r: r.code)


def _check_total(what: str, found: int, expected: int) -> None:
    if found != expected:
        raise SourceDataMismatch(
            f"vietnam-provinces holds {found} {what}, the {ADMIN_VERSION} set has {expected}: "
            f"the package has moved past {ADMIN_VERSION}; load it under a new admin_version"
        )

"""What the API and other domains read about administrative units."""

from __future__ import annotations

import msgspec

from marketplace.geo.models import Area, CommuneUnitType, ProvinceUnitType


class ProvinceRead(msgspec.Struct, frozen=True):
    code: str
    name: str
    unit_type: ProvinceUnitType
    admin_version: str
    commune_count: int


class CommuneRead(msgspec.Struct, frozen=True):
    code: str
    name: str
    unit_type: CommuneUnitType
    area: Area
    """Which poverty line applies to households of this commune."""
    admin_version: str
    province_code: str
    province_name: str

"""Provinces and communes of Vietnam's two-level administration (in force since 2025-07-01).

Province codes were reused with new meanings in 2025, so a code alone is ambiguous across
time: every row carries its `admin_version` and codes are unique only within a version.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKeyConstraint,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base
from marketplace.geo.errors import NotASpecialZone

ADMIN_VERSION = "2025-07"
"""The administrative version served by the API and stored with every code we keep."""


class ProvinceUnitType(StrEnum):
    PROVINCE = "province"  # tỉnh
    MUNICIPALITY = "municipality"  # thành phố trực thuộc trung ương


class CommuneUnitType(StrEnum):
    XA = "xa"  # xã
    PHUONG = "phuong"  # phường
    DAC_KHU = "dac_khu"  # đặc khu (special zone)


class Area(StrEnum):
    """Which poverty line applies: a xã is rural, a phường urban, a đặc khu set per zone."""

    RURAL = "rural"
    URBAN = "urban"


def _stored_as_string(enum: type[StrEnum]) -> Enum:
    """A VARCHAR holding the enum's value (not its name), read back as the enum."""
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Province(Base):
    __tablename__ = "provinces"
    __table_args__ = (
        UniqueConstraint("admin_version", "code"),
        Index(
            "ix_provinces_name_folded_trgm",
            "name_folded",
            postgresql_using="gin",
            postgresql_ops={"name_folded": "gin_trgm_ops"},
        ),
    )

    admin_version: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(120))
    unit_type: Mapped[ProvinceUnitType] = mapped_column(_stored_as_string(ProvinceUnitType))
    name_folded: Mapped[str] = mapped_column(String(120))
    """`marketplace.text.fold(name)`: what diacritic-free search compares against."""


class Commune(Base):
    __tablename__ = "communes"
    __table_args__ = (
        UniqueConstraint("admin_version", "code"),
        ForeignKeyConstraint(
            ["admin_version", "province_code"],
            ["provinces.admin_version", "provinces.code"],
        ),
        Index("ix_communes_admin_version_province_code", "admin_version", "province_code"),
        Index(
            "ix_communes_name_folded_trgm",
            "name_folded",
            postgresql_using="gin",
            postgresql_ops={"name_folded": "gin_trgm_ops"},
        ),
        # The area follows the unit type; only a special zone's area is a per-zone setting.
        CheckConstraint(
            "(unit_type = 'xa' AND area = 'rural') OR (unit_type = 'phuong' AND area = 'urban') "
            "OR unit_type = 'dac_khu'",
            name="area_follows_unit_type",
        ),
    )

    admin_version: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(120))
    unit_type: Mapped[CommuneUnitType] = mapped_column(_stored_as_string(CommuneUnitType))
    name_folded: Mapped[str] = mapped_column(String(120))
    province_code: Mapped[str] = mapped_column(String(8))
    area: Mapped[Area] = mapped_column(_stored_as_string(Area))

    def set_special_zone_area(self, area: Area) -> None:
        """A đặc khu's area is a per-zone decision; a xã or phường area follows its type."""
        if self.unit_type is not CommuneUnitType.DAC_KHU:
            raise NotASpecialZone(
                f"{self.name} is a {self.unit_type.value}: its area is {self.area.value}"
            )
        self.area = area

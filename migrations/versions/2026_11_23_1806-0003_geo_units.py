"""geo units: provinces and communes of the 2025-07 reform, loaded from vietnam-provinces

Revision ID: 0003_geo
Revises: 0001_foundation
Create Date: 2026-11-23 18:06:00

A data migration: the 34 provinces and 3,321 communes come from the installed
`vietnam-provinces` package, one bulk insert per table. The rows are built here with this
revision's own `sa.table()` snapshot, not with today's models or loader, so later changes
to `marketplace.geo` cannot break replaying this revision. It imports only the package and
`marketplace.text.fold` (the folding every search query goes through: stored and queried
text must be folded alike). `marketplace.geo.service.load_admin_units` upserts the same
data into an existing database after a package upgrade.
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from vietnam_provinces import Province, VietNamDivisionType, Ward

from marketplace.text import fold

revision: str = "0003_geo"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADMIN_VERSION = "2025-07"
EXPECTED_PROVINCES = 34
EXPECTED_COMMUNES = 3321
# The same namespace as marketplace.geo.source.unit_id: every database holds the same ids.
_ID_NAMESPACE = uuid.UUID("3b0d5c52-7f3e-4a59-9b7c-0a2e61c8e925")

_PROVINCE_TYPES = {
    VietNamDivisionType.TINH: "province",
    VietNamDivisionType.THANH_PHO_TRUNG_UONG: "municipality",
}
# (unit_type, area): xã rural, phường urban, đặc khu rural until set per zone.
_COMMUNE_TYPES = {
    VietNamDivisionType.XA: ("xa", "rural"),
    VietNamDivisionType.PHUONG: ("phuong", "urban"),
    VietNamDivisionType.DAC_KHU: ("dac_khu", "rural"),
}


def _unit_table(name: str, *extra: sa.Column[str]) -> sa.TableClause:
    return sa.table(
        name,
        sa.column("id", sa.Uuid()),
        sa.column("admin_version", sa.String()),
        sa.column("code", sa.String()),
        sa.column("name", sa.String()),
        sa.column("unit_type", sa.String()),
        sa.column("name_folded", sa.String()),
        *extra,
    )


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def _row(kind: str, code: str, name: str, unit_type: str) -> dict[str, object]:
    return {
        "id": uuid.uuid5(_ID_NAMESPACE, f"{kind}:{ADMIN_VERSION}:{code}"),
        "admin_version": ADMIN_VERSION,
        "code": code,
        "name": name,
        "unit_type": unit_type,
        "name_folded": fold(name),
    }


def _province_rows() -> list[dict[str, object]]:
    rows = [
        _row("province", f"{int(p.code):02d}", p.name, _PROVINCE_TYPES[p.division_type])
        for p in Province.iter_all()
    ]
    _check_total("provinces", len(rows), EXPECTED_PROVINCES)
    return rows


def _commune_rows() -> list[dict[str, object]]:
    rows = []
    for w in Ward.iter_all():
        unit_type, area = _COMMUNE_TYPES[w.division_type]
        row = _row("commune", f"{int(w.code):05d}", w.name, unit_type)
        row["province_code"] = f"{int(w.province_code):02d}"
        row["area"] = area
        rows.append(row)
    _check_total("communes", len(rows), EXPECTED_COMMUNES)
    return rows


def _check_total(what: str, found: int, expected: int) -> None:
    # A package release after a later reform must not be loaded under the 2025-07 label.
    if found != expected:
        raise RuntimeError(
            f"vietnam-provinces holds {found} {what}, the {ADMIN_VERSION} set has {expected}; "
            "install the release this revision was written for (2025.10.x)"
        )


def upgrade() -> None:
    op.create_table(
        "provinces",
        sa.Column("admin_version", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("unit_type", sa.String(length=16), nullable=False),
        sa.Column("name_folded", sa.String(length=120), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provinces")),
        sa.UniqueConstraint("admin_version", "code", name=op.f("uq_provinces_admin_version_code")),
    )
    op.create_index(
        "ix_provinces_name_folded_trgm",
        "provinces",
        ["name_folded"],
        postgresql_using="gin",
        postgresql_ops={"name_folded": "gin_trgm_ops"},
    )
    op.create_table(
        "communes",
        sa.Column("admin_version", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("unit_type", sa.String(length=16), nullable=False),
        sa.Column("name_folded", sa.String(length=120), nullable=False),
        sa.Column("province_code", sa.String(length=8), nullable=False),
        sa.Column("area", sa.String(length=16), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint(
            "(unit_type = 'xa' AND area = 'rural') OR (unit_type = 'phuong' AND area = 'urban') "
            "OR unit_type = 'dac_khu'",
            name=op.f("ck_communes_area_follows_unit_type"),
        ),
        sa.ForeignKeyConstraint(
            ["admin_version", "province_code"],
            ["provinces.admin_version", "provinces.code"],
            name=op.f("fk_communes_admin_version_provinces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_communes")),
        sa.UniqueConstraint("admin_version", "code", name=op.f("uq_communes_admin_version_code")),
    )
    op.create_index(
        "ix_communes_admin_version_province_code",
        "communes",
        ["admin_version", "province_code"],
    )
    op.create_index(
        "ix_communes_name_folded_trgm",
        "communes",
        ["name_folded"],
        postgresql_using="gin",
        postgresql_ops={"name_folded": "gin_trgm_ops"},
    )

    op.bulk_insert(_unit_table("provinces"), _province_rows())
    op.bulk_insert(
        _unit_table(
            "communes", sa.column("province_code", sa.String()), sa.column("area", sa.String())
        ),
        _commune_rows(),
    )


def downgrade() -> None:
    op.drop_index("ix_communes_name_folded_trgm", table_name="communes")
    op.drop_index("ix_communes_admin_version_province_code", table_name="communes")
    op.drop_table("communes")
    op.drop_index("ix_provinces_name_folded_trgm", table_name="provinces")
    op.drop_table("provinces")

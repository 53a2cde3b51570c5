"""poverty standards: tables and the known standards, loaded from standards_data

Revision ID: 0004_poverty_standards
Revises: 0001_foundation
Create Date: 2026-11-23 18:07:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from marketplace.impact.standards_data import STANDARDS

revision: str = "0004_poverty_standards"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Ids derived from the codes: every database holds the same id for the same standard.
_IDS = uuid.UUID("5f0c7f3e-4d0a-4a43-9a67-2f5d6c1f0704")


def _standard_id(code: str) -> uuid.UUID:
    return uuid.uuid5(_IDS, f"poverty_standard:{code}")


def _indicator_id(standard_code: str, code: str) -> uuid.UUID:
    return uuid.uuid5(_IDS, f"poverty_indicator:{standard_code}:{code}")


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def upgrade() -> None:
    standards = op.create_table(
        "poverty_standards",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.Column("rural_line", sa.BigInteger(), nullable=False),
        sa.Column("urban_line", sa.BigInteger(), nullable=False),
        sa.Column("deprivation_threshold", sa.SmallInteger(), nullable=False),
        sa.Column("rural_average_living_line", sa.BigInteger(), nullable=True),
        sa.Column("urban_average_living_line", sa.BigInteger(), nullable=True),
        sa.Column("indicators_confirmed", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint(
            "valid_from <= valid_to", name=op.f("ck_poverty_standards_valid_period")
        ),
        sa.CheckConstraint(
            "rural_line > 0 AND urban_line > 0", name=op.f("ck_poverty_standards_lines_positive")
        ),
        sa.CheckConstraint(
            "deprivation_threshold > 0", name=op.f("ck_poverty_standards_threshold_positive")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poverty_standards")),
        sa.UniqueConstraint("code", name=op.f("uq_poverty_standards_code")),
    )
    indicators = op.create_table(
        "poverty_indicators",
        sa.Column("standard_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("dimension_code", sa.String(length=64), nullable=False),
        sa.Column("dimension_name_vi", sa.String(length=200), nullable=False),
        sa.Column("dimension_name_en", sa.String(length=200), nullable=False),
        sa.Column("name_vi", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["standard_id"],
            ["poverty_standards.id"],
            name=op.f("fk_poverty_indicators_standard_id_poverty_standards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poverty_indicators")),
        sa.UniqueConstraint(
            "standard_id", "code", name=op.f("uq_poverty_indicators_standard_id_code")
        ),
        sa.UniqueConstraint(
            "standard_id", "position", name=op.f("uq_poverty_indicators_standard_id_position")
        ),
    )

    # The data comes from the same constant the classifier reads, so code and database agree.
    op.bulk_insert(
        standards,
        [
            {
                "id": _standard_id(s.code),
                "code": s.code,
                "name": s.name,
                "valid_from": s.valid_from,
                "valid_to": s.valid_to,
                "rural_line": s.rural_line,
                "urban_line": s.urban_line,
                "deprivation_threshold": s.deprivation_threshold,
                "rural_average_living_line": s.rural_average_living_line,
                "urban_average_living_line": s.urban_average_living_line,
                "indicators_confirmed": s.indicators_confirmed,
            }
            for s in STANDARDS
        ],
    )
    op.bulk_insert(
        indicators,
        [
            {
                "id": _indicator_id(s.code, i.code),
                "standard_id": _standard_id(s.code),
                "position": position,
                "code": i.code,
                "dimension_code": i.dimension_code,
                "dimension_name_vi": i.dimension_name_vi,
                "dimension_name_en": i.dimension_name_en,
                "name_vi": i.name_vi,
                "name_en": i.name_en,
            }
            for s in STANDARDS
            for position, i in enumerate(s.indicators, start=1)
        ],
    )


def downgrade() -> None:
    op.drop_table("poverty_indicators")
    op.drop_table("poverty_standards")

"""impact: attribution ledger, household-month and area-month aggregates, income shares, exports

Revision ID: 0008_impact
Revises: 0004_poverty_standards
Depends on: 0005_sellers_catalog (households, users)
Create Date: 2026-11-23 18:32:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_impact"
down_revision: str | Sequence[str] | None = "0004_poverty_standards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "0005_sellers_catalog"

DEFAULT_INCOME_SHARE_BPS = 4000
"""40%: the part of revenue taken as the household's own income when no category says more."""

# The ledger is append-only: corrections are new rows (a refund), never edits. Maintenance
# that must remove rows (a test cleaning up its committed rows) sets the session variable
# marketplace.ledger_maintenance to 'on' for its own transaction.
APPEND_ONLY_FUNCTION = """
CREATE FUNCTION attribution_entries_append_only() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('marketplace.ledger_maintenance', true), '') = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'attribution_entries is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql
"""

APPEND_ONLY_TRIGGER = """
CREATE TRIGGER attribution_entries_append_only
BEFORE UPDATE OR DELETE ON attribution_entries
FOR EACH ROW EXECUTE FUNCTION attribution_entries_append_only()
"""


def upgrade() -> None:
    op.create_table(
        "area_month_impact",
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=10), nullable=False),
        sa.Column("province_code", sa.String(length=10), nullable=False),
        sa.Column("admin_version", sa.String(length=10), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("households_selling", sa.Integer(), nullable=False),
        sa.Column("revenue_amount", sa.BigInteger(), nullable=False),
        sa.Column("households_poor", sa.Integer(), nullable=False),
        sa.Column("revenue_poor", sa.BigInteger(), nullable=False),
        sa.Column("households_near_poor", sa.Integer(), nullable=False),
        sa.Column("revenue_near_poor", sa.BigInteger(), nullable=False),
        sa.Column("households_newly_escaped", sa.Integer(), nullable=False),
        sa.Column("revenue_newly_escaped", sa.BigInteger(), nullable=False),
        sa.Column("households_average_living_standard", sa.Integer(), nullable=False),
        sa.Column("revenue_average_living_standard", sa.BigInteger(), nullable=False),
        sa.Column("households_not_poor", sa.Integer(), nullable=False),
        sa.Column("revenue_not_poor", sa.BigInteger(), nullable=False),
        sa.Column("households_unreviewed", sa.Integer(), nullable=False),
        sa.Column("revenue_unreviewed", sa.BigInteger(), nullable=False),
        sa.Column("income_amount", sa.BigInteger(), nullable=False),
        sa.Column("households_closing_gap", sa.Integer(), nullable=False),
        sa.Column("households_income_unknown", sa.Integer(), nullable=False),
        sa.Column("median_uplift_per_person", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_area_month_impact")),
        sa.UniqueConstraint(
            "level",
            "admin_version",
            "code",
            "month",
            name=op.f("uq_area_month_impact_level_admin_version_code_month"),
        ),
    )
    op.create_index(
        "ix_area_month_impact_province",
        "area_month_impact",
        ["level", "admin_version", "province_code", "month"],
        unique=False,
    )
    op.create_table(
        "attribution_events",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entries_count", sa.Integer(), nullable=False),
        sa.Column("amount_total", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attribution_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_attribution_events_event_id")),
    )
    op.create_index(
        op.f("ix_attribution_events_order_id"), "attribution_events", ["order_id"], unique=False
    )
    op.create_table(
        "impact_exports",
        sa.Column("requested_by_user_id", sa.Uuid(), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress_percent", sa.SmallInteger(), nullable=False),
        sa.Column("admin_version", sa.String(length=10), nullable=False),
        sa.Column("province_code", sa.String(length=10), nullable=True),
        sa.Column("commune_code", sa.String(length=10), nullable=True),
        sa.Column("status_filter", sa.String(length=32), nullable=True),
        sa.Column("month_from", sa.Date(), nullable=False),
        sa.Column("month_to", sa.Date(), nullable=False),
        sa.Column("include_names", sa.Boolean(), nullable=False),
        sa.Column("object_key", sa.String(length=200), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "progress_percent BETWEEN 0 AND 100", name=op.f("ck_impact_exports_progress_range")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_user_id"],
            ["users.id"],
            name=op.f("fk_impact_exports_requested_by_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_impact_exports")),
    )
    op.create_index(
        "ix_impact_exports_requester",
        "impact_exports",
        ["requested_by_user_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "income_shares",
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("share_bps", sa.Integer(), nullable=False),
        sa.Column("updated_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "share_bps BETWEEN 0 AND 10000", name=op.f("ck_income_shares_share_range")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_user_id"],
            ["users.id"],
            name=op.f("fk_income_shares_updated_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_income_shares")),
        sa.UniqueConstraint("category", name=op.f("uq_income_shares_category")),
    )
    op.create_table(
        "attribution_entries",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("order_line_id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("cooperative_id", sa.Uuid(), nullable=True),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("lot_id", sa.Uuid(), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("poverty_status", sa.String(length=32), nullable=False),
        sa.Column("income_per_person_month", sa.BigInteger(), nullable=True),
        sa.Column("members_count", sa.Integer(), nullable=False),
        sa.Column("area", sa.String(length=8), nullable=False),
        sa.Column("commune_code", sa.String(length=10), nullable=False),
        sa.Column("province_code", sa.String(length=10), nullable=False),
        sa.Column("admin_version", sa.String(length=10), nullable=False),
        sa.Column("sale_date", sa.Date(), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(kind = 'sale' AND amount > 0) OR (kind = 'refund' AND amount < 0)",
            name=op.f("ck_attribution_entries_amount_sign_follows_kind"),
        ),
        sa.CheckConstraint(
            "members_count >= 1", name=op.f("ck_attribution_entries_members_positive")
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_attribution_entries_household_id_households"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attribution_entries")),
        sa.UniqueConstraint(
            "event_id",
            "order_line_id",
            "household_id",
            name=op.f("uq_attribution_entries_event_id_order_line_id_household_id"),
        ),
    )
    op.create_index(
        "ix_attribution_entries_household_day",
        "attribution_entries",
        ["household_id", "sale_date"],
        unique=False,
    )
    op.create_index(
        "ix_attribution_entries_order", "attribution_entries", ["order_id"], unique=False
    )
    op.create_index(
        "ix_attribution_entries_order_line", "attribution_entries", ["order_line_id"], unique=False
    )
    op.create_table(
        "household_month_impact",
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("commune_code", sa.String(length=10), nullable=False),
        sa.Column("province_code", sa.String(length=10), nullable=False),
        sa.Column("admin_version", sa.String(length=10), nullable=False),
        sa.Column("area", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("members_count", sa.Integer(), nullable=False),
        sa.Column("revenue_amount", sa.BigInteger(), nullable=False),
        sa.Column("revenue_poor", sa.BigInteger(), nullable=False),
        sa.Column("revenue_near_poor", sa.BigInteger(), nullable=False),
        sa.Column("revenue_newly_escaped", sa.BigInteger(), nullable=False),
        sa.Column("revenue_average_living_standard", sa.BigInteger(), nullable=False),
        sa.Column("revenue_not_poor", sa.BigInteger(), nullable=False),
        sa.Column("revenue_unreviewed", sa.BigInteger(), nullable=False),
        sa.Column("income_amount", sa.BigInteger(), nullable=False),
        sa.Column("uplift_per_person", sa.BigInteger(), nullable=False),
        sa.Column("poverty_line", sa.BigInteger(), nullable=True),
        sa.Column("baseline_income_per_person", sa.BigInteger(), nullable=True),
        sa.Column("gap_before", sa.BigInteger(), nullable=True),
        sa.Column("gap_after", sa.BigInteger(), nullable=True),
        sa.Column("closes_gap", sa.Boolean(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_household_month_impact_household_id_households"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household_month_impact")),
        sa.UniqueConstraint(
            "household_id", "month", name=op.f("uq_household_month_impact_household_id_month")
        ),
    )
    op.create_index(
        "ix_household_month_impact_commune",
        "household_month_impact",
        ["admin_version", "commune_code", "month", "household_id"],
        unique=False,
    )
    op.create_index(
        "ix_household_month_impact_province",
        "household_month_impact",
        ["admin_version", "province_code", "month", "household_id"],
        unique=False,
    )

    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(APPEND_ONLY_TRIGGER)
    income_shares = sa.table(
        "income_shares",
        sa.column("id", sa.Uuid()),
        sa.column("category", sa.String()),
        sa.column("share_bps", sa.Integer()),
    )
    op.bulk_insert(
        income_shares,
        [
            {
                "id": uuid.uuid5(uuid.NAMESPACE_URL, "marketplace:income_shares:default"),
                "category": "default",
                "share_bps": DEFAULT_INCOME_SHARE_BPS,
            }
        ],
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS attribution_entries_append_only ON attribution_entries")
    op.execute("DROP FUNCTION IF EXISTS attribution_entries_append_only()")
    op.drop_table("household_month_impact")
    op.drop_table("attribution_entries")
    op.drop_table("income_shares")
    op.drop_table("impact_exports")
    op.drop_table("attribution_events")
    op.drop_table("area_month_impact")

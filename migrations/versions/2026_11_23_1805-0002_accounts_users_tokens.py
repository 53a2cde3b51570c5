"""accounts: users with roles and jurisdictions, hashed bearer tokens

Revision ID: 0002_accounts
Revises: 0001_foundation
Create Date: 2026-11-23 18:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_accounts"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = ("admin", "farmer", "cooperative_manager", "host", "buyer", "helper", "official")


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
    role_values = ", ".join(f"'{role}'" for role in ROLES)
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("login", sa.String(length=254), nullable=False),
        sa.Column("display_name", sa.String(length=120), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("jurisdiction_level", sa.String(length=16), nullable=True),
        sa.Column("jurisdiction_code", sa.String(length=16), nullable=True),
        sa.Column("admin_version", sa.String(length=16), nullable=True),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.CheckConstraint("login = lower(login)", name=op.f("ck_users_login_normalised")),
        sa.CheckConstraint(f"role IN ({role_values})", name=op.f("ck_users_role_known")),
        sa.CheckConstraint(
            "jurisdiction_level IS NULL OR jurisdiction_level IN ('commune', 'province')",
            name=op.f("ck_users_jurisdiction_level_known"),
        ),
        sa.CheckConstraint(
            "(role = 'official' AND jurisdiction_level IS NOT NULL"
            " AND jurisdiction_code IS NOT NULL AND admin_version IS NOT NULL)"
            " OR (role <> 'official' AND jurisdiction_level IS NULL"
            " AND jurisdiction_code IS NULL AND admin_version IS NULL)",
            name=op.f("ck_users_official_jurisdiction"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("login", name=op.f("uq_users_login")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_ip", sa.String(length=45), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_api_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
    )
    op.create_index(op.f("ix_api_tokens_token_hash"), "api_tokens", ["token_hash"], unique=True)
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_api_tokens_user_id"), table_name="api_tokens")
    op.drop_index(op.f("ix_api_tokens_token_hash"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("users")

"""catalog read paths: the folded product name for search tiers

Search ranks products whose name holds the query before those whose description or region
does (marketplace.catalog.listing), newest first within each tier, so a page stops after its
rows instead of scoring every match. The folded name gets a column of its own, a b-tree for
"the name is the query" and a trigram index for "the name holds every word".

Revision ID: 0011_catalog_read_paths
Revises: 0009_merge_domains
Create Date: 2026-11-23 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from marketplace.text import fold

revision: str = "0011_catalog_read_paths"
down_revision: str | Sequence[str] | None = "0009_merge_domains"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_BATCH = 5000


def upgrade() -> None:
    op.add_column(
        "products", sa.Column("search_name", sa.Text(), server_default="", nullable=False)
    )
    # Folded in Python, as the service does: SQL has no `unaccent` in the embedded database.
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, name FROM products")).all()
    update = sa.text("UPDATE products SET search_name = :search_name WHERE id = :id")
    for start in range(0, len(rows), BACKFILL_BATCH):
        batch = rows[start : start + BACKFILL_BATCH]
        connection.execute(update, [{"id": r.id, "search_name": fold(r.name)} for r in batch])
    op.create_index("ix_products_search_name", "products", ["search_name"], unique=False)
    op.create_index(
        "ix_products_search_name_trgm",
        "products",
        ["search_name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"search_name": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.drop_index(
        "ix_products_search_name_trgm",
        table_name="products",
        postgresql_using="gin",
        postgresql_ops={"search_name": "gin_trgm_ops"},
    )
    op.drop_index("ix_products_search_name", table_name="products")
    op.drop_column("products", "search_name")

"""Run Alembic migrations from code (CLI, embedded demo, tests) with the project's config."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def upgrade_to_head(database_url: str) -> None:
    """`heads`, not `head`: parallel domain branches are legal until a merge revision joins them."""
    command.upgrade(alembic_config(database_url), "heads")

"""Imports every domain's models so `Base.metadata` is complete for Alembic and tests."""

from __future__ import annotations

import importlib

from marketplace.db import Base

MODEL_MODULES: tuple[str, ...] = (
    "marketplace.impact.models",
    "marketplace.geo.models",
    "marketplace.accounts.models",
    "marketplace.sellers.models",
    "marketplace.catalog.models",
    "marketplace.orders.models",
    "marketplace.payments.models",
    "marketplace.livestreams.models",
)
"""Each domain's models module; add its name here when a domain gains tables."""


def load_all_models() -> type[Base]:
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return Base

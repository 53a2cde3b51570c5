"""Imports every domain's models so `Base.metadata` is complete for Alembic and tests."""

from __future__ import annotations

import importlib

from marketplace.db import Base

MODEL_MODULES: tuple[str, ...] = ()
"""Each domain's models module; add its name here when a domain gains tables."""


def load_all_models() -> type[Base]:
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return Base

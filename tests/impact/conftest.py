"""Fixtures of the impact tests: the service on the test's unit of work."""

from __future__ import annotations

import pytest

from marketplace.impact.service import ImpactService
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork


@pytest.fixture
def impact(uow: UnitOfWork, settings: Settings) -> ImpactService:
    return ImpactService(uow, settings)

"""Fixtures of the impact tests: the service on the test's unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar

from marketplace.impact.service import ImpactService
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from tests.accounts.factories import ClientAt


@pytest.fixture
def impact(uow: UnitOfWork, settings: Settings) -> ImpactService:
    return ImpactService(uow, settings)


@pytest.fixture
async def client_at(app: Litestar, client: httpx.AsyncClient) -> AsyncIterator[ClientAt]:
    """Clients calling from an address of their own: login rate limits live in a Redis
    shared by every test and concurrent run (as in tests/accounts)."""
    made: list[httpx.AsyncClient] = []

    def make(ip: str) -> httpx.AsyncClient:
        made.append(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=(ip, 50123)),
                base_url="http://testserver",
            )
        )
        return made[-1]

    yield make
    for c in made:
        await c.aclose()

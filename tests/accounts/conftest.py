"""Clients at addresses of their own: login rate-limit windows live in a Redis shared by
every test and every concurrent run, so login tests never share a client address."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar

from tests.accounts.factories import ClientAt, unique_ip


@pytest.fixture
async def client_at(app: Litestar, client: httpx.AsyncClient) -> AsyncIterator[ClientAt]:
    """Make clients calling from a given address (the app is started by `client`)."""
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


@pytest.fixture
def login_client(client_at: ClientAt) -> httpx.AsyncClient:
    """A client from an address no other test uses."""
    return client_at(unique_ip())

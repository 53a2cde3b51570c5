"""Security tests run with payments configured as production would be (the payments
tests' Stripe stand-in and webhook secrets), and can build an app that really commits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import httpx
import pytest
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis

from marketplace.app import create_app
from marketplace.settings import PaymentSettings, Settings
from tests.payments.conftest import (
    BANK_SECRET,
    COLLECTION_ACCOUNT,
    COLLECTION_BIN,
    FEE_BPS,
    STRIPE_WEBHOOK_SECRET,
)
from tests.payments.stripe_server import FakeStripe, StripeServer
from tests.support.jobs import RecordingSender


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[StripeServer]:
    server = StripeServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings(settings: Settings, stripe_server: StripeServer) -> Settings:
    return settings.with_overrides(
        payments=PaymentSettings(
            stripe_api_key="sk_test_local_stand_in",
            stripe_webhook_secret=STRIPE_WEBHOOK_SECRET,
            stripe_api_base=stripe_server.base_url,
            bank_webhook_secret=BANK_SECRET,
            platform_fee_bps=FEE_BPS,
            collection_bank_bin=COLLECTION_BIN,
            collection_account_number=COLLECTION_ACCOUNT,
        )
    )


@pytest.fixture
def fake_stripe(stripe_server: StripeServer) -> FakeStripe:
    stripe_server.fake.requests.clear()
    stripe_server.fake.fail_next = None
    return stripe_server.fake


@pytest.fixture
async def committing_client(settings: Settings, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    """The production wiring on the test database: its own engine and pool, real commits,
    so concurrent requests really race in PostgreSQL."""
    database = replace(settings.database, pool_size=20, max_overflow=10)
    app = create_app(
        settings.with_overrides(database=database),
        redis=redis,
        job_sender=RecordingSender(),
        skip_logging_setup=True,
    )
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=60
        ) as client,
    ):
        yield client

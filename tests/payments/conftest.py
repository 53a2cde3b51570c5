"""Payments under test: a local Stripe stand-in for the real SDK, webhook secrets, the
platform's collection account, and the services on the test's rolled-back transaction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from marketplace.orders.service import OrderService
from marketplace.payments.service import PaymentService
from marketplace.settings import PaymentSettings, Settings
from marketplace.unit_of_work import UnitOfWork
from tests.payments.stripe_server import FakeStripe, StripeServer

BANK_SECRET = "bank-feed-secret-" + "z" * 32
STRIPE_WEBHOOK_SECRET = "whsec_test_" + "w" * 32
COLLECTION_BIN = "970436"
COLLECTION_ACCOUNT = "1017595600"
FEE_BPS = 500


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[StripeServer]:
    server = StripeServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings(settings: Settings, stripe_server: StripeServer) -> Settings:
    """The suite's settings with payments configured as production would be."""
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
    stripe_server.fake.refund_status = "succeeded"
    stripe_server.fake.fail_next = None
    return stripe_server.fake


@pytest.fixture
def payments(uow: UnitOfWork, settings: Settings, redis: Redis) -> PaymentService:
    return PaymentService(uow, settings, redis)


@pytest.fixture
def orders(payments: PaymentService) -> OrderService:
    return payments.orders

"""Orders ready to be paid, and bank feed deliveries signed as the bank signs them.

buyer, order = await place(session, orders, method="vietqr", price_amount=180_000)
body = feed(transfer(order.payment_code, 180_000))
await client.post(BANK_WEBHOOK, content=body, headers=bank_headers(body))
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role, User
from marketplace.orders.models import Order
from marketplace.orders.service import OrderService
from marketplace.payments.bank import sign
from marketplace.sellers.models import Household, PovertyStatus
from tests.accounts.factories import create_user
from tests.orders.factories import catalog_order, create_variant
from tests.payments.conftest import BANK_SECRET
from tests.sellers.factories import create_household

BANK_WEBHOOK = "/api/payments/bank/webhook"
STRIPE_WEBHOOK = "/api/payments/stripe/webhook"


async def place(
    session: AsyncSession,
    orders: OrderService,
    *,
    method: str = "vietqr",
    price_amount: int = 180_000,
    quantity: int = 1,
    status: PovertyStatus | None = PovertyStatus.NOT_POOR,
    household: Household | None = None,
    buyer: User | None = None,
) -> tuple[User, Order]:
    """An order of one line from a household (not poor by default, so the fee applies)."""
    buyer = buyer or await create_user(session, role=Role.BUYER)
    household = household or await create_household(session, status=status)
    variant = await create_variant(
        session, household=household, price_amount=price_amount, available=100
    )
    order = await orders.place_order(
        catalog_order(buyer, variant, quantity=quantity, payment_method=method)
    )
    return buyer, order


def transfer(
    description: str | None,
    amount: int,
    *,
    reference: str | None = None,
    credited_at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "reference": reference or "FT" + secrets.token_hex(6).upper(),
        "amount": amount,
        "description": description or "chuyen tien",
        "credited_at": (credited_at or datetime.now(UTC)).isoformat(),
    }


def feed(*transfers: dict[str, Any]) -> bytes:
    return json.dumps({"transactions": list(transfers)}).encode()


def bank_headers(
    body: bytes, *, secret: str = BANK_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "X-Bank-Timestamp": ts,
        "X-Bank-Signature": sign(secret, ts, body),
        "Content-Type": "application/json",
    }


async def fresh(session: AsyncSession, order: Order) -> Order:
    """The order as the database has it now (it was made in the services' own session)."""
    found = await session.get(Order, order.id, populate_existing=True)
    assert found is not None
    return found

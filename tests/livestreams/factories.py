"""Factories for livestream tests: verified hosts, sellers with stock, sessions made through
the API as a host would make them.

    host = await create_host(session)                      # verified by an admin
    world = await live_world(client, session, host)        # a live session, one household,
                                                           # a variant with 40 in stock
    item = await pin(client, world, code="CAM1", stock_cap=10)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role, User
from marketplace.catalog.models import Product, Variant
from marketplace.livestreams.models import (
    DocumentKind,
    HostVerification,
    LiveItem,
    LiveSession,
    Platform,
    SessionSeller,
    SessionStatus,
    VerificationStatus,
)
from marketplace.sellers.models import Household
from tests.accounts.factories import auth_headers, create_user
from tests.catalog.factories import create_product
from tests.sellers.factories import create_household

RULES = (
    "Quy định phiên live: chốt đơn bằng bình luận mã + số lượng + số điện thoại. "
    "Đơn giữ hàng 15 phút; đổi trả trong 3 ngày nếu quả dập hỏng."
)


@dataclass
class Caller:
    user: User
    headers: dict[str, str]


@dataclass
class World:
    host: Caller
    household: Household
    product: Product
    variant: Variant
    session_id: uuid.UUID
    connector_token: str


async def create_host(session: AsyncSession, *, verified: bool = True) -> User:
    """A host account; verified means an admin approved an identity document."""
    host = await create_user(session, role=Role.HOST)
    if verified:
        admin = await create_user(session, role=Role.ADMIN)
        now = datetime.now(UTC)
        session.add(
            HostVerification(
                host_user_id=host.id,
                document_kind=DocumentKind.CITIZEN_ID.value,
                document_reference=f"kyc/{host.id}/cccd.jpg",
                status=VerificationStatus.APPROVED.value,
                submitted_at=now - timedelta(days=2),
                reviewed_by_user_id=admin.id,
                reviewed_at=now - timedelta(days=1),
            )
        )
        await session.flush()
    return host


async def caller(session: AsyncSession, role: Role, **kwargs: Any) -> Caller:
    user = (
        await create_host(session, **kwargs)
        if role is Role.HOST
        else await create_user(session, role=role)
    )
    return Caller(user, await auth_headers(session, user))


def session_body(
    household_ids: list[uuid.UUID] | None = None,
    *,
    start_in: timedelta = timedelta(hours=1),
    length: timedelta = timedelta(hours=2),
    now: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    start = (now or datetime.now(UTC)) + start_in
    body: dict[str, Any] = {
        "title": "Chợ phiên cam Hương Trà - vụ mới",
        "platform": "facebook",
        "scheduled_start_at": start.isoformat(),
        "scheduled_end_at": (start + length).isoformat(),
        "rules_text": RULES,
        "household_ids": [str(h) for h in household_ids or []],
    }
    body.update(extra)
    return body


async def live_world(
    client: httpx.AsyncClient,
    session: AsyncSession,
    *,
    host: Caller | None = None,
    available: int = 40,
    go_live: bool = True,
) -> World:
    """A verified host's session selling one household's oranges, scheduled and (unless
    told) live, with a connector token."""
    host = host or await caller(session, Role.HOST)
    household = await create_household(session)
    product = await create_product(
        session, household=household, variants=[("hộp 2 kg", 180_000, available)]
    )
    variant = await first_variant(session, product)
    created = await client.post(
        "/api/host/livestreams/", json=session_body([household.id]), headers=host.headers
    )
    assert created.status_code == 201, created.text
    session_id = uuid.UUID(created.json()["id"])
    scheduled = await client.post(
        f"/api/host/livestreams/{session_id}/schedule", headers=host.headers
    )
    assert scheduled.status_code == 200, scheduled.text
    if go_live:
        started = await client.post(
            f"/api/host/livestreams/{session_id}/go-live", headers=host.headers
        )
        assert started.status_code == 200, started.text
    token = await client.post(
        f"/api/host/livestreams/{session_id}/connector-token", headers=host.headers
    )
    assert token.status_code == 200, token.text
    return World(
        host=host,
        household=household,
        product=product,
        variant=variant,
        session_id=session_id,
        connector_token=token.json()["token"],
    )


async def first_variant(session: AsyncSession, product: Product) -> Variant:
    result = await session.execute(select(Variant).where(Variant.product_id == product.id))
    return result.scalars().one()


async def pin(
    client: httpx.AsyncClient,
    world: World,
    *,
    code: str = "CAM1",
    stock_cap: int = 10,
    per_buyer_limit: int = 5,
    live_price_amount: int = 150_000,
    variant: Variant | None = None,
) -> dict[str, Any]:
    response = await client.post(
        f"/api/host/livestreams/{world.session_id}/items",
        json={
            "variant_id": str((variant or world.variant).id),
            "code": code,
            "live_price_amount": live_price_amount,
            "stock_cap": stock_cap,
            "per_buyer_limit": per_buyer_limit,
        },
        headers=world.host.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def comment_body(
    text: str, *, author: str = "fb-100001", name: str = "Trần Thị Bích", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "platform": "facebook",
        "external_id": f"c-{uuid.uuid4().hex}",
        "author_platform_id": author,
        "author_display_name": name,
        "text": text,
        "commented_at": datetime.now(UTC).isoformat(),
    }
    body.update(extra)
    return body


async def post_comment(
    client: httpx.AsyncClient, world: World, text: str, **kwargs: Any
) -> httpx.Response:
    return await client.post(
        f"/api/livestreams/{world.session_id}/comments",
        json=comment_body(text, **kwargs),
        headers={"X-Connector-Token": world.connector_token},
    )


@dataclass
class LiveRows:
    host: User
    household: Household
    variant: Variant
    live: LiveSession
    item: LiveItem


async def create_live_item(
    session: AsyncSession,
    *,
    stock_cap: int = 10,
    per_buyer_limit: int = 5,
    live_price_amount: int = 150_000,
    hold_seconds: int = 900,
    status: SessionStatus = SessionStatus.LIVE,
    variant_left: int = 30,
    code: str = "CAM1",
) -> LiveRows:
    """A session in `status` with one pinned item, rows written directly (its stock cap
    already out of the variant, which keeps `variant_left`)."""
    host = await create_host(session)
    household = await create_household(session)
    product = await create_product(
        session, household=household, variants=[("hộp 2 kg", 180_000, variant_left)]
    )
    variant = await first_variant(session, product)
    now = datetime.now(UTC)
    live = LiveSession(
        host_user_id=host.id,
        title="Chợ phiên bưởi da xanh",
        platform=Platform.FACEBOOK.value,
        status=status.value,
        scheduled_start_at=now - timedelta(minutes=5),
        scheduled_end_at=now + timedelta(hours=2),
        rules_text=RULES,
        hold_seconds=hold_seconds,
        started_at=now - timedelta(minutes=5) if status is SessionStatus.LIVE else None,
    )
    session.add(live)
    await session.flush()
    session.add(SessionSeller(session_id=live.id, household_id=household.id))
    item = LiveItem(
        session_id=live.id,
        variant_id=variant.id,
        product_id=product.id,
        household_id=household.id,
        code=code,
        title=f"{product.name} (hộp 2 kg)",
        live_price_amount=live_price_amount,
        stock_cap=stock_cap,
        available=stock_cap,
        per_buyer_limit=per_buyer_limit,
        pinned_at=now - timedelta(minutes=1),
    )
    session.add(item)
    await session.flush()
    return LiveRows(host=host, household=household, variant=variant, live=live, item=item)

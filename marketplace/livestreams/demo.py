"""A scheduled demo livestream for the default run, made through the livestream rules.

"Phiên live trái cây Hương Trà" is hosted by the demo host on Facebook, tomorrow at 19:00
Vietnam time for 90 minutes, selling the fruit of the demo households of Hương Trà (the
catalog demo's products). The host is verified first, as the 2025 Law on E-commerce asks: the
host submits a document reference and the demo admin approves it. Items may be pinned while a
session is a draft or scheduled, so three are pinned with live prices and stock caps: CAM1
(cam V2), BUOI1 (bưởi da xanh) and QUYT1 (quýt Thanh Bình).

A session sells either one cooperative's goods or households' goods, never both, so the
cooperative's ổi VietGAP (OI1) cannot be pinned here.

Idempotent: a session of the host with the same title is left as it is (items included).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Final

from redis.asyncio import Redis

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.catalog.certificates import VIETNAM, vietnam_today
from marketplace.catalog.demo import (
    BUOI_DA_XANH,
    CAM_V2,
    COOPERATIVE,
    DEMO_PRODUCTS,
    QUYT_THANH_BINH,
    DemoCatalogReport,
    SeedProduct,
)
from marketplace.catalog.service import CatalogService
from marketplace.db import utcnow
from marketplace.livestreams.compliance import ComplianceService
from marketplace.livestreams.events import LiveEvent, LiveEventPublisher
from marketplace.livestreams.models import DocumentKind, Platform, VerificationStatus
from marketplace.livestreams.service import (
    MAX_PAGE,
    ItemDraft,
    LivestreamService,
    SessionDraft,
)
from marketplace.sellers.demo import ADMIN_LOGIN, DemoSellersReport
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

HOST_LOGIN: Final = "host@demo.vn"
TITLE: Final = "Phiên live trái cây Hương Trà"
STARTS_AT_LOCAL: Final = time(19, 0)
DURATION: Final = timedelta(minutes=90)
HOLD_SECONDS: Final = 15 * 60
VARIANT_LABEL: Final = "hộp 2 kg"
DOCUMENT_REFERENCE: Final = "DEMO-CCCD-046000000001"
RULES_TEXT: Final = """Quy định phiên live "Trái cây Hương Trà":
1. Chốt đơn bằng bình luận: mã sản phẩm và số lượng, ví dụ "chốt CAM1 x2" hoặc "BUOI1 1".
2. Muốn bỏ đơn, bình luận "bỏ" kèm mã, ví dụ "bỏ CAM1".
3. Hàng được giữ 15 phút kể từ khi chốt; quá thời gian chưa thanh toán, hàng trả lại cho người khác.
4. Mỗi khách mua tối đa số lượng ghi cạnh từng mã; giá live áp dụng trong suốt phiên.
5. Thanh toán chuyển khoản qua mã VietQR hoặc nhận hàng trả tiền (COD).
6. Khiếu nại về phiên live gửi trong lúc live hoặc sau khi phiên kết thúc, ban quản trị trả lời.
7. Số điện thoại trong bình luận được ẩn khi hiển thị công khai."""


@dataclass(frozen=True)
class DemoItem:
    code: str
    product: SeedProduct
    live_price_amount: int
    stock_cap: int
    per_buyer_limit: int


DEMO_ITEMS: Final[tuple[DemoItem, ...]] = (
    DemoItem("CAM1", CAM_V2, 159_000, 20, 3),
    DemoItem("BUOI1", BUOI_DA_XANH, 165_000, 15, 2),
    DemoItem("QUYT1", QUYT_THANH_BINH, 149_000, 20, 3),
)
"""Live prices in đồng, below the 180,000 ₫ list price of a 2 kg box."""


@dataclass
class DemoLivestreamReport:
    session_id: uuid.UUID
    title: str
    scheduled_start_at: datetime
    created: bool
    item_codes: list[str] = field(default_factory=list)
    host_verified_now: bool = False


class _Unannounced(LiveEventPublisher):
    """The demo session is made before the API serves anyone, so no viewer is subscribed
    to it: its events are dropped instead of published after the caller's commit, which
    lets `marketplace seed` run without Redis."""

    def spawn(self, events: Sequence[LiveEvent]) -> None:
        return None

    def track(self, coro: Awaitable[None], name: str = "now") -> None:
        if inspect.iscoroutine(coro):
            coro.close()


def demo_start(now: datetime) -> datetime:
    """Tomorrow at 19:00 in Vietnam, in UTC."""
    tomorrow = vietnam_today(now) + timedelta(days=1)
    return datetime.combine(tomorrow, STARTS_AT_LOCAL, tzinfo=VIETNAM).astimezone(UTC)


def _acting(accounts: Mapping[str, uuid.UUID], login: str, role: Role) -> AuthenticatedUser:
    return AuthenticatedUser(
        id=accounts[login],
        role=role,
        display_name=login,
        jurisdiction_level=None,
        jurisdiction_code=None,
        token_id=uuid.UUID(int=0),
    )


async def load_demo_livestreams(
    uow: UnitOfWork,
    settings: Settings,
    sellers_report: DemoSellersReport,
    catalog_report: DemoCatalogReport,
    accounts: Mapping[str, uuid.UUID],
) -> DemoLivestreamReport:
    """The demo session of the demo households' products (`catalog_report`), hosted by
    `host@demo.vn`. `accounts` maps demo logins to user ids. The caller commits."""
    admin = _acting(accounts, ADMIN_LOGIN, Role.ADMIN)
    host = _acting(accounts, HOST_LOGIN, Role.HOST)
    # Creating, scheduling and pinning touch only the database and the events are dropped,
    # so this client never connects.
    redis = Redis.from_url(settings.redis.url) if settings.redis.url else Redis()
    try:
        publisher = _Unannounced(redis, clock=utcnow)
        livestreams = LivestreamService(uow, redis, events=publisher)
        sessions, _ = await livestreams.list_sessions(
            host=host, statuses=None, limit=MAX_PAGE, offset=0
        )
        for view in sessions:
            if view.session.title == TITLE:
                items = await livestreams.items(view.session.id, pinned_only=True)
                return DemoLivestreamReport(
                    session_id=view.session.id,
                    title=view.session.title,
                    scheduled_start_at=view.session.scheduled_start_at,
                    created=False,
                    item_codes=[item.item.code for item in items],
                )

        verified_now = await _verify_host(uow, admin, host)
        start = demo_start(utcnow())
        households = sorted(
            {sellers_report.households[p.seller] for p in DEMO_PRODUCTS if p.seller != COOPERATIVE},
            key=str,
        )
        created = await livestreams.create_session(
            host,
            SessionDraft(
                title=TITLE,
                platform=Platform.FACEBOOK,
                scheduled_start_at=start,
                scheduled_end_at=start + DURATION,
                rules_text=RULES_TEXT,
                hold_seconds=HOLD_SECONDS,
                household_ids=households,
            ),
        )
        session_id = created.session.id
        report = DemoLivestreamReport(
            session_id=session_id,
            title=created.session.title,
            scheduled_start_at=created.session.scheduled_start_at,
            created=True,
            host_verified_now=verified_now,
        )
        await livestreams.schedule(host, session_id)
        catalog = CatalogService(uow, settings)
        for demo in DEMO_ITEMS:
            product = await catalog.owner_view(admin, catalog_report.products[demo.product.name])
            variant = next(v for v in product.variants if v.label == VARIANT_LABEL)
            pinned = await livestreams.pin_item(
                host,
                session_id,
                ItemDraft(
                    variant_id=variant.id,
                    code=demo.code,
                    live_price_amount=demo.live_price_amount,
                    stock_cap=demo.stock_cap,
                    per_buyer_limit=demo.per_buyer_limit,
                ),
            )
            report.item_codes.append(pinned.item.code)
        return report
    finally:
        await redis.aclose()


async def _verify_host(uow: UnitOfWork, admin: AuthenticatedUser, host: AuthenticatedUser) -> bool:
    """The host submits a document reference and the demo admin approves it, unless the host
    is verified already; a submission left waiting is approved as it is."""
    compliance = ComplianceService(uow)
    verified, latest = await compliance.host_status(host.id)
    if verified:
        return False
    if latest is None or latest.status != VerificationStatus.SUBMITTED.value:
        latest = await compliance.submit_verification(
            host, document_kind=DocumentKind.CITIZEN_ID, document_reference=DOCUMENT_REFERENCE
        )
    await compliance.approve(admin, latest.id, "Đã đối chiếu giấy tờ (dữ liệu demo).")
    return True

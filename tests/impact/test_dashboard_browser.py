"""The officials' dashboard in a real browser (Debian's Chromium driven by Playwright): a
commune official logs in through the form, sees the figures the database holds, the charts
draw from the vendored Chart.js under the page's Content-Security-Policy, and a screenshot
is saved under tests/artifacts/."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.accounts.models import JurisdictionLevel, Role
from marketplace.app import create_app
from marketplace.impact.models import AreaMonth
from marketplace.impact.service import ImpactService
from marketplace.sellers.models import PovertyStatus
from marketplace.settings import Settings
from tests.accounts.factories import DEFAULT_PASSWORD, create_user
from tests.impact.factories import create_product, household_line, settled
from tests.sellers.factories import HUONG_THUY, HUONG_TRA, add_review, create_household
from tests.support.jobs import RecordingSender

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Chromium is not installed (.ci/run installs it: apt-get install -y chromium)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def browser_app(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    job_sender: RecordingSender,
) -> Litestar:
    """The browser logs in from 127.0.0.1 like every in-process test client of this xdist
    worker; a per-IP login limit of its own keeps their failed logins from locking it out."""
    security = replace(settings.security, login_attempts_per_ip=100_000)
    return create_app(
        settings.with_overrides(security=security),
        sessionmaker=sessionmaker,
        redis=redis,
        job_sender=job_sender,
        skip_logging_setup=True,
    )


@pytest.fixture
async def server(browser_app: Litestar) -> AsyncIterator[str]:
    """The app served over real HTTP on this test's loop, so it reads the test's (rolled
    back) transaction; the browser's requests arrive one page at a time."""
    port = _free_port()
    config = uvicorn.Config(
        browser_app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    instance = uvicorn.Server(config)
    task = asyncio.create_task(instance.serve())
    while not instance.started:  # noqa: ASYNC110 - uvicorn offers no start-up event
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    await task


async def _sell(
    session: AsyncSession, impact: ImpactService, status: PovertyStatus, amount: int, **kw: str
) -> None:
    household = await create_household(session, status=status, members_count=3, **kw)
    await add_review(
        session,
        household,
        status=status,
        income_per_person_month=1_900_000,
        review_date=datetime(2026, 1, 15, tzinfo=UTC).date(),
    )
    product = await create_product(session, household=household)
    await impact.record_event(
        settled(
            household_line(household, product, amount),
            settled_at=datetime(2026, 3, 12, 2, 0, tzinfo=UTC),
        )
    )


async def test_a_commune_official_sees_the_figures_of_the_database_on_the_dashboard(
    session: AsyncSession, impact: ImpactService, server: str
) -> None:
    from playwright.async_api import async_playwright  # noqa: PLC0415

    await _sell(session, impact, PovertyStatus.POOR, 1_250_000, head_name="Võ Thị Cam")
    await _sell(session, impact, PovertyStatus.POOR, 300_000, head_name="Đặng Văn Ổi")
    await _sell(session, impact, PovertyStatus.NEAR_POOR, 420_000)
    await _sell(session, impact, PovertyStatus.POOR, 999_000, commune_code=HUONG_THUY)
    official = await create_user(
        session,
        role=Role.OFFICIAL,
        jurisdiction_level=JurisdictionLevel.COMMUNE,
        jurisdiction_code=HUONG_TRA,
    )
    await impact._uow.session.flush()
    march = await session.scalar(
        select(AreaMonth).where(
            AreaMonth.level == "commune",
            AreaMonth.code == HUONG_TRA,
            AreaMonth.month == datetime(2026, 3, 1, tzinfo=UTC).date(),
        )
    )
    assert march is not None

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 1600})
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{server}/impact/login")
            await page.fill("#login", official.login)
            await page.fill("#password", DEFAULT_PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{server}/impact/dashboard")

            cookies = {c["name"]: c for c in await context.cookies()}
            assert cookies["mp_official"]["httpOnly"] is True
            assert cookies["mp_official"]["sameSite"] == "Strict"

            await page.goto(f"{server}/impact/dashboard?month_from=2026-01&month_to=2026-03")
            await page.wait_for_selector("body[data-charts-ready=true]")
            row = page.locator("#months tr[data-month='2026-03']")
            shown = {
                group: int(await row.locator(f"td[data-group='{group}']").inner_text())
                for group in ("poor", "near_poor", "not_poor")
            }
            total = int(await row.locator("td[data-field=revenue]").inner_text())
            poor_households = int(await row.locator("td[data-field=poor-households]").inner_text())
            names = await page.locator("#gaps").inner_text()
            closing = int(await page.locator("[data-testid=last-month-closing-gap]").inner_text())
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "impact_dashboard.png"), full_page=True)
        finally:
            await browser.close()

    assert shown == {
        "poor": march.revenue_poor,
        "near_poor": march.revenue_near_poor,
        "not_poor": march.revenue_not_poor,
    }
    assert (shown["poor"], shown["near_poor"]) == (1_550_000, 420_000)
    assert total == march.revenue_amount == 1_970_000
    assert poor_households == march.households_poor == 2
    # Võ Thị Cam's uplift (1,250,000 x 40% / 3 = 166,666 a person) takes her household from
    # 1,900,000 over the 2,000,000 urban line: she is no longer among the open gaps.
    assert "Đặng Văn Ổi" in names
    assert "Võ Thị Cam" not in names
    assert closing == march.households_closing_gap == 1
    assert errors == []

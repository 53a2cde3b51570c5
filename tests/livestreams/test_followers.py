"""Followers of households and cooperatives are reminded 15 minutes before a scheduled
session, exactly once per session, however many sweeps run and however concurrently."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from marketplace.accounts.models import Role, User
from marketplace.livestreams.followers import FollowerService
from marketplace.livestreams.models import (
    Follow,
    HostVerification,
    LiveSession,
    Platform,
    Reminder,
    SessionSeller,
    SessionStatus,
)
from marketplace.sellers.models import Cooperative, Household
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from tests.accounts.factories import auth_headers, create_user
from tests.livestreams.conftest import MovableClock
from tests.livestreams.factories import RULES, caller, create_host
from tests.sellers.factories import create_cooperative, create_household
from tests.support.jobs import RecordingSender
from workers.livestreams import send_session_reminders
from workers.runtime import WorkerContext


async def _session_of(
    session: AsyncSession,
    host: User,
    *,
    starts: datetime,
    status: SessionStatus = SessionStatus.SCHEDULED,
    households: list[Household] | None = None,
    cooperative: Cooperative | None = None,
) -> LiveSession:
    live = LiveSession(
        host_user_id=host.id,
        title="Phiên bưởi da xanh tối thứ bảy",
        platform=Platform.TIKTOK.value,
        status=status.value,
        scheduled_start_at=starts,
        scheduled_end_at=starts + timedelta(hours=1),
        rules_text=RULES,
    )
    session.add(live)
    await session.flush()
    for household in households or []:
        session.add(SessionSeller(session_id=live.id, household_id=household.id))
    if cooperative is not None:
        session.add(SessionSeller(session_id=live.id, cooperative_id=cooperative.id))
    await session.flush()
    return live


async def _follow(
    session: AsyncSession,
    user: User,
    *,
    household: Household | None = None,
    cooperative: Cooperative | None = None,
) -> None:
    session.add(
        Follow(
            user_id=user.id,
            household_id=household.id if household else None,
            cooperative_id=cooperative.id if cooperative else None,
        )
    )
    await session.flush()


async def test_following_is_idempotent_and_undone_by_its_follower_only(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    buyer = await caller(session, Role.BUYER)
    other = await caller(session, Role.BUYER)
    household = await create_household(session)

    first = await client.post(
        "/api/follows/", json={"household_id": str(household.id)}, headers=buyer.headers
    )
    again = await client.post(
        "/api/follows/", json={"household_id": str(household.id)}, headers=buyer.headers
    )
    listed = await client.get("/api/follows/", headers=buyer.headers)
    meddle = await client.delete(f"/api/follows/{first.json()['id']}", headers=other.headers)
    undone = await client.delete(f"/api/follows/{first.json()['id']}", headers=buyer.headers)

    assert first.status_code == 201, first.text
    assert again.json()["id"] == first.json()["id"]
    assert [f["household_id"] for f in listed.json()] == [str(household.id)]
    assert (meddle.status_code, meddle.json()["code"]) == (404, "follow_not_found")
    assert undone.status_code == 204
    assert (await client.get("/api/follows/", headers=buyer.headers)).json() == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({}, 422, id="nobody"),
        pytest.param(
            {"household_id": str(uuid.uuid4()), "cooperative_id": str(uuid.uuid4())}, 422, id="both"
        ),
        pytest.param({"household_id": str(uuid.uuid4())}, 404, id="unknown-household"),
        pytest.param({"cooperative_id": str(uuid.uuid4())}, 404, id="unknown-cooperative"),
    ],
)
async def test_one_existing_household_or_cooperative_is_followed(
    client: httpx.AsyncClient, session: AsyncSession, body: dict[str, str], status: int
) -> None:
    buyer = await caller(session, Role.BUYER)

    response = await client.post("/api/follows/", json=body, headers=buyer.headers)

    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_followers_are_reminded_of_sessions_starting_within_15_minutes_once(
    client: httpx.AsyncClient, session: AsyncSession, uow: UnitOfWork, clock: MovableClock
) -> None:
    now = clock.now
    host = await create_host(session)
    orchard, neighbour = await create_household(session), await create_household(session)
    cooperative = await create_cooperative(session)
    soon = await _session_of(
        session, host, starts=now + timedelta(minutes=10), households=[orchard, neighbour]
    )
    coop_soon = await _session_of(
        session, host, starts=now + timedelta(minutes=15), cooperative=cooperative
    )
    later = await _session_of(
        session, host, starts=now + timedelta(minutes=16), households=[orchard]
    )
    draft = await _session_of(
        session,
        host,
        starts=now + timedelta(minutes=5),
        status=SessionStatus.DRAFT,
        households=[orchard],
    )
    started = await _session_of(
        session, host, starts=now - timedelta(minutes=1), households=[orchard]
    )
    both = await create_user(session, role=Role.BUYER)
    coop_fan = await create_user(session, role=Role.BUYER)
    await _follow(session, both, household=orchard)
    await _follow(session, both, household=neighbour)
    await _follow(session, coop_fan, cooperative=cooperative)
    followers = FollowerService(uow, clock)

    ours = (both.id, coop_fan.id)
    first = await followers.send_due_reminders(now)
    rerun = await followers.send_due_reminders(now)
    a_minute_later = await followers.send_due_reminders(now + timedelta(minutes=1))

    assert sorted((r.session_id, r.user_id) for r in first if r.user_id in ours) == sorted(
        [(soon.id, both.id), (coop_soon.id, coop_fan.id)]
    )
    assert not {r.session_id for r in first} & {later.id, draft.id, started.id}
    assert [r for r in rerun if r.user_id in ours] == []
    assert [(r.session_id, r.user_id) for r in a_minute_later if r.user_id in ours] == [
        (later.id, both.id)
    ]
    headers = await auth_headers(session, both)
    inbox = (await client.get("/api/follows/reminders", headers=headers)).json()
    assert {(r["session_id"], r["platform"]) for r in inbox} == {
        (str(soon.id), "tiktok"),
        (str(later.id), "tiktok"),
    }


async def test_the_beat_task_body_sends_what_is_due(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    redis: Redis,
    job_sender: RecordingSender,
) -> None:
    now = datetime.now(UTC)
    host = await create_host(session)
    household = await create_household(session)
    live = await _session_of(
        session, host, starts=now + timedelta(minutes=14), households=[household]
    )
    fan = await create_user(session, role=Role.BUYER)
    await _follow(session, fan, household=household)
    context = WorkerContext(
        settings=settings,
        sessionmaker=sessionmaker,
        redis=redis,
        job_sender=job_sender,
        clock=lambda: now,
    )

    sent = await send_session_reminders(context)
    again = await send_session_reminders(context)

    assert sent >= 1
    assert again == 0
    rows = await session.scalar(
        select(func.count()).select_from(Reminder).where(Reminder.session_id == live.id)
    )
    assert rows == 1


# --- Two sweeps at once, on real commits ------------------------------------------------------


@dataclass
class Crowd:
    session_id: uuid.UUID
    follower_ids: list[uuid.UUID]
    cleanup_user_ids: list[uuid.UUID]
    household_id: uuid.UUID


@pytest.fixture
async def crowd(engine: AsyncEngine) -> AsyncIterator[Crowd]:
    """A session starting in 10 minutes with 60 followers, committed; removed afterwards."""
    async with AsyncSession(engine, expire_on_commit=False) as session:
        host = await create_host(session)
        household = await create_household(session)
        live = await _session_of(
            session, host, starts=datetime.now(UTC) + timedelta(minutes=10), households=[household]
        )
        fans = [await create_user(session, role=Role.BUYER) for _ in range(60)]
        for fan in fans:
            await _follow(session, fan, household=household)
        reviewer = await session.scalar(
            select(HostVerification.reviewed_by_user_id).where(
                HostVerification.host_user_id == host.id
            )
        )
        await session.commit()
    assert reviewer is not None
    yield Crowd(
        live.id, [f.id for f in fans], [host.id, reviewer, *(f.id for f in fans)], household.id
    )
    async with AsyncSession(engine) as session:
        await session.execute(delete(LiveSession).where(LiveSession.id == live.id))
        await session.execute(
            delete(User).where(User.id.in_([host.id, reviewer, *(f.id for f in fans)]))
        )
        await session.execute(delete(Household).where(Household.id == household.id))
        await session.commit()


async def _sweep(engine: AsyncEngine, start: asyncio.Event) -> list[tuple[uuid.UUID, uuid.UUID]]:
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with UnitOfWork(maker, RecordingSender()) as uow:
        await start.wait()
        sent = await FollowerService(uow).send_due_reminders()
        await uow.commit()
    return [(r.session_id, r.user_id) for r in sent]


@pytest.mark.concurrency
async def test_two_sweeps_at_once_remind_each_follower_exactly_once(
    engine: AsyncEngine, crowd: Crowd
) -> None:
    start = asyncio.Event()
    runs = [asyncio.create_task(_sweep(engine, start)) for _ in range(2)]
    await asyncio.sleep(0.05)
    start.set()
    first, second = await asyncio.gather(*runs)

    ours_first = [user for session_id, user in first if session_id == crowd.session_id]
    ours_second = [user for session_id, user in second if session_id == crowd.session_id]
    assert sorted(ours_first + ours_second) == sorted(crowd.follower_ids)
    assert not set(ours_first) & set(ours_second)
    async with AsyncSession(engine) as session:
        rows = await session.scalar(
            select(func.count())
            .select_from(Reminder)
            .where(Reminder.session_id == crowd.session_id)
        )
    assert rows == 60

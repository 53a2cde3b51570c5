"""Sessions: a host's draft, scheduled only once the host is verified, then live and ended
(or cancelled), each move refusing an illegal one with a stable code."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.livestreams.models import LiveSession, SessionSeller
from tests.livestreams.conftest import MovableClock
from tests.livestreams.factories import RULES, Caller, caller, session_body
from tests.sellers.factories import create_cooperative, create_household

HOST_API = "/api/host/livestreams"


async def _draft(
    client: httpx.AsyncClient, host: Caller, household_id: uuid.UUID, **kw: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{HOST_API}/", json=session_body([household_id], **kw), headers=host.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _move(
    client: httpx.AsyncClient, host: Caller, session_id: object, action: str
) -> httpx.Response:
    return await client.post(f"{HOST_API}/{session_id}/{action}", headers=host.headers)


async def _sessions_of(session: AsyncSession, host: Caller) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(LiveSession)
            .where(LiveSession.host_user_id == host.user.id)
        )
        or 0
    )


async def test_a_host_creates_a_draft_that_the_public_cannot_see(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    host = await caller(session, Role.HOST)
    household = await create_household(session)

    draft = await _draft(client, host, household.id)

    assert draft["status"] == "draft"
    assert draft["household_ids"] == [str(household.id)]
    assert draft["hold_seconds"] == 900
    assert (await client.get(f"/api/livestreams/{draft['id']}")).status_code == 404
    listed = (await client.get("/api/livestreams/")).json()["items"]
    assert draft["id"] not in [s["id"] for s in listed]
    own = await client.get(f"{HOST_API}/{draft['id']}", headers=host.headers)
    assert own.status_code == 200


async def test_a_session_sells_for_one_cooperative(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    host = await caller(session, Role.HOST)
    cooperative = await create_cooperative(session)

    response = await client.post(
        f"{HOST_API}/",
        json=session_body(None, cooperative_id=str(cooperative.id)),
        headers=host.headers,
    )

    assert response.status_code == 201, response.text
    assert response.json()["cooperative_id"] == str(cooperative.id)
    assert response.json()["household_ids"] == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"start_in": timedelta(minutes=-5)}, "scheduled_start_at", id="in-the-past"),
        pytest.param(
            {"length": timedelta(minutes=-30)}, "scheduled_end_at", id="ends-before-start"
        ),
        pytest.param({"length": timedelta(0)}, "scheduled_end_at", id="ends-as-it-starts"),
        pytest.param({"length": timedelta(hours=13)}, "scheduled_end_at", id="longer-than-12h"),
        pytest.param(
            {"start_in": timedelta(days=400)}, "scheduled_start_at", id="over-a-year-ahead"
        ),
        pytest.param({"title": "   "}, "title", id="blank-title"),
        pytest.param({"title": "Chợ phiên\x00cam"}, "title", id="nul-in-title"),
        pytest.param({"title": "Chợ\x1b[31m phiên"}, "title", id="escape-in-title"),
        pytest.param({"hold_seconds": 30}, "hold_seconds", id="hold-too-short"),
        pytest.param({"hold_seconds": 3 * 3600}, "hold_seconds", id="hold-too-long"),
        pytest.param({"rules_text": "Quy định\x07"}, "rules_text", id="bell-in-rules"),
    ],
)
async def test_bad_session_input_is_a_problem_and_writes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, changes: dict[str, Any], field: str
) -> None:
    host = await caller(session, Role.HOST)
    household = await create_household(session)

    response = await client.post(
        f"{HOST_API}/", json=session_body([household.id], **changes), headers=host.headers
    )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "validation_failed"
    assert body["errors"][0]["field"] == field
    assert await _sessions_of(session, host) == 0


@pytest.mark.parametrize(
    ("sellers", "status", "code"),
    [
        pytest.param({"household_ids": []}, 422, "validation_failed", id="no-seller"),
        pytest.param("both", 422, "validation_failed", id="cooperative-and-households"),
        pytest.param(
            {"household_ids": [str(uuid.uuid4())]}, 404, "seller_not_found", id="unknown-household"
        ),
        pytest.param(
            {"cooperative_id": str(uuid.uuid4())}, 404, "seller_not_found", id="unknown-cooperative"
        ),
    ],
)
async def test_a_session_names_one_cooperative_or_existing_households(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sellers: dict[str, Any] | str,
    status: int,
    code: str,
) -> None:
    host = await caller(session, Role.HOST)
    if sellers == "both":
        household = await create_household(session)
        cooperative = await create_cooperative(session)
        sellers = {"household_ids": [str(household.id)], "cooperative_id": str(cooperative.id)}
    assert isinstance(sellers, dict)
    body = session_body(None)
    body.update(sellers)

    response = await client.post(f"{HOST_API}/", json=body, headers=host.headers)

    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert await _sessions_of(session, host) == 0
    assert (
        await session.scalar(
            select(func.count())
            .select_from(SessionSeller)
            .join(LiveSession, LiveSession.id == SessionSeller.session_id)
            .where(LiveSession.host_user_id == host.user.id)
        )
        == 0
    )


async def test_an_unverified_host_cannot_schedule_and_the_draft_stays_a_draft(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    host = await caller(session, Role.HOST, verified=False)
    household = await create_household(session)
    draft = await _draft(client, host, household.id)

    response = await _move(client, host, draft["id"], "schedule")

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "host_not_verified"
    again = await client.get(f"{HOST_API}/{draft['id']}", headers=host.headers)
    assert again.json()["status"] == "draft"


async def test_once_an_admin_approves_the_identity_the_host_can_schedule(
    client: httpx.AsyncClient, session: AsyncSession, clock: MovableClock
) -> None:
    host = await caller(session, Role.HOST, verified=False)
    admin = await caller(session, Role.ADMIN)
    household = await create_household(session)
    draft = await _draft(client, host, household.id, now=clock.now)
    submitted = await client.post(
        "/api/host/verification/",
        json={"document_kind": "citizen_id", "document_reference": "kyc/2026/cccd-079.jpg"},
        headers=host.headers,
    )
    assert submitted.status_code == 201, submitted.text

    approved = await client.post(
        f"/api/admin/livestreams/verifications/{submitted.json()['id']}/approve",
        json={"note": "CCCD khớp ảnh chân dung"},
        headers=admin.headers,
    )
    scheduled = await _move(client, host, draft["id"], "schedule")

    assert approved.status_code == 200, approved.text
    assert approved.json()["reviewed_by_user_id"] == str(admin.user.id)
    assert approved.json()["reviewed_at"] is not None
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["status"] == "scheduled"
    public = await client.get(f"/api/livestreams/{draft['id']}")
    assert public.status_code == 200
    assert public.json()["rules_text"] == RULES


async def test_a_session_goes_from_scheduled_to_live_to_ended(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    host = await caller(session, Role.HOST)
    household = await create_household(session)
    draft = await _draft(client, host, household.id)

    states = []
    for action in ("schedule", "go-live", "end"):
        response = await _move(client, host, draft["id"], action)
        assert response.status_code == 200, response.text
        states.append(response.json()["status"])

    assert states == ["scheduled", "live", "ended"]
    ended = (await client.get(f"{HOST_API}/{draft['id']}", headers=host.headers)).json()
    assert ended["started_at"] is not None
    assert ended["ended_at"] is not None


@pytest.mark.parametrize(
    ("moves", "action", "code"),
    [
        pytest.param([], "go-live", "session_not_scheduled", id="draft-cannot-go-live"),
        pytest.param([], "end", "session_not_live", id="draft-cannot-end"),
        pytest.param(["schedule"], "end", "session_not_live", id="scheduled-cannot-end"),
        pytest.param(["schedule"], "schedule", "session_not_draft", id="scheduled-twice"),
        pytest.param(
            ["schedule", "go-live"], "schedule", "session_not_draft", id="live-rescheduled"
        ),
        pytest.param(
            ["schedule", "go-live"], "cancel", "session_not_cancellable", id="live-cancelled"
        ),
        pytest.param(
            ["schedule", "go-live", "end"], "go-live", "session_not_scheduled", id="ended-restarted"
        ),
        pytest.param(["cancel"], "schedule", "session_not_draft", id="cancelled-scheduled"),
    ],
)
async def test_an_illegal_move_is_refused_with_its_code(
    client: httpx.AsyncClient, session: AsyncSession, moves: list[str], action: str, code: str
) -> None:
    host = await caller(session, Role.HOST)
    household = await create_household(session)
    draft = await _draft(client, host, household.id)
    for move in moves:
        assert (await _move(client, host, draft["id"], move)).status_code == 200
    before = (await client.get(f"{HOST_API}/{draft['id']}", headers=host.headers)).json()

    response = await _move(client, host, draft["id"], action)

    assert response.status_code == 409
    assert response.json()["code"] == code
    after = (await client.get(f"{HOST_API}/{draft['id']}", headers=host.headers)).json()
    assert after["status"] == before["status"]


@pytest.mark.parametrize("moves", [[], ["schedule"]], ids=["from-draft", "from-scheduled"])
async def test_a_draft_or_scheduled_session_can_be_cancelled(
    client: httpx.AsyncClient, session: AsyncSession, moves: list[str]
) -> None:
    host = await caller(session, Role.HOST)
    household = await create_household(session)
    draft = await _draft(client, host, household.id)
    for move in moves:
        assert (await _move(client, host, draft["id"], move)).status_code == 200

    response = await _move(client, host, draft["id"], "cancel")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancelled_at"] is not None


async def test_a_session_whose_start_has_passed_cannot_be_scheduled(
    client: httpx.AsyncClient, session: AsyncSession, clock: MovableClock
) -> None:
    host = await caller(session, Role.HOST)
    household = await create_household(session)
    draft = await _draft(client, host, household.id, now=clock.now, start_in=timedelta(minutes=30))
    clock.advance(minutes=31)

    response = await _move(client, host, draft["id"], "schedule")

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "scheduled_start_at"


async def test_rules_must_be_published_before_a_session_is_scheduled(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    host = await caller(session, Role.HOST)
    household = await create_household(session)
    draft = await _draft(client, host, household.id, rules_text="")

    response = await _move(client, host, draft["id"], "schedule")

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "rules_text"


async def test_a_host_changes_a_draft_but_not_a_live_session(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    host = await caller(session, Role.HOST)
    household = await create_household(session)
    draft = await _draft(client, host, household.id)

    renamed = await client.patch(
        f"{HOST_API}/{draft['id']}",
        json={"title": "Bưởi da xanh phiên tối", "hold_seconds": 600},
        headers=host.headers,
    )
    await _move(client, host, draft["id"], "schedule")
    await _move(client, host, draft["id"], "go-live")
    refused = await client.patch(
        f"{HOST_API}/{draft['id']}", json={"title": "Đổi tên"}, headers=host.headers
    )

    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["title"], renamed.json()["hold_seconds"]) == (
        "Bưởi da xanh phiên tối",
        600,
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "session_not_editable"


async def test_another_hosts_session_is_not_found_but_an_admin_manages_it(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    host = await caller(session, Role.HOST)
    other = await caller(session, Role.HOST)
    admin = await caller(session, Role.ADMIN)
    household = await create_household(session)
    draft = await _draft(client, host, household.id)

    peek = await client.get(f"{HOST_API}/{draft['id']}", headers=other.headers)
    meddle = await _move(client, other, draft["id"], "schedule")
    admin_read = await client.get(f"{HOST_API}/{draft['id']}", headers=admin.headers)
    admin_cancel = await _move(client, admin, draft["id"], "cancel")

    assert (peek.status_code, peek.json()["code"]) == (404, "session_not_found")
    assert (meddle.status_code, meddle.json()["code"]) == (404, "session_not_found")
    assert admin_read.status_code == 200
    assert admin_cancel.json()["status"] == "cancelled"


async def test_only_hosts_create_sessions(client: httpx.AsyncClient, session: AsyncSession) -> None:
    buyer = await caller(session, Role.BUYER)
    admin = await caller(session, Role.ADMIN)
    household = await create_household(session)

    as_buyer = await client.post(
        f"{HOST_API}/", json=session_body([household.id]), headers=buyer.headers
    )
    as_admin = await client.post(
        f"{HOST_API}/", json=session_body([household.id]), headers=admin.headers
    )
    anonymous = await client.post(f"{HOST_API}/", json=session_body([household.id]))

    assert as_buyer.status_code == 403
    assert as_admin.status_code == 403
    assert anonymous.status_code == 401


async def test_the_public_list_shows_announced_sessions_soonest_first(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    host = await caller(session, Role.HOST)
    household = await create_household(session)
    later = await _draft(client, host, household.id, start_in=timedelta(hours=5))
    sooner = await _draft(client, host, household.id, start_in=timedelta(hours=2))
    hidden = await _draft(client, host, household.id, start_in=timedelta(hours=3))
    for draft in (later, sooner):
        await _move(client, host, draft["id"], "schedule")

    listed = (await client.get("/api/livestreams/", params={"limit": 200})).json()["items"]
    ids = [s["id"] for s in listed]

    assert hidden["id"] not in ids
    assert ids.index(sooner["id"]) < ids.index(later["id"])

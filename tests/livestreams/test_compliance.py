"""What the 2025 Law on E-commerce asks: hosts verified by an admin (who and when kept),
complaints taken during and after a session and answered by admins."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.livestreams.models import Complaint, HostVerification
from tests.livestreams.factories import Caller, caller, live_world, session_body
from tests.sellers.factories import create_household

VERIFY = "/api/host/verification/"
ADMIN = "/api/admin/livestreams"
DOCUMENT = {"document_kind": "citizen_id", "document_reference": "kyc/2026/11/cccd-mat-truoc.jpg"}


async def _submit(client: httpx.AsyncClient, host: Caller, **changes: Any) -> httpx.Response:
    return await client.post(VERIFY, json={**DOCUMENT, **changes}, headers=host.headers)


async def test_a_host_submits_a_document_and_sees_it_waiting(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    host = await caller(session, Role.HOST, verified=False)

    submitted = await _submit(client, host)
    status = await client.get(VERIFY, headers=host.headers)

    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["status"] == "submitted"
    assert status.json()["verified"] is False
    assert status.json()["latest"]["id"] == submitted.json()["id"]


async def test_one_submission_waits_at_a_time(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    host = await caller(session, Role.HOST, verified=False)
    await _submit(client, host)

    second = await _submit(client, host, document_kind="passport")

    assert (second.status_code, second.json()["code"]) == (409, "verification_pending")
    count = await session.scalar(
        select(func.count())
        .select_from(HostVerification)
        .where(HostVerification.host_user_id == host.user.id)
    )
    assert count == 1


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"document_reference": ""}, id="no-reference"),
        pytest.param({"document_reference": "kyc/\x00.jpg"}, id="nul-byte"),
        pytest.param({"document_kind": "driving_licence"}, id="unknown-kind"),
    ],
)
async def test_a_bad_submission_is_a_problem(
    client: httpx.AsyncClient, session: AsyncSession, changes: dict[str, str]
) -> None:
    host = await caller(session, Role.HOST, verified=False)

    response = await _submit(client, host, **changes)

    assert response.status_code in (400, 422)
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_admin_rejects_saying_why_and_the_host_may_submit_again(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    host = await caller(session, Role.HOST, verified=False)
    admin = await caller(session, Role.ADMIN)
    first = (await _submit(client, host)).json()

    silent = await client.post(
        f"{ADMIN}/verifications/{first['id']}/reject", json={"note": ""}, headers=admin.headers
    )
    rejected = await client.post(
        f"{ADMIN}/verifications/{first['id']}/reject",
        json={"note": "Ảnh CCCD bị mờ, chụp lại giúp"},
        headers=admin.headers,
    )
    twice = await client.post(
        f"{ADMIN}/verifications/{first['id']}/approve", json={}, headers=admin.headers
    )
    again = await _submit(client, host)

    assert silent.status_code == 422
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["reviewed_by_user_id"] == str(admin.user.id)
    assert (twice.status_code, twice.json()["code"]) == (409, "verification_already_reviewed")
    assert again.status_code == 201


async def test_admins_list_the_submissions_waiting_for_review(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    host = await caller(session, Role.HOST, verified=False)
    admin = await caller(session, Role.ADMIN)
    submitted = (await _submit(client, host)).json()

    waiting = await client.get(
        f"{ADMIN}/verifications",
        params={"status": "submitted", "limit": 200},
        headers=admin.headers,
    )
    as_host = await client.get(f"{ADMIN}/verifications", headers=host.headers)

    assert submitted["id"] in [v["id"] for v in waiting.json()["items"]]
    assert as_host.status_code == 403


async def test_a_verified_host_has_nothing_to_submit(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    host = await caller(session, Role.HOST)

    response = await _submit(client, host)

    assert (response.status_code, response.json()["code"]) == (409, "host_already_verified")


async def test_complaints_open_when_the_session_goes_live_and_stay_open_after(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session, go_live=False)
    buyer = await caller(session, Role.BUYER)
    url = f"/api/livestreams/{world.session_id}/complaints"
    body = {"body": "Shop báo giá 99.000đ trên live nhưng đơn lại tính 150.000đ."}

    before = await client.post(url, json=body, headers=buyer.headers)
    await client.post(
        f"/api/host/livestreams/{world.session_id}/go-live", headers=world.host.headers
    )
    during = await client.post(url, json=body, headers=buyer.headers)
    await client.post(f"/api/host/livestreams/{world.session_id}/end", headers=world.host.headers)
    after = await client.post(url, json=body, headers=buyer.headers)
    anonymous = await client.post(url, json=body)

    assert (before.status_code, before.json()["code"]) == (409, "complaints_not_open")
    assert (during.status_code, after.status_code) == (201, 201)
    assert anonymous.status_code == 401
    mine = (await client.get("/api/livestreams/complaints/mine", headers=buyer.headers)).json()
    assert mine["total"] == 2


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("x" * 5_001, id="too-long"),
        pytest.param("bad\x00", id="nul"),
    ],
)
async def test_a_bad_complaint_is_a_problem_and_stores_nothing(
    client: httpx.AsyncClient, session: AsyncSession, text: str
) -> None:
    world = await live_world(client, session)
    buyer = await caller(session, Role.BUYER)

    response = await client.post(
        f"/api/livestreams/{world.session_id}/complaints",
        json={"body": text},
        headers=buyer.headers,
    )

    assert response.status_code == 422
    count = await session.scalar(
        select(func.count()).select_from(Complaint).where(Complaint.session_id == world.session_id)
    )
    assert count == 0


async def test_an_admin_answers_and_closes_a_complaint(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    buyer = await caller(session, Role.BUYER)
    admin = await caller(session, Role.ADMIN)
    filed = (
        await client.post(
            f"/api/livestreams/{world.session_id}/complaints",
            json={"body": "Hàng giao thiếu 1 hộp."},
            headers=buyer.headers,
        )
    ).json()

    listed = await client.get(
        f"{ADMIN}/complaints", params={"session_id": world.session_id}, headers=admin.headers
    )
    answered = await client.post(
        f"{ADMIN}/complaints/{filed['id']}/answer",
        json={"answer": "Đã liên hệ hộ bán gửi bù."},
        headers=admin.headers,
    )
    closed = await client.post(f"{ADMIN}/complaints/{filed['id']}/close", headers=admin.headers)
    late = await client.post(
        f"{ADMIN}/complaints/{filed['id']}/answer", json={"answer": "..."}, headers=admin.headers
    )
    by_buyer = await client.get(f"{ADMIN}/complaints", headers=buyer.headers)

    assert [c["id"] for c in listed.json()["items"]] == [filed["id"]]
    assert (answered.json()["status"], answered.json()["answered_by_user_id"]) == (
        "answered",
        str(admin.user.id),
    )
    assert closed.json()["status"] == "closed"
    assert closed.json()["closed_at"] is not None
    assert (late.status_code, late.json()["code"]) == (409, "complaint_closed")
    assert by_buyer.status_code == 403


async def test_a_draft_is_not_there_to_complain_about(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    host = await caller(session, Role.HOST)
    buyer = await caller(session, Role.BUYER)
    household = await create_household(session)
    draft = (
        await client.post(
            "/api/host/livestreams/", json=session_body([household.id]), headers=host.headers
        )
    ).json()

    response = await client.post(
        f"/api/livestreams/{draft['id']}/complaints", json={"body": "?"}, headers=buyer.headers
    )

    assert response.status_code == 404

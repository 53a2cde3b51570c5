"""Each sellers route declares exactly the roles below, and its guard refuses every other
role with 403 before any object is looked at."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from litestar import Litestar

from marketplace.accounts.guards import route_table
from marketplace.accounts.models import Role
from tests.sellers.factories import MakeCaller

ADM, OFF, FAR, HEL, MAN = (
    Role.ADMIN,
    Role.OFFICIAL,
    Role.FARMER,
    Role.HELPER,
    Role.COOPERATIVE_MANAGER,
)
PUBLIC = "public"

HOUSEHOLD = "/api/households/{household_id:uuid}"
COOP = "/api/cooperatives/{cooperative_id:uuid}"
EXPECTED: dict[tuple[str, str], frozenset[Role] | str] = {
    ("POST", "/api/households"): frozenset({ADM, OFF}),
    ("GET", "/api/households"): frozenset({ADM, OFF}),
    ("GET", "/api/households/mine"): frozenset({FAR, HEL}),
    ("GET", HOUSEHOLD): frozenset({ADM, OFF, FAR, HEL, MAN}),
    ("PATCH", HOUSEHOLD): frozenset({ADM, OFF, FAR, HEL}),
    ("POST", f"{HOUSEHOLD}/reviews"): frozenset({OFF}),
    ("GET", f"{HOUSEHOLD}/status"): frozenset({ADM, OFF, FAR, HEL, MAN}),
    ("GET", f"{HOUSEHOLD}/status-history"): frozenset({ADM, OFF, FAR, HEL, MAN}),
    ("POST", f"{HOUSEHOLD}/consents"): frozenset({ADM, OFF, FAR}),
    ("GET", f"{HOUSEHOLD}/consents"): frozenset({ADM, OFF, FAR, HEL}),
    ("POST", f"{HOUSEHOLD}/consents/{{consent_id:uuid}}/revoke"): frozenset({ADM, OFF, FAR, HEL}),
    ("GET", f"{HOUSEHOLD}/helper-actions"): frozenset({ADM, OFF, FAR}),
    ("POST", "/api/cooperatives"): frozenset({ADM, OFF}),
    ("GET", "/api/cooperatives"): PUBLIC,
    ("GET", "/api/cooperatives/mine"): frozenset({MAN}),
    ("GET", COOP): PUBLIC,
    ("POST", f"{COOP}/managers"): frozenset({ADM}),
    ("GET", f"{COOP}/managers"): frozenset({ADM}),
    ("DELETE", f"{COOP}/managers/{{user_id:uuid}}"): frozenset({ADM}),
    ("POST", f"{COOP}/members"): frozenset({ADM, MAN}),
    ("POST", f"{COOP}/members/{{member_id:uuid}}/leave"): frozenset({ADM, MAN}),
    ("GET", f"{COOP}/members"): frozenset({ADM, MAN, OFF}),
}
GUARDED = {key: roles for key, roles in EXPECTED.items() if isinstance(roles, frozenset)}

_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


def concrete(path: str) -> str:
    return _PARAM.sub(lambda m: str(uuid.uuid4()) if m.group(2) == "uuid" else "x", path)


def test_every_sellers_route_declares_the_expected_access(app: Litestar) -> None:
    declared: dict[tuple[str, str], frozenset[Role] | str] = {}
    for entry in route_table(app):
        if not entry.path.startswith(("/api/households", "/api/cooperatives")):
            continue
        assert entry.declaration is not None
        for method in entry.methods - {"HEAD", "OPTIONS"}:
            declared[(method, entry.path)] = (
                PUBLIC if entry.declaration.public else entry.declaration.roles
            )

    assert declared == EXPECTED


@pytest.mark.parametrize("role", list(Role), ids=str)
async def test_each_role_is_let_through_or_refused_by_the_guards_as_declared(
    client: httpx.AsyncClient, caller: MakeCaller, role: Role
) -> None:
    who = await caller(role)
    outcomes: dict[str, tuple[bool, bool]] = {}

    for (method, path), roles in GUARDED.items():
        response = await client.request(method, concrete(path), headers=who.headers, json={})
        refused_by_guard = response.status_code == 403 and response.json()["detail"].startswith(
            "this route is for"
        )
        outcomes[f"{method} {path}"] = (role in roles, not refused_by_guard)

    wrong = {route: allowed for route, (allowed, passed) in outcomes.items() if allowed != passed}
    assert wrong == {}, f"{role}: guard outcome differs from the declaration: {wrong}"


@pytest.mark.parametrize(
    "path", ["/api/cooperatives", f"/api/cooperatives/{uuid.uuid4()}"], ids=["list", "one"]
)
async def test_public_cooperative_reads_need_no_token(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)

    assert response.status_code in {200, 404}
    assert response.status_code != 401

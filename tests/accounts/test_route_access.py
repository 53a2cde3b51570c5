"""Every route of the app declares who may call it, and an anonymous caller gets exactly
what the declaration says: the start of the authorization matrix."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from litestar import Controller, Litestar, get

from marketplace.accounts.guards import RouteAccess, allow, route_table
from marketplace.accounts.models import Role
from marketplace.app import create_app
from marketplace.settings import Settings

_PATH_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
SYSTEM_PATHS = ("/health", "/ready", "/metrics", "/schema")


def concrete_path(path: str) -> str:
    """A request path for a route pattern (ids that exist nowhere, which is fine here)."""

    def value(match: re.Match[str]) -> str:
        kind = match.group(2) or "str"
        return {"uuid": str(uuid.uuid4()), "int": "1"}.get(kind, "x")

    return _PATH_PARAM.sub(value, path)


def describe(entry: RouteAccess) -> str:
    return f"{','.join(sorted(entry.methods))} {entry.path}"


def test_every_route_declares_public_access_or_a_role_guard(settings: Settings) -> None:
    table = route_table(create_app(settings, skip_logging_setup=True))

    undeclared = [describe(e) for e in table if e.declaration is None]
    contradictory = [
        describe(e) for e in table if e.declaration and e.declaration.public and e.declaration.roles
    ]
    assert table
    assert undeclared == [], f"routes without an access declaration: {undeclared}"
    assert contradictory == [], f"routes both public and guarded: {contradictory}"


def test_the_route_table_check_catches_a_route_without_a_declaration() -> None:
    @get("/forgotten", sync_to_thread=False)
    def forgotten() -> str:
        return "oops"

    table = route_table(Litestar(route_handlers=[forgotten]))

    assert [e.declaration for e in table if e.path == "/forgotten"] == [None]


def test_a_controller_guard_covers_its_handlers_and_layers_intersect() -> None:
    class Reports(Controller):
        path = "/reports"
        guards = [allow(Role.OFFICIAL, Role.ADMIN)]

        @get("/", guards=[allow(Role.ADMIN)], sync_to_thread=False)
        def everything(self) -> str:
            return ""

        @get("/mine", sync_to_thread=False)
        def mine(self) -> str:
            return ""

    table = {e.path: e.declaration for e in route_table(Litestar(route_handlers=[Reports]))}

    assert table["/reports"] is not None
    assert table["/reports"].roles == frozenset({Role.ADMIN})
    assert table["/reports/mine"] is not None
    assert table["/reports/mine"].roles == frozenset({Role.OFFICIAL, Role.ADMIN})


def test_system_routes_are_public_and_admin_routes_admin_only(settings: Settings) -> None:
    table = route_table(create_app(settings, skip_logging_setup=True))

    for entry in table:
        assert entry.declaration is not None
        if entry.path.startswith(SYSTEM_PATHS):
            assert entry.declaration.public, describe(entry)
        if entry.path.startswith("/api/admin/"):
            assert entry.declaration.roles == frozenset({Role.ADMIN}), describe(entry)
    [me] = [e.declaration for e in table if e.path == "/api/auth/me"]
    assert me is not None
    assert me.roles == frozenset(Role)


async def test_every_guarded_route_refuses_an_anonymous_caller(
    app: Litestar, client: httpx.AsyncClient
) -> None:
    guarded = [e for e in route_table(app) if e.declaration and not e.declaration.public]
    assert guarded

    refused = {}
    for entry in guarded:
        for method in sorted(entry.methods - {"HEAD"}):
            if method in {"websocket", "asgi"}:
                continue
            response = await client.request(method, concrete_path(entry.path))
            refused[f"{method} {entry.path}"] = (response.status_code, response.json()["code"])

    assert set(refused.values()) == {(401, "not_authenticated")}, refused


@pytest.mark.parametrize("path", ["/health", "/metrics", "/schema/openapi.json"])
async def test_public_system_routes_answer_without_a_token(
    client: httpx.AsyncClient, path: str
) -> None:
    assert (await client.get(path)).status_code == 200

"""Password hashes, passwords and tokens never leave in a response or a log line (only the
login response carries its own new token)."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.testing import capture_logs

from marketplace.accounts.models import ApiToken, Role, User
from tests.accounts.factories import DEFAULT_PASSWORD, auth_headers, create_user, unique_login


async def test_no_response_or_log_line_carries_a_hash_a_password_or_a_token(
    session: AsyncSession, client: httpx.AsyncClient, login_client: httpx.AsyncClient
) -> None:
    admin = await create_user(session, role=Role.ADMIN)
    admin_headers = await auth_headers(session, admin)
    farmer = await create_user(session, role=Role.FARMER)
    new_password = "mat-khau-nguoi-mua-moi"
    new_login = unique_login()
    bodies: list[str] = []

    with capture_logs() as logs:
        login = await login_client.post(
            "/api/auth/login", json={"login": farmer.login, "password": DEFAULT_PASSWORD}
        )
        token = login.json()["token"]
        farmer_headers = {"Authorization": f"Bearer {token}"}
        await login_client.post(
            "/api/auth/login", json={"login": farmer.login, "password": "sai-mat-khau-roi"}
        )
        responses = [
            await client.post(
                "/api/auth/register",
                json={"login": new_login, "password": new_password, "display_name": "Ngô Thị Mai"},
            ),
            await client.get("/api/auth/me", headers=farmer_headers),
            await client.get("/api/admin/users", headers=admin_headers),
            await client.post(
                "/api/admin/users",
                headers=admin_headers,
                json={
                    "login": unique_login(),
                    "password": new_password,
                    "display_name": "Trương Văn Sơn",
                    "role": "host",
                },
            ),
            await client.post(f"/api/admin/users/{farmer.id}/deactivate", headers=admin_headers),
            await client.get("/api/auth/me", headers=farmer_headers),
            await client.post("/api/auth/logout", headers=admin_headers),
        ]
        bodies = [r.text for r in responses]

    assert [r.status_code for r in responses] == [201, 200, 200, 201, 200, 401, 204]
    hashes = (await session.scalars(select(User.password_hash))).all()
    digests = (await session.scalars(select(ApiToken.token_hash))).all()
    secrets = [*hashes, *digests, token, admin_headers["Authorization"][7:]]
    secrets += [DEFAULT_PASSWORD, new_password, "sai-mat-khau-roi"]
    logged = json.dumps(logs, default=str)
    for secret in secrets:
        assert all(secret not in body for body in bodies), "a secret in a response"
        assert secret not in logged, "a secret in the logs"
    assert all("$argon2" not in body for body in [*bodies, login.text])
    assert "password" not in login.json()["user"]
    assert logs, "the flow logs something, so the log check is not vacuous"

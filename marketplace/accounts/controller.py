"""HTTP endpoints for logging in and out, self-service sign-up and account administration."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from marketplace.accounts.guards import allow, authenticated, public
from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.accounts.schemas import (
    RegistrationCreate,
    TokenCreate,
    TokenRead,
    UserCreate,
    UserPage,
    UserRead,
    user_read,
)
from marketplace.accounts.service import MAX_PAGE, AccountService
from marketplace.db import BIGINT_MAX
from marketplace.resources import Resources
from marketplace.unit_of_work import UnitOfWork

BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}]
"""OpenAPI security requirement of guarded routes (scheme declared in create_app)."""


async def provide_account_service(
    uow: NamedDependency[UnitOfWork], resources: NamedDependency[Resources]
) -> AccountService:
    return AccountService(uow, resources.settings, resources.redis, resources.clock)


def client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]
    dependencies = {"accounts": Provide(provide_account_service)}

    @post("/login", status_code=HTTP_200_OK, opt=public(), summary="Log in for a bearer token")
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[TokenCreate],
        accounts: NamedDependency[AccountService],
    ) -> TokenRead:
        issued = await accounts.log_in(data.login, data.password, client_ip(request))
        return TokenRead(
            token=issued.token, expires_at=issued.expires_at, user=user_read(issued.user)
        )

    @post("/register", opt=public(), summary="Create a buyer account")
    async def register(
        self, data: JSONBody[RegistrationCreate], accounts: NamedDependency[AccountService]
    ) -> UserRead:
        user = await accounts.register_buyer(
            login=data.login,
            password=data.password,
            display_name=data.display_name,
            phone=data.phone,
        )
        return user_read(user)

    @get("/me", guards=[authenticated()], security=BEARER, summary="The logged-in account")
    async def me(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        accounts: NamedDependency[AccountService],
    ) -> UserRead:
        return user_read(await accounts.get_user(current_user.id))

    @post(
        "/logout",
        status_code=HTTP_204_NO_CONTENT,
        guards=[authenticated()],
        security=BEARER,
        summary="Revoke the token of this request",
    )
    async def logout(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        accounts: NamedDependency[AccountService],
    ) -> None:
        await accounts.revoke_token(current_user.token_id)

    @post(
        "/logout-all",
        status_code=HTTP_204_NO_CONTENT,
        guards=[authenticated()],
        security=BEARER,
        summary="Revoke every token of this account",
    )
    async def logout_all(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        accounts: NamedDependency[AccountService],
    ) -> None:
        await accounts.revoke_all(current_user.id)


class AdminUserController(Controller):
    path = "/api/admin/users"
    tags = ["admin"]
    guards = [allow(Role.ADMIN)]
    security = BEARER
    dependencies = {"accounts": Provide(provide_account_service)}

    @post("/", summary="Create an account of any role")
    async def create_user(
        self, data: JSONBody[UserCreate], accounts: NamedDependency[AccountService]
    ) -> UserRead:
        user = await accounts.create_user(
            login=data.login,
            password=data.password,
            display_name=data.display_name,
            role=data.role,
            phone=data.phone,
            jurisdiction_level=data.jurisdiction_level,
            jurisdiction_code=data.jurisdiction_code,
        )
        return user_read(user)

    @get("/", summary="Accounts, oldest first")
    async def list_users(
        self,
        accounts: NamedDependency[AccountService],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, QueryParameter(ge=0, le=BIGINT_MAX)] = 0,
        role: FromQuery[Role | None] = None,
    ) -> UserPage:
        users, total = await accounts.list_users(limit=limit, offset=offset, role=role)
        return UserPage(
            items=[user_read(u) for u in users], total=total, limit=limit, offset=offset
        )

    @post(
        "/{user_id:uuid}/deactivate",
        status_code=HTTP_200_OK,
        summary="Deactivate an account and revoke its tokens",
    )
    async def deactivate(
        self,
        user_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        accounts: NamedDependency[AccountService],
    ) -> UserRead:
        return user_read(await accounts.deactivate(user_id, by=current_user))

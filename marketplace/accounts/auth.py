"""Bearer-token authentication for every route that is not public.

Runs after routing, so it knows the route: public routes are passed through untouched
(no token lookup, no I/O). On every other route a bearer token is resolved in one short
session of its own, and a bad token is refused here with `invalid_token`, before any guard
or handler runs. A request without credentials is refused here too, so a route whose guard
was forgotten still never serves an anonymous caller. Nothing is cached in the process:
revocation takes effect on the next request.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Receive, Scope, Send

from marketplace.accounts.credentials import bearer_token
from marketplace.accounts.errors import InvalidToken
from marketplace.accounts.guards import current_user, is_public
from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.service import AccountService
from marketplace.errors import NotAuthenticated
from marketplace.resources import Resources
from marketplace.unit_of_work import UnitOfWork


class BearerAuthenticationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope["user"] = None
        scope["auth"] = None
        handler = scope.get("route_handler")
        if handler is None or not is_public(handler):
            user = await self._authenticate(scope)
            scope["user"] = user
            scope["auth"] = user.token_id
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> AuthenticatedUser:
        authorization = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        if authorization is None:
            raise NotAuthenticated()
        token = bearer_token(authorization)
        if token is None:
            raise InvalidToken("the Authorization header must be `Bearer <token>`")
        resources: Resources = Litestar.from_scope(scope).state["resources"]
        async with UnitOfWork(resources.sessionmaker, resources.job_sender) as uow:
            service = AccountService(uow, resources.settings, resources.redis, resources.clock)
            user = await service.resolve_token(token)
            await uow.commit()
        return user


async def provide_current_user(scope: Scope) -> AuthenticatedUser:
    """Dependency `current_user` for handlers of guarded routes (HTTP and WebSocket)."""
    return current_user(ASGIConnection[Any, Any, Any, Any](scope))

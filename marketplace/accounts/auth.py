"""Bearer-token authentication for every route that is not public.

Runs after routing, so it knows the route: public routes are passed through untouched
(no token lookup, no I/O). On every other route a bearer token is read from the database
(together with the other requests waiting at that moment: token_lookups.py), and a bad
token is refused here with `invalid_token`, before any guard or handler runs. A request
without credentials is refused here too, so a route whose guard was forgotten still never
serves an anonymous caller. Nothing is cached in the process: revocation takes effect on
the next request. A WebSocket from a browser, which cannot send an Authorization header,
offers its token as the subprotocols `bearer, <token>` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from marketplace.accounts.credentials import (
    WEBSOCKET_SUBPROTOCOL,
    bearer_token,
    token_digest,
    websocket_bearer_token,
)
from marketplace.accounts.errors import InvalidToken
from marketplace.accounts.guards import current_user, is_public
from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.service import AccountService, authenticated
from marketplace.accounts.token_lookups import token_lookups
from marketplace.accounts.token_uses import token_uses
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
        if _offers_bearer_subprotocol(scope):
            send = _answering_bearer(send)
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
        if authorization is not None:
            token = bearer_token(authorization)
            if token is None:
                raise InvalidToken("the Authorization header must be `Bearer <token>`")
        elif _offers_bearer_subprotocol(scope):
            token = websocket_bearer_token(_subprotocols(scope))
            if token is None:
                raise InvalidToken("the WebSocket subprotocols must be `bearer, <token>`")
        else:
            raise NotAuthenticated()
        resources: Resources = Litestar.from_scope(scope).state["resources"]
        if resources.engine is None:
            # Tests hand in a sessionmaker bound to their transaction, and no engine.
            async with UnitOfWork(resources.sessionmaker, resources.job_sender) as uow:
                service = AccountService(uow, resources.settings, resources.redis, resources.clock)
                user = await service.resolve_token(token)
                await uow.commit()
            return user
        # Read with the token checks of the requests waiting at the same moment, in one
        # statement with no BEGIN/COMMIT and no session (token_lookups.py); last-use times
        # are written later, many at once (token_uses.py).
        found = await token_lookups(resources).owner(token_digest(token))
        return authenticated(found, resources.clock(), token_uses(resources))


def _subprotocols(scope: Scope) -> Sequence[str]:
    if scope["type"] == ScopeType.WEBSOCKET:
        return scope.get("subprotocols", [])
    return []


def _offers_bearer_subprotocol(scope: Scope) -> bool:
    """A browser's WebSocket carries its token as a subprotocol (see `credentials`)."""
    return WEBSOCKET_SUBPROTOCOL in _subprotocols(scope)


def _answering_bearer(send: Send) -> Send:
    """A browser that offered subprotocols fails the handshake unless the server picks one:
    answer `bearer` for every handler, none of which names a subprotocol itself."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "websocket.accept" and not message.get("subprotocol"):
            message["subprotocol"] = WEBSOCKET_SUBPROTOCOL
        await send(message)

    return wrapped


async def provide_current_user(scope: Scope) -> AuthenticatedUser:
    """Dependency `current_user` for handlers of guarded routes (HTTP and WebSocket)."""
    return current_user(ASGIConnection[Any, Any, Any, Any](scope))

"""Every route declares who may call it: public, or a role guard.

The declaration is data, not just behaviour: `route_table(app)` reads it back for every
route (`declared_access(handler)` for one) so a test can refuse any route that declares
nothing and call each route as each role to compare the outcome with the declaration.
Roles are explicit: `allow(Role.FARMER)` does not let admins in unless it names them.

    @get("/provinces", opt=public())                    # anyone, no token looked at
    @get("/me", guards=[authenticated()])               # any logged-in account
    class AdminUsers(Controller): guards = [allow(Role.ADMIN)]

A guard on a controller or router covers all its handlers; several role guards on the
layers of one handler must all pass, so the roles allowed are their intersection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.handlers.http_handlers import HTTPRouteHandler

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import JurisdictionLevel, Role
from marketplace.errors import NotAuthenticated, PermissionDenied

PUBLIC_KEY = "public"
"""`opt` key marking a route public; `opt={"public": True}` and `opt=public()` are the same."""


def public() -> dict[str, Any]:
    """`opt` for a route anyone may call; the authentication middleware skips it entirely."""
    return {PUBLIC_KEY: True}


@dataclass(frozen=True, slots=True)
class RoleGuard:
    """Refuses anonymous callers (401) and callers of any role not in `roles` (403)."""

    roles: frozenset[Role]
    name: str

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        user = connection.scope.get("user")
        if not isinstance(user, AuthenticatedUser):
            raise NotAuthenticated()
        if user.role not in self.roles:
            raise PermissionDenied(f"this route is for: {self.name}")


def allow(*roles: Role) -> RoleGuard:
    if not roles:
        raise ValueError("allow() needs at least one role; use public() for everyone")
    return RoleGuard(roles=frozenset(roles), name=", ".join(sorted(role.value for role in roles)))


def authenticated() -> RoleGuard:
    return RoleGuard(roles=frozenset(Role), name="any logged-in account")


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticatedUser:
    """The caller of a guarded route (the guard has already refused anonymous callers)."""
    user = connection.scope.get("user")
    if not isinstance(user, AuthenticatedUser):
        raise NotAuthenticated()
    return user


@dataclass(frozen=True, slots=True)
class AccessDeclaration:
    public: bool
    roles: frozenset[Role]
    """Roles a role guard lets through; empty for a public route."""


def is_public(handler: BaseRouteHandler) -> bool:
    """Public when any layer (handler, controller, router) carries the marker."""
    return any((layer.opt or {}).get(PUBLIC_KEY) for layer in handler.ownership_layers)


def is_generated_options(handler: BaseRouteHandler) -> bool:
    """Litestar adds an OPTIONS handler to every path (answering only `Allow`); it takes
    the access of its path's layers and declares nothing of its own. CORS preflights are
    answered before routing and never reach it."""
    return isinstance(handler, HTTPRouteHandler) and handler.http_methods == {"OPTIONS"}


def declared_access(handler: BaseRouteHandler) -> AccessDeclaration | None:
    """What a route handler declares, read from every layer that owns it; None when it
    declares nothing (a route the route-table test refuses)."""
    guards = [
        guard
        for layer in handler.ownership_layers
        for guard in (layer.guards or [])
        if isinstance(guard, RoleGuard)
    ]
    public_route = is_public(handler)
    if not guards and not public_route:
        return None
    roles = frozenset(Role) if guards else frozenset()
    for guard in guards:
        roles &= guard.roles
    return AccessDeclaration(public=public_route, roles=roles)


@dataclass(frozen=True, slots=True)
class RouteAccess:
    path: str
    methods: frozenset[str]
    handler: BaseRouteHandler
    declaration: AccessDeclaration | None


def route_table(app: Litestar) -> list[RouteAccess]:
    """Every route handler of the app (generated OPTIONS handlers aside) with what it
    declares: the source of the authorization matrix."""
    table = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if is_generated_options(handler):
                continue
            methods = getattr(handler, "http_methods", None) or {route.scope_type.value}
            table.append(
                RouteAccess(
                    path=route.path,
                    methods=frozenset(methods),
                    handler=handler,
                    declaration=declared_access(handler),
                )
            )
    return table


def ensure_jurisdiction(
    user: AuthenticatedUser, *, commune_code: str | None, province_code: str
) -> None:
    """Officials see only their own commune or province; admins see everything.

    A commune official matches on the commune alone (commune codes are national); data not
    tied to one commune (`commune_code=None`) is beyond a commune official's reach. Codes
    are compared as the geo tables store them. Every other role is refused: households'
    own, helpers' and cooperatives' access is checked by the domains that know the links.
    """
    if user.role is Role.ADMIN:
        return
    if user.role is Role.OFFICIAL:
        if user.jurisdiction_level is JurisdictionLevel.PROVINCE:
            if user.jurisdiction_code == province_code:
                return
        elif (
            user.jurisdiction_level is JurisdictionLevel.COMMUNE
            and commune_code is not None
            and user.jurisdiction_code == commune_code
        ):
            return
    raise PermissionDenied("outside your jurisdiction")

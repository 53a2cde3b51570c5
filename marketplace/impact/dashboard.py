"""The officials' dashboard and the public transparency page, rendered on the server.

Authentication for pages: an official logs in with the form at /impact/login; the bearer
token it receives is kept in a cookie (HttpOnly, SameSite=Strict, Secure in production, path
/impact), never in a URL (which would end up in logs and browser history).
`DashboardCookieMiddleware`, placed before the bearer middleware, turns that cookie into the
usual `Authorization` header on /impact/ paths only, so the same token checks, revocation
and role guards apply as on the API. Forms that change something carry a CSRF token (an HMAC
of the token's id under the app's secret key) on top of SameSite=Strict.

Pages send a Content-Security-Policy allowing only this origin's scripts: the charts are the
vendored Chart.js and dashboard.js from /impact/static, the figures travel as JSON in a
non-executable <script type="application/json"> element.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType, ScopeType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Receive, Scope, Send

from marketplace.accounts.controller import client_ip, provide_account_service
from marketplace.accounts.guards import allow, public
from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.accounts.service import AccountService
from marketplace.errors import (
    MarketplaceError,
    NotAuthenticated,
    PermissionDenied,
    handle_marketplace_error,
)
from marketplace.impact.controller import MonthParam, provide_exports, provide_reports
from marketplace.impact.exports import STATUS_LABELS, ExportService
from marketplace.impact.models import ExportFormat, StatusGroup
from marketplace.impact.reports import UPLIFT_EDGES, ReportService
from marketplace.impact.schemas import ExportCreate
from marketplace.resources import Resources
from marketplace.settings import Mode

COOKIE_NAME = "mp_official"
COOKIE_PATH = "/impact"
STATIC_DIR = Path(__file__).parent / "static"
TEMPLATE_DIR = Path(__file__).parent / "templates"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class DashboardCookieMiddleware:
    """On /impact/ paths without an Authorization header, present the login cookie's token
    as a bearer token; everywhere else the cookie is ignored (the API never accepts it, so a
    cross-site request to the API cannot ride on it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["path"].startswith(COOKIE_PATH + "/"):
            headers = list(scope.get("headers", []))
            if not any(name == b"authorization" for name, _ in headers):
                token = _cookie_token(headers)
                if token:
                    headers.append((b"authorization", b"Bearer " + token.encode("latin-1")))
                    scope["headers"] = headers
        await self.app(scope, receive, send)


def _cookie_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:
                return None
            morsel = jar.get(COOKIE_NAME)
            if morsel is not None and morsel.value.isascii():
                return morsel.value
    return None


def csrf_token(secret_key: str, token_id: uuid.UUID) -> str:
    return hmac.new(secret_key.encode(), f"csrf:{token_id}".encode(), hashlib.sha256).hexdigest()


def _check_csrf(resources: Resources, user: AuthenticatedUser, given: str) -> None:
    expected = csrf_token(resources.settings.security.secret_key, user.token_id)
    if not hmac.compare_digest(expected, given or ""):
        raise PermissionDenied("the form is stale or was not sent by this page; reload it")


def _redirect_to_login(request: Request[Any, Any, Any], exc: NotAuthenticated) -> Response[Any]:
    """A browser without a valid session is sent to the login form (and a stale cookie is
    dropped); any other client gets the API's usual 401 problem."""
    if "text/html" not in request.headers.get("accept", ""):
        return handle_marketplace_error(request, exc)
    response = Redirect(path="/impact/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH)
    return response


@dataclass
class LoginForm:
    login: str = ""
    password: str = ""


@dataclass
class ExportForm:
    format: str = ""
    csrf_token: str = ""
    month_from: str = ""
    month_to: str = ""


@dataclass
class LogoutForm:
    csrf_token: str = ""


def _page(name: str, context: dict[str, Any], status_code: int = 200) -> Template:
    return Template(
        template_name=name, context=context, status_code=status_code, headers=PAGE_HEADERS
    )


class DashboardLoginController(Controller):
    path = "/impact"
    include_in_schema = False
    opt = public()
    dependencies = {
        "accounts": Provide(provide_account_service),
        "reports": Provide(provide_reports),
    }

    @get("/login")
    async def login_form(self) -> Template:
        return _page("impact/login.html", {"error": None})

    @post("/login")
    async def log_in(
        self,
        request: Request[Any, Any, Any],
        accounts: NamedDependency[AccountService],
        resources: NamedDependency[Resources],
        data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        """Only officials get a dashboard session; everyone else is told so and gets none."""
        try:
            user = await accounts.authenticate(data.login, data.password, client_ip(request))
        except MarketplaceError as exc:
            return _page("impact/login.html", {"error": exc.title}, status_code=exc.status_code)
        if user.role is not Role.OFFICIAL:
            return _page(
                "impact/login.html",
                {"error": "Trang này dành cho cán bộ xã và tỉnh."},
                status_code=403,
            )
        issued = await accounts.issue_token(user, ip=client_ip(request))
        response = Redirect(path="/impact/dashboard", status_code=303)
        response.cookies.append(
            Cookie(
                key=COOKIE_NAME,
                value=issued.token,
                path=COOKIE_PATH,
                httponly=True,
                samesite="strict",
                secure=resources.settings.mode is Mode.PRODUCTION,
                max_age=resources.settings.security.token_ttl_seconds,
            )
        )
        return response

    @get("/public/provinces/{province_code:str}")
    async def public_province(
        self,
        reports: NamedDependency[ReportService],
        province_code: FromPath[str],
        month_from: MonthParam = None,
        month_to: MonthParam = None,
    ) -> Template:
        figures = await reports.public_province(province_code, month_from, month_to)
        return _page("impact/public_province.html", {"figures": figures})


class DashboardController(Controller):
    path = "/impact"
    include_in_schema = False
    guards = [allow(Role.OFFICIAL)]
    dependencies = {
        "reports": Provide(provide_reports),
        "exports": Provide(provide_exports),
        "accounts": Provide(provide_account_service),
    }
    exception_handlers = {NotAuthenticated: _redirect_to_login}

    @get("/dashboard")
    async def dashboard(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        reports: NamedDependency[ReportService],
        resources: NamedDependency[Resources],
        month_from: MonthParam = None,
        month_to: MonthParam = None,
    ) -> Template:
        data = await reports.dashboard(current_user, month_from, month_to)
        return _page(
            "impact/dashboard.html",
            {
                "user": current_user,
                "data": data,
                "labels": STATUS_LABELS,
                "groups": list(StatusGroup),
                "uplift_edges": UPLIFT_EDGES,
                "csrf": csrf_token(resources.settings.security.secret_key, current_user.token_id),
            },
        )

    @post("/dashboard/exports")
    async def request_export(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        exports: NamedDependency[ExportService],
        resources: NamedDependency[Resources],
        data: Annotated[ExportForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        _check_csrf(resources, current_user, data.csrf_token)
        try:
            fmt = ExportFormat(data.format)
        except ValueError:
            fmt = ExportFormat.CSV
        export = await exports.request(
            current_user,
            ExportCreate(
                format=fmt, month_from=data.month_from or None, month_to=data.month_to or None
            ),
        )
        return Redirect(path=f"/impact/dashboard/exports/{export.id}", status_code=303)

    @get("/dashboard/exports/{export_id:uuid}")
    async def export_page(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        exports: NamedDependency[ExportService],
        export_id: FromPath[uuid.UUID],
    ) -> Template:
        return _page("impact/export.html", {"export": await exports.get(current_user, export_id)})

    @post("/logout")
    async def log_out(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        accounts: NamedDependency[AccountService],
        resources: NamedDependency[Resources],
        data: Annotated[LogoutForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        _check_csrf(resources, current_user, data.csrf_token)
        await accounts.revoke_token(current_user.token_id)
        response = Redirect(path="/impact/login", status_code=303)
        response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH)
        return response


def static_files_router() -> Any:
    """Chart.js (vendored from npm, MIT, licence header kept) and the dashboard's script."""
    return create_static_files_router(
        path="/impact/static", directories=[STATIC_DIR], opt=public(), include_in_schema=False
    )

"""The application factory: plugins, routers, exception handlers, lifespan.

`create_app(settings, **overrides)` is the only way an app is made. Overrides replace
process-boundary collaborators (sessionmaker, redis, job_sender, clock, extras) so tests
hand in a sessionmaker bound to a rolled-back transaction and a recording job sender.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from marketplace.accounts.auth import BearerAuthenticationMiddleware, provide_current_user
from marketplace.accounts.controller import AdminUserController, AuthController
from marketplace.accounts.guards import public
from marketplace.accounts.token_lookups import close_token_lookups
from marketplace.accounts.token_uses import close_token_uses
from marketplace.catalog.controller import CATALOG_CONTROLLERS
from marketplace.catalog.storage import catalog_extras
from marketplace.db import create_engine, create_sessionmaker
from marketplace.errors import EXCEPTION_HANDLERS, document_problem_responses
from marketplace.geo.controller import GeoController
from marketplace.health import HealthController
from marketplace.impact.controller import ImpactReportController, PublicImpactController
from marketplace.impact.dashboard import (
    TEMPLATE_DIR,
    DashboardController,
    DashboardCookieMiddleware,
    DashboardLoginController,
    static_files_router,
)
from marketplace.jobs import CelerySender
from marketplace.livestreams.controller import (
    AdminLivestreamController,
    FollowController,
    HostLivestreamController,
    HostVerificationController,
    LivestreamController,
)
from marketplace.livestreams.events import DEFAULT_MAX_BACKLOG, LiveChannels
from marketplace.observability import RequestIdMiddleware, configure_logging
from marketplace.orders.controller import (
    ClaimController,
    FulfilmentController,
    OrderController,
)
from marketplace.orders.group_commit import close_group_commit
from marketplace.payments.controller import (
    AdminPaymentController,
    LedgerController,
    OrderPaymentController,
    WebhookController,
)
from marketplace.redis_clients import connect_redis
from marketplace.resources import Resources, provide_resources, provide_unit_of_work
from marketplace.sellers.controller import CooperativeController, HouseholdController
from marketplace.settings import Settings
from marketplace.storable_text import StorableTextMiddleware

API_VERSION = "0.1.0"


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False
    opt = {"public": True}


def route_handlers() -> Sequence[ControllerRouterHandler]:
    """Every router of the app, in one list a reader can scan."""
    return [
        HealthController,
        MetricsController,
        GeoController,
        AuthController,
        AdminUserController,
        *CATALOG_CONTROLLERS,
        HouseholdController,
        CooperativeController,
        OrderController,
        ClaimController,
        FulfilmentController,
        OrderPaymentController,
        WebhookController,
        AdminPaymentController,
        LedgerController,
        ImpactReportController,
        PublicImpactController,
        DashboardLoginController,
        DashboardController,
        static_files_router(),
        LivestreamController,
        HostLivestreamController,
        HostVerificationController,
        AdminLivestreamController,
        FollowController,
    ]


def freeze_startup_objects() -> None:
    """Modules, the app, its routes and the pools built at start-up live as long as the
    process. Frozen out of the collector's sight, a full collection no longer walks those
    ~270,000 objects: one paused a worker and every request in flight on it for 140-160 ms
    every few thousand requests in the catalog benchmark (5-9 ms frozen). Collected first,
    so no garbage is frozen with them. The youngest generation is then collected every
    20,000 allocations, not 700: a request allocates hundreds of objects that die with it, and
    the collections cost a flash-sale refusal 8% of its CPU (bench/request_cost.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def create_app(settings: Settings | None = None, **overrides: Any) -> Litestar:
    settings = settings or Settings.from_env()
    if not overrides.get("skip_logging_setup"):
        configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        engine = None
        sessionmaker = overrides.get("sessionmaker")
        if sessionmaker is None:
            engine = create_engine(settings.database)
            sessionmaker = create_sessionmaker(engine)
        redis = overrides.get("redis")
        own_redis = redis is None
        if redis is None:
            redis = connect_redis(settings.redis.url)
        sender = overrides.get("job_sender") or CelerySender(settings.redis.url)
        resources = Resources(
            settings=settings,
            sessionmaker=sessionmaker,
            redis=redis,
            job_sender=sender,
            engine=engine,
            extras=catalog_extras(overrides.get("extras", {}), settings),
        )
        if "clock" in overrides:
            resources.clock = overrides["clock"]
        app.state["resources"] = resources
        if engine is not None:  # a serving process, not a test app on a borrowed session
            freeze_startup_objects()
        try:
            yield
        finally:
            await close_group_commit(resources)
            await close_token_lookups(resources)
            await close_token_uses(resources)
            if own_redis:
                await redis.aclose()
            if engine is not None:
                await engine.dispose()

    prometheus = PrometheusConfig(app_name="marketplace", group_path=True, prefix="marketplace")
    app = Litestar(
        route_handlers=route_handlers(),
        # Livestream events over Redis pub/sub, so every API instance serves every session.
        plugins=[
            LiveChannels(
                settings.redis.url,
                max_backlog=overrides.get("channels_max_backlog", DEFAULT_MAX_BACKLOG),
            )
        ],
        lifespan=[lifespan],
        dependencies={
            "resources": Provide(provide_resources),
            "uow": Provide(provide_unit_of_work),
            "current_user": Provide(provide_current_user),
        },
        middleware=[
            DefineMiddleware(RequestIdMiddleware),
            prometheus.middleware,
            # Before the bearer check: the dashboard's login cookie becomes its bearer token.
            DefineMiddleware(DashboardCookieMiddleware),
            DefineMiddleware(BearerAuthenticationMiddleware),
            # After the bearer check, so an anonymous caller of a guarded route gets its 401.
            DefineMiddleware(StorableTextMiddleware),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="Marketplace API",
            version=API_VERSION,
            description=(
                "Livestream sales for Vietnamese farming households, with income attribution "
                "per household for commune and province officials."
            ),
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
            # The documentation is public; the marker on its router says so to the auth
            # middleware and to the route-table access test.
            openapi_router=Router(path="/schema", route_handlers=[], opt=public()),
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http", scheme="bearer", description="Token from /api/auth/login"
                    )
                }
            ),
        ),
        template_config=TemplateConfig(directory=[TEMPLATE_DIR], engine=JinjaTemplateEngine),
        cors_config=CORSConfig(allow_origins=[]),
        debug=False,
    )
    document_problem_responses(app)
    return app

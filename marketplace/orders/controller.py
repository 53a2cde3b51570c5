"""HTTP endpoints of orders: placing (idempotent), reading, cancelling, claiming comment
orders, and sellers' fulfilments."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from marketplace.accounts.guards import allow, public
from marketplace.accounts.guards import current_user as user_of
from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.db import BIGINT_MAX
from marketplace.orders.group_commit import group_commit
from marketplace.orders.models import OrderStatus
from marketplace.orders.placement import claim_sessions
from marketplace.orders.schemas import (
    ClaimCreate,
    ClaimPreviewRead,
    OrderCreate,
    OrderPage,
    OrderRead,
    SellerFulfilmentPage,
    SellerFulfilmentRead,
    ShipmentCreate,
    fulfilment_read,
    line_read,
    order_read,
    order_summary,
    shipping_read,
)
from marketplace.orders.service import OrderService
from marketplace.resources import get_resources, request_unit_of_work
from marketplace.sellers.pii import mask_phone

BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}]
MAX_PAGE = 100
SELLER_ROLES = (Role.FARMER, Role.HELPER, Role.COOPERATIVE_MANAGER, Role.ADMIN)


async def provide_order_service(state: State) -> AsyncGenerator[OrderService, None]:
    """The service in the request's unit of work. One dependency, not three: Litestar
    resolves sibling dependencies in an anyio task group, about 6% of a flash-sale order's
    CPU (profiled with yappi, bench/request_cost.py)."""
    resources = get_resources(state)
    async with request_unit_of_work(resources) as uow:
        yield OrderService(
            uow,
            resources.settings,
            resources.redis,
            resources.clock,
            claims=claim_sessions(resources),
            group=group_commit(resources),
        )


class OrderController(Controller):
    path = "/api/orders"
    tags = ["orders"]
    security = BEARER
    dependencies = {"orders": Provide(provide_order_service)}

    @post(
        "/",
        guards=[allow(Role.BUYER)],
        summary="Place an order (requires an Idempotency-Key header)",
        responses={201: ResponseSpec(data_container=OrderRead, description="The order")},
    )
    async def place(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[OrderCreate],
        orders: NamedDependency[OrderService],
        idempotency_key: Annotated[
            str | None,
            HeaderParameter(
                name="Idempotency-Key",
                description="A unique value per order; a retry with the same key and body "
                "gets the first answer for 24 hours (at most 255 printable ASCII characters).",
            ),
        ] = None,
    ) -> Response[bytes]:
        stored = await orders.place_order_once(
            buyer=user_of(request),
            idempotency_key=idempotency_key,
            body=data,
            instance=request.url.path,
        )
        headers = {"Idempotent-Replayed": "true"} if stored.replayed else {}
        return Response(
            content=stored.body,
            status_code=stored.status_code,
            media_type=stored.media_type,
            headers=headers,
        )

    @get("/", guards=[allow(Role.BUYER, Role.ADMIN)], summary="My orders (all for admins)")
    async def list_orders(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        orders: NamedDependency[OrderService],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 20,
        offset: Annotated[int, QueryParameter(ge=0, le=BIGINT_MAX)] = 0,
    ) -> OrderPage:
        found = await orders.list_orders(current_user, limit=limit, offset=offset)
        return OrderPage(items=[order_summary(o) for o in found], limit=limit, offset=offset)

    @get("/{order_id:uuid}", guards=[allow(Role.BUYER, Role.ADMIN)], summary="One order")
    async def get_order(
        self,
        order_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        orders: NamedDependency[OrderService],
    ) -> OrderRead:
        return order_read(await orders.order_for(current_user, order_id))

    @post(
        "/{order_id:uuid}/cancel",
        status_code=HTTP_200_OK,
        guards=[allow(Role.BUYER, Role.ADMIN)],
        summary="Cancel an unpaid or cash-on-delivery order before it ships",
    )
    async def cancel(
        self,
        order_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        orders: NamedDependency[OrderService],
    ) -> OrderRead:
        reason = "admin_cancelled" if current_user.role is Role.ADMIN else "buyer_cancelled"
        order = await orders.cancel(order_id, by=current_user, reason=reason)
        return order_read(await orders.details(order))

    @post(
        "/{order_id:uuid}/received",
        status_code=HTTP_200_OK,
        guards=[allow(Role.BUYER, Role.ADMIN)],
        summary="Confirm the goods arrived (completes a delivered prepaid order)",
    )
    async def received(
        self,
        order_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        orders: NamedDependency[OrderService],
    ) -> OrderRead:
        order = await orders.confirm_receipt(current_user, order_id)
        return order_read(await orders.details(order))


class ClaimController(Controller):
    """Comment orders: the code sent to the commenter opens the order; claiming it needs a
    buyer account, which becomes the order's buyer."""

    path = "/api/claims"
    tags = ["orders"]
    dependencies = {"orders": Provide(provide_order_service)}

    @get("/{code:str}", opt=public(), summary="What a claim code orders (no address shown)")
    async def preview(
        self, code: FromPath[str], orders: NamedDependency[OrderService]
    ) -> ClaimPreviewRead:
        details = await orders.claim_preview(code)
        order = details.order
        return ClaimPreviewRead(
            order_id=order.id,
            status=OrderStatus(order.status),
            total_amount=order.total_amount,
            contact_phone_masked=mask_phone(order.contact_phone) if order.contact_phone else None,
            hold_expires_at=order.hold_expires_at,
            lines=[line_read(line) for line in details.lines],
        )

    @post(
        "/{code:str}",
        status_code=HTTP_200_OK,
        guards=[allow(Role.BUYER)],
        security=BEARER,
        summary="Claim a comment order: shipping address and payment method",
    )
    async def claim(
        self,
        code: FromPath[str],
        data: JSONBody[ClaimCreate],
        current_user: NamedDependency[AuthenticatedUser],
        orders: NamedDependency[OrderService],
    ) -> OrderRead:
        order = await orders.claim(code, buyer=current_user, data=data)
        return order_read(await orders.details(order))


class FulfilmentController(Controller):
    path = "/api/fulfilments"
    tags = ["orders"]
    security = BEARER
    guards = [allow(*SELLER_ROLES)]
    dependencies = {"orders": Provide(provide_order_service)}

    @get("/", summary="Fulfilments of a household or cooperative you act for")
    async def list_fulfilments(
        self,
        *,
        current_user: NamedDependency[AuthenticatedUser],
        orders: NamedDependency[OrderService],
        household_id: FromQuery[uuid.UUID | None] = None,
        cooperative_id: FromQuery[uuid.UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 20,
        offset: Annotated[int, QueryParameter(ge=0, le=BIGINT_MAX)] = 0,
    ) -> SellerFulfilmentPage:
        rows, lines = await orders.seller_fulfilments(
            current_user,
            household_id=household_id,
            cooperative_id=cooperative_id,
            limit=limit,
            offset=offset,
        )
        return SellerFulfilmentPage(
            items=[
                SellerFulfilmentRead(
                    fulfilment=fulfilment_read(fulfilment, lines),
                    order_status=OrderStatus(order.status),
                    shipping=shipping_read(order),
                )
                for fulfilment, order in rows
            ],
            limit=limit,
            offset=offset,
        )

    @post("/{fulfilment_id:uuid}/ship", status_code=HTTP_200_OK, summary="Hand to the carrier")
    async def ship(
        self,
        fulfilment_id: FromPath[uuid.UUID],
        data: JSONBody[ShipmentCreate],
        current_user: NamedDependency[AuthenticatedUser],
        orders: NamedDependency[OrderService],
    ) -> SellerFulfilmentRead:
        order, fulfilment = await orders.ship(
            current_user,
            fulfilment_id,
            carrier=data.carrier,
            tracking_number=data.tracking_number,
        )
        lines = await orders.fulfilment_lines([fulfilment.id])
        return SellerFulfilmentRead(
            fulfilment=fulfilment_read(fulfilment, lines),
            order_status=OrderStatus(order.status),
            shipping=shipping_read(order),
        )

    @post("/{fulfilment_id:uuid}/deliver", status_code=HTTP_200_OK, summary="Mark delivered")
    async def deliver(
        self,
        fulfilment_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        orders: NamedDependency[OrderService],
    ) -> SellerFulfilmentRead:
        order, fulfilment = await orders.deliver(current_user, fulfilment_id)
        lines = await orders.fulfilment_lines([fulfilment.id])
        return SellerFulfilmentRead(
            fulfilment=fulfilment_read(fulfilment, lines),
            order_status=OrderStatus(order.status),
            shipping=shipping_read(order),
        )

"""HTTP endpoints of payments: the VietQR of an order, card payments, the bank and Stripe
webhooks (public, signature-checked), the admin's imports, queue, refunds and payouts, and
sellers' ledgers."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from marketplace.accounts.guards import allow, public
from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.db import BIGINT_MAX
from marketplace.payments.bank import SIGNATURE_HEADER, TIMESTAMP_HEADER, BankService
from marketplace.payments.cards import CardService
from marketplace.payments.cod import CodService
from marketplace.payments.gateway import StripeGateway
from marketplace.payments.models import BankTransactionStatus
from marketplace.payments.refunds import RefundService
from marketplace.payments.schemas import (
    BankFeedRead,
    BankTransactionPage,
    BankTransactionRead,
    CardPaymentRead,
    ImportRead,
    LedgerRead,
    PayoutCreate,
    PayoutRead,
    RefundCreate,
    RefundRead,
    RemittanceImportRead,
    RemittancePage,
    ResolveCreate,
    StripeWebhookRead,
    VietQRRead,
    bank_transaction_read,
    ledger_entry_read,
    payout_read,
    refund_read,
    remittance_read,
)
from marketplace.payments.service import MAX_PAGE, PaymentService
from marketplace.resources import Resources
from marketplace.unit_of_work import UnitOfWork

BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}]
GATEWAY = "payment_gateway"


async def provide_payments(
    uow: NamedDependency[UnitOfWork], resources: NamedDependency[Resources]
) -> PaymentService:
    return PaymentService(uow, resources.settings, resources.redis, resources.clock)


async def provide_gateway(resources: NamedDependency[Resources]) -> StripeGateway:
    """One Stripe client per process (its connection pool), made on first use."""
    return resources.made_once(
        GATEWAY, StripeGateway, lambda: StripeGateway(resources.settings.payments)
    )


DEPENDENCIES = {"payments": Provide(provide_payments), "gateway": Provide(provide_gateway)}


class OrderPaymentController(Controller):
    path = "/api/orders/{order_id:uuid}"
    tags = ["payments"]
    security = BEARER
    guards = [allow(Role.BUYER, Role.ADMIN)]
    dependencies = DEPENDENCIES

    @get("/vietqr", summary="The VietQR payload for what the order still owes")
    async def vietqr(
        self,
        order_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        payments: NamedDependency[PaymentService],
    ) -> VietQRRead:
        return await BankService(payments).vietqr(current_user, order_id)

    @get(
        "/vietqr.png",
        summary="The VietQR code as a PNG image",
        media_type="image/png",
    )
    async def vietqr_png(
        self,
        order_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        payments: NamedDependency[PaymentService],
    ) -> Response[bytes]:
        image = await BankService(payments).vietqr_png(current_user, order_id)
        return Response(
            content=image, media_type="image/png", headers={"Cache-Control": "no-store"}
        )

    @post("/card-payment", status_code=HTTP_200_OK, summary="Start (or resume) a card payment")
    async def card_payment(
        self,
        order_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        payments: NamedDependency[PaymentService],
        gateway: NamedDependency[StripeGateway],
    ) -> CardPaymentRead:
        return await CardService(payments, gateway).start(current_user, order_id)


class WebhookController(Controller):
    """Public (the sender has no account), so each request proves itself by signature."""

    path = "/api/payments"
    tags = ["payments"]
    opt = public()
    dependencies = DEPENDENCIES

    @post("/bank/webhook", status_code=HTTP_200_OK, summary="Incoming transfers from the bank")
    async def bank_webhook(
        self,
        request: Request[Any, Any, Any],
        payments: NamedDependency[PaymentService],
        timestamp: Annotated[str | None, HeaderParameter(name=TIMESTAMP_HEADER)] = None,
        signature: Annotated[str | None, HeaderParameter(name=SIGNATURE_HEADER)] = None,
    ) -> BankFeedRead:
        results = await BankService(payments).receive_webhook(
            body=await request.body(), timestamp=timestamp, signature=signature
        )
        return BankFeedRead(results=results)

    @post("/stripe/webhook", status_code=HTTP_200_OK, summary="Stripe events")
    async def stripe_webhook(
        self,
        request: Request[Any, Any, Any],
        payments: NamedDependency[PaymentService],
        gateway: NamedDependency[StripeGateway],
        signature: Annotated[str | None, HeaderParameter(name="Stripe-Signature")] = None,
    ) -> StripeWebhookRead:
        return await CardService(payments, gateway).receive_webhook(await request.body(), signature)


class AdminPaymentController(Controller):
    path = "/api/admin/payments"
    tags = ["admin", "payments"]
    security = BEARER
    guards = [allow(Role.ADMIN)]
    dependencies = DEPENDENCIES

    @post("/bank-statements", status_code=HTTP_200_OK, summary="Import a bank statement CSV")
    async def import_statement(
        self, request: Request[Any, Any, Any], payments: NamedDependency[PaymentService]
    ) -> ImportRead:
        return await BankService(payments).import_statement(await request.body())

    @get("/bank-transactions", summary="Bank credits, the unmatched ones by default")
    async def bank_transactions(
        self,
        payments: NamedDependency[PaymentService],
        status: FromQuery[BankTransactionStatus] = BankTransactionStatus.UNMATCHED,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, QueryParameter(ge=0, le=BIGINT_MAX)] = 0,
    ) -> BankTransactionPage:
        rows = await BankService(payments).transactions(status=status, limit=limit, offset=offset)
        return BankTransactionPage(
            items=[bank_transaction_read(r) for r in rows], limit=limit, offset=offset
        )

    @post(
        "/bank-transactions/{transaction_id:uuid}/resolve",
        status_code=HTTP_200_OK,
        summary="Apply an unmatched credit to an order, or dismiss it",
    )
    async def resolve(
        self,
        transaction_id: FromPath[uuid.UUID],
        data: JSONBody[ResolveCreate],
        current_user: NamedDependency[AuthenticatedUser],
        payments: NamedDependency[PaymentService],
    ) -> BankTransactionRead:
        row = await BankService(payments).resolve(transaction_id, data, by=current_user)
        return bank_transaction_read(row)

    @post("/cod-remittances", status_code=HTTP_200_OK, summary="Import a carrier's remittance")
    async def import_remittances(
        self, request: Request[Any, Any, Any], payments: NamedDependency[PaymentService]
    ) -> RemittanceImportRead:
        return await CodService(payments).import_remittances(await request.body())

    @get("/cod-shortfalls", summary="Remittances short of their order's total")
    async def shortfalls(
        self,
        payments: NamedDependency[PaymentService],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, QueryParameter(ge=0, le=BIGINT_MAX)] = 0,
    ) -> RemittancePage:
        rows = await CodService(payments).shortfalls(limit=limit, offset=offset)
        return RemittancePage(items=[remittance_read(r) for r in rows], limit=limit, offset=offset)

    @post(
        "/orders/{order_id:uuid}/refunds",
        summary="Refund an order, fully or in part (requires an Idempotency-Key header)",
    )
    async def refund(
        self,
        *,
        order_id: FromPath[uuid.UUID],
        data: JSONBody[RefundCreate],
        current_user: NamedDependency[AuthenticatedUser],
        payments: NamedDependency[PaymentService],
        gateway: NamedDependency[StripeGateway],
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", description="One per refund")
        ] = None,
    ) -> RefundRead:
        refund = await RefundService(payments, gateway).refund(
            order_id,
            amount=data.amount,
            reason=data.reason,
            idempotency_key=idempotency_key,
            by=current_user,
        )
        return refund_read(refund)

    @post("/payouts", summary="Record money paid out to a seller")
    async def payout(
        self,
        data: JSONBody[PayoutCreate],
        current_user: NamedDependency[AuthenticatedUser],
        payments: NamedDependency[PaymentService],
    ) -> PayoutRead:
        payout, balance = await payments.record_payout(
            household_id=data.household_id,
            cooperative_id=data.cooperative_id,
            amount=data.amount,
            reference=data.reference,
            by=current_user,
        )
        return payout_read(payout, balance)


class LedgerController(Controller):
    path = "/api/ledger"
    tags = ["payments"]
    security = BEARER
    guards = [allow(Role.FARMER, Role.HELPER, Role.COOPERATIVE_MANAGER, Role.ADMIN)]
    dependencies = DEPENDENCIES

    @get("/", summary="A seller's ledger and balance (your own household by default)")
    async def ledger(
        self,
        *,
        current_user: NamedDependency[AuthenticatedUser],
        payments: NamedDependency[PaymentService],
        household_id: FromQuery[uuid.UUID | None] = None,
        cooperative_id: FromQuery[uuid.UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, QueryParameter(ge=0, le=BIGINT_MAX)] = 0,
    ) -> LedgerRead:
        page = await payments.ledger(
            current_user,
            household_id=household_id,
            cooperative_id=cooperative_id,
            limit=limit,
            offset=offset,
        )
        return LedgerRead(
            seller_kind=page.seller.kind,
            seller_id=page.seller.id,
            balance_amount=page.balance,
            entries=[ledger_entry_read(e) for e in page.entries],
            limit=limit,
            offset=offset,
        )

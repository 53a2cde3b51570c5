"""Card payments through Stripe: the PaymentIntent for an order, and Stripe's webhooks.

- One PaymentIntent per order, created with the idempotency key `order-<id>-payment`: asking
  again (a double click, a retry after a timeout) returns the same intent.
- Webhooks are verified by the Stripe SDK and recorded by event id before they act, so a
  redelivered or replayed event is answered without acting twice.
- `payment_intent.succeeded` settles the order; a success for an order already cancelled
  (the hold ran out first) is kept for an admin to refund.
- `charge.refunded` reverses whatever Stripe refunded that we have not recorded yet (a
  refund made in Stripe's dashboard, or one of ours that was still pending). One that
  arrives before the payment's `payment_intent.succeeded` is refused (409
  `payment_not_settled`) so Stripe delivers it again once the payment is recorded.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.orders.models import AWAITING_PAYMENT, OrderStatus, PaymentMethod
from marketplace.payments.errors import NotACardOrder, PaymentNotSettled
from marketplace.payments.gateway import StripeGateway
from marketplace.payments.models import (
    CardPayment,
    CardPaymentStatus,
    Refund,
    RefundStatus,
)
from marketplace.payments.schemas import CardPaymentRead, StripeWebhookRead
from marketplace.payments.service import PaymentService

log = structlog.get_logger(__name__)

DUPLICATE = "duplicate"
IGNORED = "ignored"


def intent_key(order_id: uuid.UUID) -> str:
    return f"order-{order_id}-payment"


class CardService:
    def __init__(self, payments: PaymentService, gateway: StripeGateway) -> None:
        self._payments = payments
        self._orders = payments.orders
        self._repo = payments.repository
        self._gateway = gateway

    async def start(self, user: AuthenticatedUser, order_id: uuid.UUID) -> CardPaymentRead:
        details = await self._orders.order_for(user, order_id)
        order = details.order
        if order.payment_method != PaymentMethod.CARD.value:
            raise NotACardOrder(f"the order is paid by {order.payment_method}")
        if OrderStatus(order.status) not in AWAITING_PAYMENT:
            raise NotACardOrder(f"the order is {order.status}")
        intent = await self._gateway.create_payment_intent(
            amount=order.amount_due, order_id=str(order.id), idempotency_key=intent_key(order.id)
        )
        if await self._repo.card_payment_of(order.id) is None:
            await self._repo.add(
                CardPayment(
                    order_id=order.id,
                    payment_intent_id=intent.id,
                    amount=intent.amount,
                    currency="vnd",
                    status=CardPaymentStatus.REQUIRES_PAYMENT.value,
                )
            )
        return CardPaymentRead(
            payment_intent_id=intent.id,
            client_secret=intent.client_secret,
            amount=intent.amount,
            currency="vnd",
        )

    async def receive_webhook(self, payload: bytes, signature: str | None) -> StripeWebhookRead:
        event = self._gateway.verify_event(payload, signature)
        row_id = await self._repo.claim_stripe_event(event.id, event.type)
        if row_id is None:
            log.info("stripe_event_duplicate", event_id=event.id)
            return StripeWebhookRead(event_id=event.id, outcome=DUPLICATE)
        if event.type == "payment_intent.succeeded":
            outcome = await self._succeeded(event.data_object)
        elif event.type == "charge.refunded":
            outcome = await self._refunded(event.id, event.data_object)
        else:
            outcome = IGNORED
        await self._repo.set_stripe_outcome(row_id, outcome)
        log.info("stripe_event_handled", event_id=event.id, type=event.type, outcome=outcome)
        return StripeWebhookRead(event_id=event.id, outcome=outcome)

    async def _succeeded(self, intent: dict[str, Any]) -> str:
        payment = await self._repo.card_payment_by_intent(str(intent.get("id")), for_update=True)
        if payment is None:
            return "unknown_payment_intent"
        order = await self._orders.lock_order(payment.order_id)
        now = self._payments.now()
        if payment.status != CardPaymentStatus.REQUIRES_PAYMENT.value:
            return "already_recorded"
        payment.succeeded_at = now
        if OrderStatus(order.status) not in AWAITING_PAYMENT:
            payment.status = CardPaymentStatus.SUCCEEDED_LATE.value
            log.warning("card_paid_after_cancel", order_id=str(order.id))
            return "order_not_payable"
        received = int(intent.get("amount_received") or intent.get("amount") or 0)
        if received < order.amount_due:
            payment.status = CardPaymentStatus.SUCCEEDED_LATE.value
            log.error("card_amount_short", order_id=str(order.id), received=received)
            return "amount_short"
        payment.status = CardPaymentStatus.SUCCEEDED.value
        await self._orders.mark_paid(order.id, paid_at=now)
        await self._payments.settle(order, method=PaymentMethod.CARD.value, at=now)
        return "settled"

    async def _refunded(self, event_id: str, charge: dict[str, Any]) -> str:
        # Locked as `_succeeded` locks it (payment, then order), so its status is current.
        payment = await self._repo.card_payment_by_intent(
            str(charge.get("payment_intent")), for_update=True
        )
        if payment is None:
            return "unknown_payment_intent"
        order = await self._orders.lock_order(payment.order_id)
        if payment.status == CardPaymentStatus.REQUIRES_PAYMENT.value:
            raise PaymentNotSettled(
                f"Stripe refunded payment intent {payment.payment_intent_id} before its "
                "payment_intent.succeeded reached us; the refund is applied when Stripe "
                "delivers this event again after the payment"
            )
        now = self._payments.now()
        refunds = await self._repo.refunds_of(order.id)
        stripe_refunds = {
            str(item.get("id")): str(item.get("status"))
            for item in (charge.get("refunds") or {}).get("data") or []
            if isinstance(item, dict)
        }
        for refund in refunds:
            if (
                refund.status == RefundStatus.PENDING.value
                and refund.stripe_refund_id in stripe_refunds
                and stripe_refunds[refund.stripe_refund_id] == "succeeded"
            ):
                await self._payments.complete_refund(order, refund, at=now)
        recorded = sum(
            r.amount
            for r in refunds
            if r.method == PaymentMethod.CARD.value and r.status == RefundStatus.SUCCEEDED.value
        )
        missing = int(charge.get("amount_refunded") or 0) - recorded
        if missing <= 0:
            return "already_recorded"
        refund = Refund(
            id=uuid.uuid4(),
            order_id=order.id,
            request_key=f"stripe:{event_id}",
            amount=missing,
            method=PaymentMethod.CARD.value,
            status=RefundStatus.PENDING.value,
            reason="refunded in Stripe",
        )
        await self._repo.add(refund)
        await self._payments.complete_refund(order, refund, at=now)
        return "reversed"

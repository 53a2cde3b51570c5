"""Refunds an admin makes, full or partial, whichever way the buyer paid.

A refund request carries an Idempotency-Key: the refund row is unique per (order, key), and
a card refund asks Stripe with the key `refund-<order>-<key>`, so a retry after a lost
answer (or after our commit failed once Stripe had refunded) finds the same refund at
Stripe and records it once. Bank transfer and cash-on-delivery refunds are paid back by
hand; recording them applies them at once.
"""

from __future__ import annotations

import uuid

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.orders.models import PaymentMethod
from marketplace.orders.placement import check_idempotency_key
from marketplace.payments.errors import NothingToRefund
from marketplace.payments.gateway import StripeGateway
from marketplace.payments.models import Refund, RefundStatus
from marketplace.payments.service import PaymentService


def stripe_refund_key(order_id: uuid.UUID, request_key: str) -> str:
    return f"refund-{order_id}-{request_key}"


class RefundService:
    def __init__(self, payments: PaymentService, gateway: StripeGateway) -> None:
        self._payments = payments
        self._repo = payments.repository
        self._gateway = gateway

    async def refund(
        self,
        order_id: uuid.UUID,
        *,
        amount: int,
        reason: str,
        idempotency_key: str | None,
        by: AuthenticatedUser,
    ) -> Refund:
        key = check_idempotency_key(idempotency_key)
        locked = await self._payments.orders.lock_order(order_id)
        method = locked.payment_method or ""
        order, refund, existed = await self._payments.start_refund(
            order_id, amount=amount, request_key=key, method=method, reason=reason, by=by
        )
        if existed and refund.status != RefundStatus.PENDING.value:
            return refund
        now = self._payments.now()
        if method != PaymentMethod.CARD.value:
            await self._payments.complete_refund(order, refund, at=now)
            return refund
        payment = await self._repo.card_payment_of(order.id)
        if payment is None:
            raise NothingToRefund("no card payment is recorded for this order")
        # A Stripe error propagates and the request rolls back: retrying with the same key
        # asks Stripe again with the same idempotency key.
        answer = await self._gateway.refund(
            payment_intent_id=payment.payment_intent_id,
            amount=amount,
            idempotency_key=stripe_refund_key(order.id, key),
        )
        refund.stripe_refund_id = answer.id
        if answer.status == "succeeded":
            await self._payments.complete_refund(order, refund, at=now)
        elif answer.status in {"failed", "canceled"}:
            await self._payments.fail_refund(refund)
        return refund

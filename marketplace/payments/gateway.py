"""Stripe, for card buyers abroad: the only module that imports `stripe`.

VND is a zero-decimal currency for Stripe: 180,000 ₫ is `amount=180000`, never times 100, so
amounts pass through unchanged. Every call that creates something carries an idempotency
key derived from what it is for (the order, the refund request), so a retry after a lost
answer returns the first result instead of charging or refunding twice. Stripe's errors
become ours here; callers never see a `stripe` type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import stripe

from marketplace.payments.errors import (
    CardGatewayRefused,
    CardGatewayUnavailable,
    InvalidSignature,
    StaleWebhook,
    WebhookNotConfigured,
)
from marketplace.settings import PaymentSettings

CURRENCY = "vnd"
WEBHOOK_TOLERANCE_SECONDS = 300


@dataclass(frozen=True, slots=True)
class PaymentIntentInfo:
    id: str
    client_secret: str
    amount: int
    status: str


@dataclass(frozen=True, slots=True)
class RefundInfo:
    id: str
    amount: int
    status: str


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """A verified webhook event: its id, type and the object it is about (as JSON)."""

    id: str
    type: str
    data_object: dict[str, Any]


class StripeGateway:
    def __init__(self, settings: PaymentSettings) -> None:
        self._settings = settings
        base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
        self._client = stripe.StripeClient(
            settings.stripe_api_key or "sk_unconfigured",
            base_addresses=base,  # type: ignore[arg-type] # a partial mapping is accepted
            http_client=stripe.HTTPXClient(allow_sync_methods=False),
            max_network_retries=2,
        )

    async def create_payment_intent(
        self, *, amount: int, order_id: str, idempotency_key: str
    ) -> PaymentIntentInfo:
        try:
            intent = await self._client.v1.payment_intents.create_async(
                {
                    "amount": amount,
                    "currency": CURRENCY,
                    "metadata": {"order_id": order_id},
                    "automatic_payment_methods": {"enabled": True},
                },
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _translated(exc) from None
        return PaymentIntentInfo(
            id=intent.id,
            client_secret=intent.client_secret or "",
            amount=intent.amount,
            status=intent.status,
        )

    async def refund(
        self, *, payment_intent_id: str, amount: int, idempotency_key: str
    ) -> RefundInfo:
        try:
            refund = await self._client.v1.refunds.create_async(
                {"payment_intent": payment_intent_id, "amount": amount},
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _translated(exc) from None
        return RefundInfo(id=refund.id, amount=refund.amount, status=refund.status or "pending")

    def verify_event(self, payload: bytes, signature: str | None) -> GatewayEvent:
        """Stripe's own signature check (HMAC-SHA256 of `t.payload`, 5-minute tolerance):
        a forged, tampered or stale delivery is refused before anything is read."""
        secret = self._settings.stripe_webhook_secret
        if not secret:
            raise WebhookNotConfigured("set STRIPE_WEBHOOK_SECRET to accept Stripe webhooks")
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError as exc:
            message = str(exc.user_message or exc)
            if "tolerance" in message:
                raise StaleWebhook("the Stripe-Signature timestamp is too old") from None
            raise InvalidSignature("the Stripe-Signature header does not verify") from None
        except ValueError:
            raise InvalidSignature("the body is not a Stripe event") from None
        raw = json.loads(payload)
        data_object = raw.get("data", {}).get("object", {}) if isinstance(raw, dict) else {}
        return GatewayEvent(id=event.id, type=event.type, data_object=dict(data_object))


def _translated(exc: stripe.StripeError) -> Exception:
    if isinstance(exc, stripe.APIConnectionError):
        return CardGatewayUnavailable("Stripe could not be reached; try again")
    return CardGatewayRefused(str(exc.user_message or "Stripe refused the request"))

"""Errors a client of payments can branch on; Stripe's own errors are translated in
`payments.gateway` into these."""

from __future__ import annotations

from marketplace.errors import (
    Conflict,
    FieldError,
    MarketplaceError,
    NotAuthenticated,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)


class InvalidSignature(NotAuthenticated):
    """Forged, tampered (the body changed after signing) or missing: nothing is read."""

    code = "invalid_signature"
    title = "The webhook signature does not verify"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={})


class StaleWebhook(NotAuthenticated):
    """A signed delivery older (or newer) than the 5-minute window: a replay is refused."""

    code = "stale_timestamp"
    title = "The webhook timestamp is outside the accepted window"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={})


class WebhookNotConfigured(ServiceUnavailable):
    code = "webhook_not_configured"
    title = "This webhook has no secret configured"


class InvalidPaymentField(ValidationFailed):
    code = "invalid_payment"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=[FieldError(field, message)])


class BadUpload(ValidationFailed):
    """A statement or remittance file that cannot be read at all (no header, wrong
    columns). Malformed rows of a readable file are reported per line instead."""

    code = "invalid_file"

    def __init__(self, message: str) -> None:
        super().__init__(f"file: {message}", errors=[FieldError("file", message)])


class NotAwaitingTransfer(Conflict):
    code = "not_awaiting_transfer"
    title = "This order does not wait for a bank transfer"


class NotACardOrder(Conflict):
    code = "not_a_card_order"
    title = "This order is not paid by card"


class CollectionAccountMissing(ServiceUnavailable):
    code = "collection_account_missing"
    title = "The platform's bank account for transfers is not configured"


class BankTransactionNotFound(NotFound):
    code = "bank_transaction_not_found"
    title = "No such bank transaction"


class AlreadyResolved(Conflict):
    code = "already_resolved"
    title = "This bank transaction is not waiting to be resolved"


class RefundTooLarge(Conflict):
    code = "refund_too_large"
    title = "The refund is larger than what can still be refunded"


class PaymentNotSettled(Conflict):
    """Stripe reports a refund of a card payment whose `payment_intent.succeeded` we have not
    recorded yet (Stripe does not deliver events in order). Refused, not 2xx, so Stripe
    delivers it again; by then the payment is settled and the refund reverses it."""

    code = "payment_not_settled"
    title = "The refunded payment is not settled yet"


class NothingToRefund(Conflict):
    code = "nothing_to_refund"
    title = "This order has no settled payment to refund"


class RefundKeyReused(Conflict):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was already used for another refund"


class PayoutExceedsBalance(Conflict):
    code = "payout_exceeds_balance"
    title = "The payout is larger than the seller's balance"


class PayoutReferenceUsed(Conflict):
    code = "payout_reference_used"
    title = "A payout with this bank reference is already recorded"


class CardGatewayUnavailable(ServiceUnavailable):
    code = "card_gateway_unavailable"
    title = "The card payment provider cannot be reached"


class CardGatewayRefused(MarketplaceError):
    status_code = 502
    code = "card_gateway_refused"
    title = "The card payment provider refused the request"

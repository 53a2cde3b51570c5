"""Errors a client of the orders domain can branch on."""

from __future__ import annotations

from typing import Any

from marketplace.errors import Conflict, FieldError, NotFound, ValidationFailed


class IllegalTransition(Conflict):
    """An order or fulfilment asked to make a move its state machine does not allow."""

    code = "illegal_transition"
    title = "The order cannot make this move from its current status"

    def __init__(self, status: str, action: str) -> None:
        super().__init__(f"an order that is {status} cannot {action}", extra={"status": status})


class OrderNotFound(NotFound):
    """Also the answer for another buyer's order: its existence is not disclosed."""

    code = "order_not_found"
    title = "No such order"


class FulfilmentNotFound(NotFound):
    code = "fulfilment_not_found"
    title = "No such fulfilment"


class ClaimNotFound(NotFound):
    code = "claim_not_found"
    title = "No order waits to be claimed with this code"


class InvalidOrderField(ValidationFailed):
    """A well-formed request that breaks an ordering rule; `field` names the culprit."""

    code = "invalid_order"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=[FieldError(field, message)])
        self.field = field


class VariantUnavailable(InvalidOrderField):
    """Unknown, inactive or unlisted: the buyer cannot order it at all (not a stock matter)."""

    code = "variant_unavailable"
    title = "This variant is not for sale"


class SoldOut(Conflict):
    code = "sold_out"
    title = "Sold out"

    def __init__(self, field: str, available: int | None = None) -> None:
        extra: dict[str, Any] = {"field": field}
        if available is not None:
            extra["available"] = available
        detail = (
            f"{field}: not enough stock (available: {available})"
            if available
            else f"{field}: sold out"
        )
        super().__init__(detail, extra=extra)


class PriceChanged(Conflict):
    """The seller changed the price in the milliseconds between reading it and taking the
    stock: nothing was ordered; ordering again (with a new key) takes the new price."""

    code = "price_changed"
    title = "The price changed while ordering"


class LimitReached(Conflict):
    code = "limit_reached"
    title = "You already ordered as many of this item as one buyer may"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}", extra={"field": field})


class ItemUnavailable(InvalidOrderField):
    """A livestream item that does not exist or is no longer pinned."""

    code = "item_unavailable"
    title = "This livestream item cannot be ordered"


class IdempotencyKeyMissing(ValidationFailed):
    """400, as the IETF Idempotency-Key draft asks for a missing or malformed key."""

    status_code = 400
    code = "idempotency_key_required"
    title = "This request needs an Idempotency-Key header"

    def __init__(self, message: str) -> None:
        super().__init__(
            f"Idempotency-Key: {message}", errors=[FieldError("Idempotency-Key", message)]
        )


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was already used with a different request"


class RequestInProgress(Conflict):
    code = "request_in_progress"
    title = "A request with this Idempotency-Key is still being processed"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})

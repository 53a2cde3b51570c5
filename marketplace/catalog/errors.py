"""Errors a client of the catalog can branch on."""

from __future__ import annotations

from marketplace.errors import (
    Conflict,
    FieldError,
    MarketplaceError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)


class ProductNotFound(NotFound):
    code = "product_not_found"
    title = "No such product"


class VariantNotFound(NotFound):
    code = "variant_not_found"
    title = "No such variant of this product"


class LotNotFound(NotFound):
    code = "lot_not_found"
    title = "No such lot of this product"


class ImageNotFound(NotFound):
    code = "image_not_found"
    title = "No such image"


class TraceCodeNotFound(NotFound):
    code = "trace_code_not_found"
    title = "No lot has this trace code"


class NotYourProduct(PermissionDenied):
    """The product is on public sale (its existence is no secret) but belongs to another
    seller. A product that is not public answers 404 instead, as if it did not exist."""

    code = "not_your_product"
    title = "This product belongs to another seller"


class NotYourSeller(PermissionDenied):
    code = "not_your_seller"
    title = "You may not act for this household or cooperative"


class InvalidField(ValidationFailed):
    """A field that is well-formed but breaks a catalog rule; `field` names it."""

    code = "invalid_field"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=[FieldError(field, message)])
        self.field = field


class UnknownSeller(InvalidField):
    code = "unknown_seller"
    title = "No such household or cooperative"


class NotAMember(InvalidField):
    code = "not_a_member"
    title = "The household is not a member of the cooperative on the harvest date"


class InvalidCursor(InvalidField):
    code = "invalid_cursor"
    title = "The cursor is not one this listing handed out"

    def __init__(self) -> None:
        super().__init__("cursor", "not a cursor from this listing; start again without one")


class PricedVariantRequired(Conflict):
    code = "priced_variant_required"
    title = "A product needs at least one active variant with a price to be listed"


class CooperativeLotRequired(Conflict):
    """A cooperative's revenue is split among members by their contributions to the lot:
    with no contribution recorded there is nobody to pay, so nothing may be sold."""

    code = "cooperative_lot_required"
    title = "A cooperative product needs a lot with member contributions to be listed"


class ListedProductNeedsVariant(Conflict):
    code = "listed_product_needs_variant"
    title = "The last active variant of a listed product cannot be deactivated; unlist it first"


class DuplicateVariantLabel(Conflict):
    code = "duplicate_variant_label"
    title = "The product already has a variant with this label"

    def __init__(self, label: str) -> None:
        super().__init__(
            f"label: the product already has a variant labelled {label!r}",
            errors=[FieldError("label", "already used by another variant of this product")],
        )


class UploadTooLarge(MarketplaceError):
    status_code = 413
    code = "upload_too_large"
    title = "The file is larger than uploads may be"

    def __init__(self, field: str, max_bytes: int) -> None:
        message = f"at most {max_bytes} bytes"
        super().__init__(f"{field}: {message}", errors=[FieldError(field, message)])


class TooManyImages(Conflict):
    code = "too_many_images"
    title = "The product has as many images as it may have"


class UploadMissing(Conflict):
    code = "upload_missing"
    title = "Nothing was uploaded for this image yet; PUT the file to the upload URL first"


class ImageAlreadyDecided(Conflict):
    code = "image_already_decided"
    title = "The image was already checked"


class IllegalImageTransition(Exception):
    """A bug, not a client error: the task moved an image out of an unexpected state."""

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"image cannot go from {current} to {target}")


class MediaUnavailable(NotFound):
    """Media served by the API itself exist only with the filesystem store."""

    code = "media_not_found"
    title = "No such media object"

"""Request and response bodies of the catalog.

Money is an integer number of đồng and must arrive as a JSON integer: the controllers decode
bodies strictly (`"180000"` and `180000.0` are refused naming the field), because a price
that only looks like a number is a client bug worth reporting, not guessing.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from marketplace.catalog.models import (
    MAX_PRICE_AMOUNT,
    Category,
    CertificationKind,
    ImageStatus,
    LotUnit,
    ProductStatus,
    SellerKind,
)

MAX_STOCK = 10_000_000
MAX_LOT_QUANTITY = 100_000_000
MAX_VARIANTS = 20

Name = Annotated[str, Meta(min_length=1, max_length=200, examples=["Bưởi da xanh Hương Trà"])]
Description = Annotated[str, Meta(max_length=5000)]
Region = Annotated[str, Meta(max_length=200, examples=["Hương Trà, Huế"])]
Month = Annotated[int, Meta(ge=1, le=12)]
SeasonMonths = Annotated[list[Month], Meta(max_length=12, examples=[[8, 9, 10, 11]])]
PriceAmount = Annotated[
    int, Meta(gt=0, le=MAX_PRICE_AMOUNT, description="Integer đồng", examples=[180000])
]
Stock = Annotated[int, Meta(ge=0, le=MAX_STOCK)]
VariantLabel = Annotated[str, Meta(min_length=1, max_length=80, examples=["hộp 2 kg"])]
WeightGrams = Annotated[int, Meta(gt=0, le=1_000_000)]
LotQuantity = Annotated[int, Meta(gt=0, le=MAX_LOT_QUANTITY)]
Certifier = Annotated[str, Meta(min_length=1, max_length=200)]
CertificateNumber = Annotated[str, Meta(min_length=1, max_length=64)]
Scope = Annotated[str, Meta(max_length=2000)]
Stars = Annotated[int, Meta(ge=1, le=5)]


class VariantCreate(msgspec.Struct, forbid_unknown_fields=True):
    label: VariantLabel
    price_amount: PriceAmount
    available: Stock = 0
    weight_grams: WeightGrams | None = None


class VariantUpdate(msgspec.Struct, forbid_unknown_fields=True):
    label: VariantLabel | UnsetType = UNSET
    price_amount: PriceAmount | UnsetType = UNSET
    available: Stock | UnsetType = UNSET
    weight_grams: WeightGrams | UnsetType | None = UNSET
    is_active: bool | UnsetType = UNSET


class ProductCreate(msgspec.Struct, forbid_unknown_fields=True):
    seller_kind: SellerKind
    name: Name
    category: Category
    household_id: uuid.UUID | None = None
    cooperative_id: uuid.UUID | None = None
    description: Description = ""
    region: Region = ""
    season_months: SeasonMonths = msgspec.field(default_factory=list)
    variants: Annotated[list[VariantCreate], Meta(max_length=MAX_VARIANTS)] = msgspec.field(
        default_factory=list
    )


class ProductUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | UnsetType = UNSET
    category: Category | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    region: Region | UnsetType = UNSET
    season_months: SeasonMonths | UnsetType = UNSET
    status: ProductStatus | UnsetType = UNSET
    """`listed` puts the product on sale (when the listing rules allow), `unlisted` takes it
    off; `draft` cannot be set."""


class ContributionCreate(msgspec.Struct, forbid_unknown_fields=True):
    household_id: uuid.UUID
    quantity: LotQuantity


class LotCreate(msgspec.Struct, forbid_unknown_fields=True):
    harvest_date: date
    quantity: LotQuantity
    unit: LotUnit = LotUnit.KG
    contributions: Annotated[list[ContributionCreate], Meta(max_length=500)] = msgspec.field(
        default_factory=list
    )
    """Cooperative lots only: each member household's share, in the lot's unit."""


class ContributionsCreate(msgspec.Struct, forbid_unknown_fields=True):
    contributions: Annotated[list[ContributionCreate], Meta(min_length=1, max_length=500)]


class CertificationCreate(msgspec.Struct, forbid_unknown_fields=True):
    kind: CertificationKind
    certifier: Certifier
    number: CertificateNumber
    valid_from: date
    product_id: uuid.UUID | None = None
    household_id: uuid.UUID | None = None
    scope: Scope = ""
    stars: Stars | None = None
    """OCOP only (1-5)."""
    valid_to: date | None = None
    """Omitted: VietGAP runs its default validity, a 3-5 star OCOP 36 months."""


class UploadSlotCreate(msgspec.Struct, forbid_unknown_fields=True):
    content_type: Annotated[str, Meta(max_length=100, examples=["image/jpeg"])]
    filename: Annotated[str, Meta(max_length=255, examples=["bưởi da xanh.jpg"])]
    size: Annotated[int, Meta(gt=0, description="Bytes the client will upload")]


# ---------------------------------------------------------------------------------------------
# Responses


class VariantRead(msgspec.Struct):
    id: uuid.UUID
    label: str
    price_amount: int
    available: int
    weight_grams: int | None
    is_active: bool


class CertificationRead(msgspec.Struct):
    id: uuid.UUID
    kind: CertificationKind
    subject: str
    """`product` or `household`: what the certificate was issued for."""
    certifier: str
    number: str
    scope: str
    stars: int | None
    valid_from: date
    valid_to: date
    valid: bool
    """Valid on today's date (Vietnam): from `valid_from` up to the day before `valid_to`."""


class ImageRead(msgspec.Struct):
    """A verified image: only WebP renditions, never the upload itself."""

    id: uuid.UUID
    width: int | None
    height: int | None
    renditions: dict[str, str]
    """Rendition width -> URL (redirects to a short-lived signed URL of the object)."""


class ImageOwnerRead(msgspec.Struct):
    id: uuid.UUID
    status: ImageStatus
    reject_reason: str | None
    original_filename: str
    width: int | None
    height: int | None
    renditions: dict[str, str]
    created_at: datetime


class SellerSummary(msgspec.Struct):
    """What the public sees of a seller: a household's given name and commune, never its
    full name, address or phone."""

    kind: SellerKind
    name: str
    commune_code: str
    commune_name: str
    province_code: str
    province_name: str


class LotSummary(msgspec.Struct):
    trace_code: str
    harvest_date: date
    quantity: int
    unit: LotUnit


class ContributionRead(msgspec.Struct):
    household_id: uuid.UUID
    quantity: int


class LotRead(msgspec.Struct):
    id: uuid.UUID
    trace_code: str
    harvest_date: date
    quantity: int
    unit: LotUnit
    seller_kind: SellerKind
    household_id: uuid.UUID | None
    cooperative_id: uuid.UUID | None
    contributions: list[ContributionRead]
    trace_url: str


class ProductSummary(msgspec.Struct):
    id: uuid.UUID
    name: str
    category: Category
    region: str
    province_code: str
    commune_code: str
    seller_kind: SellerKind
    min_price_amount: int | None
    season_months: list[int]
    certifications: list[CertificationKind]
    """Kinds valid today, on the product or on its household."""
    image_url: str | None
    created_at: datetime


class ProductPage(msgspec.Struct):
    items: list[ProductSummary]
    next_cursor: str | None
    """Pass as `cursor` for the next page; None on the last page."""


class ProductRead(msgspec.Struct):
    id: uuid.UUID
    name: str
    description: str
    category: Category
    category_label: str
    region: str
    season_months: list[int]
    province_code: str
    commune_code: str
    min_price_amount: int | None
    seller: SellerSummary
    variants: list[VariantRead]
    certifications: list[CertificationRead]
    images: list[ImageRead]
    lots: list[LotSummary]
    created_at: datetime
    updated_at: datetime


class ProductOwnerRead(msgspec.Struct):
    """Everything about one of the caller's products, drafts and rejected images included."""

    id: uuid.UUID
    status: ProductStatus
    seller_kind: SellerKind
    household_id: uuid.UUID | None
    cooperative_id: uuid.UUID | None
    name: str
    description: str
    category: Category
    region: str
    season_months: list[int]
    province_code: str
    commune_code: str
    min_price_amount: int | None
    variants: list[VariantRead]
    lots: list[LotRead]
    certifications: list[CertificationRead]
    images: list[ImageOwnerRead]
    created_at: datetime
    updated_at: datetime


class ProductOwnerSummary(msgspec.Struct):
    id: uuid.UUID
    status: ProductStatus
    name: str
    category: Category
    min_price_amount: int | None
    created_at: datetime
    updated_at: datetime


class UploadSlotRead(msgspec.Struct):
    image_id: uuid.UUID
    upload_url: str
    method: str
    headers: dict[str, str]
    """Send these headers with the PUT."""
    expires_at: datetime
    max_bytes: int


class TraceProduct(msgspec.Struct):
    id: uuid.UUID
    name: str
    category: Category
    region: str


class TraceProducer(msgspec.Struct):
    kind: SellerKind
    name: str
    """A household's given name only, or the cooperative's name."""
    commune_name: str
    province_name: str
    contributing_households: int | None
    """For a cooperative lot: how many member households contributed to it."""


class TraceRead(msgspec.Struct):
    code: str
    harvest_date: date
    quantity: int
    unit: LotUnit
    product: TraceProduct
    producer: TraceProducer
    certifications: list[CertificationRead]
    trace_url: str
    qr_url: str


class NoticeRead(msgspec.Struct):
    id: uuid.UUID
    kind: str
    subject_id: uuid.UUID
    message: str
    due_on: date | None
    created_at: datetime
    read_at: datetime | None

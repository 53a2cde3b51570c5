"""Products, variants, lots with their producers' contributions, certifications and images.

Every product belongs to exactly one seller (a household or a cooperative); every lot names
who produced it, and a cooperative's lot records each member household's contribution, which
later splits the lot's revenue among members.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.catalog.errors import (
    CooperativeLotRequired,
    IllegalImageTransition,
    PricedVariantRequired,
)
from marketplace.db import Base

MAX_PRICE_AMOUNT = 100_000_000
"""Sanity cap for one variant's price (100 million đồng): catches a typo of extra zeros."""


class SellerKind(StrEnum):
    HOUSEHOLD = "household"
    COOPERATIVE = "cooperative"


class Category(StrEnum):
    FRUIT = "fruit"
    VEGETABLE = "vegetable"
    RICE_GRAIN = "rice_grain"
    PROCESSED = "processed"
    SEAFOOD = "seafood"
    LIVESTOCK = "livestock"
    HANDICRAFT = "handicraft"
    OTHER = "other"


class ProductStatus(StrEnum):
    DRAFT = "draft"
    LISTED = "listed"
    UNLISTED = "unlisted"


class CertificationKind(StrEnum):
    VIETGAP = "vietgap"
    OCOP = "ocop"


class LotUnit(StrEnum):
    KG = "kg"
    UNIT = "unit"


class NoticeKind(StrEnum):
    CERTIFICATE_EXPIRING = "certificate_expiring"


class ImageStatus(StrEnum):
    PENDING = "pending"
    UPLOADED = "uploaded"
    READY = "ready"
    REJECTED = "rejected"


SELLER_CHECK = (
    "(seller_kind = 'household' AND household_id IS NOT NULL AND cooperative_id IS NULL) OR "
    "(seller_kind = 'cooperative' AND cooperative_id IS NOT NULL AND household_id IS NULL)"
)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint(SELLER_CHECK, name="one_seller"),
        CheckConstraint("season_mask BETWEEN 0 AND 4095", name="season_mask_range"),
        Index("ix_products_listing", "status", "created_at", "id"),
        Index("ix_products_place", "province_code", "commune_code"),
        Index(
            "ix_products_search_text_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
        # Search tiers (marketplace.catalog.listing): the name equal to the query, then names
        # holding every word, both without reading the rest of the text.
        Index("ix_products_search_name", "search_name"),
        Index(
            "ix_products_search_name_trgm",
            "search_name",
            postgresql_using="gin",
            postgresql_ops={"search_name": "gin_trgm_ops"},
        ),
    )

    seller_kind: Mapped[str] = mapped_column(String(16))
    household_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT"), default=None, index=True
    )
    cooperative_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cooperatives.id", ondelete="RESTRICT"), default=None, index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(200), default="")
    season_mask: Mapped[int] = mapped_column(SmallInteger, default=0)
    """Bit m-1 set when month m is in season (12 bits)."""
    province_code: Mapped[str] = mapped_column(String(10))
    commune_code: Mapped[str] = mapped_column(String(10))
    admin_version: Mapped[str] = mapped_column(String(10), default="2025-07")
    status: Mapped[str] = mapped_column(String(16), default=ProductStatus.DRAFT.value)
    search_text: Mapped[str] = mapped_column(Text, default="")
    """Folded (no diacritics, lower case) name, region and description, for pg_trgm search."""
    search_name: Mapped[str] = mapped_column(Text, default="", server_default="")
    """The folded name alone: search ranks products whose name holds the query first."""
    min_price_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """Lowest variant price, kept by the service so the price filter needs no join."""

    def list_for_sale(self, *, has_active_variant: bool, has_contributed_lot: bool) -> None:
        """Buyers see only what can be bought and traced: at least one active priced variant,
        and for a cooperative a lot whose member contributions will split the revenue."""
        if not has_active_variant:
            raise PricedVariantRequired()
        if self.seller_kind == SellerKind.COOPERATIVE and not has_contributed_lot:
            raise CooperativeLotRequired()
        self.status = ProductStatus.LISTED.value

    def unlist(self) -> None:
        """A product taken off sale stays with its lots and history; only a draft never listed
        stays a draft."""
        if self.status == ProductStatus.LISTED:
            self.status = ProductStatus.UNLISTED.value


class Variant(Base):
    __tablename__ = "variants"
    __table_args__ = (
        CheckConstraint(
            f"price_amount > 0 AND price_amount <= {MAX_PRICE_AMOUNT}", name="price_range"
        ),
        CheckConstraint("available >= 0", name="available_non_negative"),
        UniqueConstraint("product_id", "label"),
    )

    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(80))
    """Size, grade or pack: "hộp 2 kg", "thùng 10 kg"."""
    price_amount: Mapped[int] = mapped_column(BigInteger)
    available: Mapped[int] = mapped_column(Integer, default=0)
    """Units that can still be sold; orders decrement it atomically (never below 0)."""
    weight_grams: Mapped[int | None] = mapped_column(Integer, default=None)
    is_active: Mapped[bool] = mapped_column(default=True)


class Lot(Base):
    __tablename__ = "lots"
    __table_args__ = (
        CheckConstraint(SELLER_CHECK, name="one_producer"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        UniqueConstraint("trace_code"),
    )

    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    trace_code: Mapped[str] = mapped_column(String(16))
    harvest_date: Mapped[date] = mapped_column(Date)
    quantity: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(8), default="kg")
    seller_kind: Mapped[str] = mapped_column(String(16))
    household_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT"), default=None
    )
    cooperative_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cooperatives.id", ondelete="RESTRICT"), default=None
    )


class LotContribution(Base):
    """A member household's share of a cooperative lot (kg or units, the lot's unit)."""

    __tablename__ = "lot_contributions"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        UniqueConstraint("lot_id", "household_id"),
    )

    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"))
    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT")
    )
    quantity: Mapped[int] = mapped_column(Integer)


class Certification(Base):
    __tablename__ = "certifications"
    __table_args__ = (
        CheckConstraint("valid_to > valid_from", name="valid_to_after_from"),
        CheckConstraint(
            "(product_id IS NOT NULL) <> (household_id IS NOT NULL)", name="one_subject"
        ),
        CheckConstraint(
            "(kind = 'ocop' AND stars BETWEEN 1 AND 5) OR (kind = 'vietgap' AND stars IS NULL)",
            name="stars_for_ocop",
        ),
        Index("ix_certifications_valid_to", "valid_to"),
    )

    kind: Mapped[str] = mapped_column(String(16))
    product_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), default=None, index=True
    )
    household_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), default=None, index=True
    )
    certifier: Mapped[str] = mapped_column(String(200))
    number: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text, default="")
    stars: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    """Valid on days before valid_to: a certificate stops being shown as valid on this day."""
    expiry_warned_at: Mapped[datetime | None] = mapped_column(default=None)


class ProductImage(Base):
    __tablename__ = "product_images"

    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    object_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=ImageStatus.PENDING.value)
    reject_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    declared_content_type: Mapped[str] = mapped_column(String(64))
    original_filename: Mapped[str] = mapped_column(String(120), default="")
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    renditions: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    """Rendition width -> object key, written only once the image is verified."""
    position: Mapped[int] = mapped_column(Integer, default=0)

    def mark_uploaded(self) -> bool:
        """The client says its PUT finished; True when this call moved the image (a repeated
        confirm is answered with the same image and queues nothing new)."""
        if self.status == ImageStatus.PENDING:
            self.status = ImageStatus.UPLOADED.value
            return True
        return False

    def mark_ready(
        self, *, width: int, height: int, size_bytes: int, renditions: dict[str, str]
    ) -> None:
        """Only a checked upload becomes servable, and only through its renditions."""
        if self.status != ImageStatus.UPLOADED:
            raise IllegalImageTransition(self.status, ImageStatus.READY)
        self.status = ImageStatus.READY.value
        self.width = width
        self.height = height
        self.size_bytes = size_bytes
        self.renditions = renditions
        self.reject_reason = None

    def mark_rejected(self, reason: str) -> None:
        if self.status != ImageStatus.UPLOADED:
            raise IllegalImageTransition(self.status, ImageStatus.REJECTED)
        self.status = ImageStatus.REJECTED.value
        self.reject_reason = reason[:64]
        self.renditions = {}


class SellerNotice(Base):
    """Something a seller must act on, kept until read: the durable record of a warning, so a
    warning is never lost to a failed SMS and never sent twice for one subject."""

    __tablename__ = "seller_notices"
    __table_args__ = (
        CheckConstraint(SELLER_CHECK, name="one_seller"),
        UniqueConstraint("kind", "subject_id"),
        Index("ix_seller_notices_household", "household_id", "created_at"),
        Index("ix_seller_notices_cooperative", "cooperative_id", "created_at"),
    )

    kind: Mapped[str] = mapped_column(String(32))
    seller_kind: Mapped[str] = mapped_column(String(16))
    household_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), default=None
    )
    cooperative_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cooperatives.id", ondelete="CASCADE"), default=None
    )
    subject_id: Mapped[uuid.UUID]
    """What the notice is about (a certification id for `certificate_expiring`)."""
    message: Mapped[str] = mapped_column(Text)
    due_on: Mapped[date | None] = mapped_column(Date, default=None)
    read_at: Mapped[datetime | None] = mapped_column(default=None)

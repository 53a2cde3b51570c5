"""Every query of the catalog but the public listing's (`marketplace.catalog.listing`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import (
    ColumnElement,
    Row,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from marketplace.catalog.errors import DuplicateVariantLabel
from marketplace.catalog.models import (
    Certification,
    ImageStatus,
    Lot,
    LotContribution,
    Product,
    ProductImage,
    SellerNotice,
    Variant,
)


class ProductRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, product: Product) -> Product:
        self._session.add(product)
        await self._session.flush()
        return product

    async def get(self, product_id: uuid.UUID) -> Product | None:
        return await self._session.get(Product, product_id)

    async def get_for_update(self, product_id: uuid.UUID) -> Product | None:
        """Locks the product: variant, lot and status changes of one product serialise on
        it, so the listing rules are checked against what is committed."""
        result = await self._session.execute(
            select(Product).where(Product.id == product_id).with_for_update()
        )
        return result.scalar_one_or_none()

    async def for_seller(
        self, *, household_id: uuid.UUID | None, cooperative_id: uuid.UUID | None, limit: int
    ) -> Sequence[Product]:
        query = select(Product)
        if household_id is not None:
            query = query.where(Product.household_id == household_id)
        else:
            query = query.where(Product.cooperative_id == cooperative_id)
        result = await self._session.execute(
            query.order_by(Product.created_at.desc(), Product.id.desc()).limit(limit)
        )
        return result.scalars().all()

    async def refresh_min_price(self, product: Product) -> int | None:
        """Recompute the lowest active price in the same statement that stores it."""
        await self._session.flush()
        lowest = (
            select(func.min(Variant.price_amount))
            .where(Variant.product_id == product.id, Variant.is_active.is_(True))
            .scalar_subquery()
        )
        result = await self._session.execute(
            update(Product)
            .where(Product.id == product.id)
            .values(min_price_amount=lowest)
            .returning(Product.min_price_amount),
            execution_options={"synchronize_session": False},
        )
        value: int | None = result.scalar_one()
        # The row already holds it: tell the session without marking the object dirty.
        set_committed_value(product, "min_price_amount", value)
        return value

    async def has_active_variant(self, product_id: uuid.UUID) -> bool:
        return bool(
            await self._session.scalar(
                select(
                    exists().where(Variant.product_id == product_id, Variant.is_active.is_(True))
                )
            )
        )

    async def has_contributed_lot(self, product_id: uuid.UUID) -> bool:
        return bool(
            await self._session.scalar(
                select(
                    exists()
                    .where(Lot.product_id == product_id)
                    .where(LotContribution.lot_id == Lot.id)
                )
            )
        )

    async def flush(self) -> None:
        await self._session.flush()


class VariantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, variant: Variant) -> Variant:
        """In a savepoint: a label taken (also by a concurrent request) is a clean 409."""
        try:
            async with self._session.begin_nested():
                self._session.add(variant)
        except IntegrityError as exc:
            if "uq_variants_product_id_label" in str(exc.orig):
                raise DuplicateVariantLabel(variant.label) from None
            raise
        return variant

    async def flush_changes(self, label: str) -> None:
        try:
            async with self._session.begin_nested():
                await self._session.flush()
        except IntegrityError as exc:
            if "uq_variants_product_id_label" in str(exc.orig):
                raise DuplicateVariantLabel(label) from None
            raise

    async def get(self, product_id: uuid.UUID, variant_id: uuid.UUID) -> Variant | None:
        result = await self._session.execute(
            select(Variant).where(Variant.id == variant_id, Variant.product_id == product_id)
        )
        return result.scalar_one_or_none()

    async def for_product(self, product_id: uuid.UUID, *, active_only: bool) -> Sequence[Variant]:
        query = select(Variant).where(Variant.product_id == product_id)
        if active_only:
            query = query.where(Variant.is_active.is_(True))
        result = await self._session.execute(
            query.order_by(Variant.price_amount, Variant.created_at, Variant.id)
        )
        return result.scalars().all()

    async def count_active(self, product_id: uuid.UUID) -> int:
        return int(
            await self._session.scalar(
                select(func.count())
                .select_from(Variant)
                .where(Variant.product_id == product_id, Variant.is_active.is_(True))
            )
            or 0
        )


class LotRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, lot: Lot) -> bool:
        """False when the trace code is already taken (the caller draws another); the
        savepoint keeps the transaction usable."""
        try:
            async with self._session.begin_nested():
                self._session.add(lot)
        except IntegrityError as exc:
            if "uq_lots_trace_code" in str(exc.orig):
                # The savepoint's rollback made the lot transient again: it may be re-added.
                return False
            raise
        return True

    async def add_contributions(self, contributions: Sequence[LotContribution]) -> None:
        self._session.add_all(contributions)
        await self._session.flush()

    async def get(self, product_id: uuid.UUID, lot_id: uuid.UUID) -> Lot | None:
        result = await self._session.execute(
            select(Lot).where(Lot.id == lot_id, Lot.product_id == product_id).with_for_update()
        )
        return result.scalar_one_or_none()

    async def by_trace_code(self, code: str) -> tuple[Lot, Product] | None:
        result = await self._session.execute(
            select(Lot, Product)
            .join(Product, Product.id == Lot.product_id)
            .where(Lot.trace_code == code)
        )
        row = result.one_or_none()
        return None if row is None else (row[0], row[1])

    async def for_product(self, product_id: uuid.UUID, *, limit: int) -> Sequence[Lot]:
        result = await self._session.execute(
            select(Lot)
            .where(Lot.product_id == product_id)
            .order_by(Lot.harvest_date.desc(), Lot.created_at.desc(), Lot.id)
            .limit(limit)
        )
        return result.scalars().all()

    async def contributions(self, lot_ids: Sequence[uuid.UUID]) -> Sequence[LotContribution]:
        if not lot_ids:
            return []
        result = await self._session.execute(
            select(LotContribution)
            .where(LotContribution.lot_id.in_(lot_ids))
            .order_by(LotContribution.lot_id, LotContribution.created_at, LotContribution.id)
        )
        return result.scalars().all()

    async def contributed_total(self, lot_id: uuid.UUID) -> int:
        return int(
            await self._session.scalar(
                select(func.coalesce(func.sum(LotContribution.quantity), 0)).where(
                    LotContribution.lot_id == lot_id
                )
            )
            or 0
        )

    async def contributor_ids(self, lot_id: uuid.UUID) -> set[uuid.UUID]:
        result = await self._session.execute(
            select(LotContribution.household_id).where(LotContribution.lot_id == lot_id)
        )
        return set(result.scalars().all())


class CertificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, certification: Certification) -> Certification:
        self._session.add(certification)
        await self._session.flush()
        return certification

    async def for_subjects(
        self, *, product_id: uuid.UUID | None, household_id: uuid.UUID | None
    ) -> Sequence[Certification]:
        conditions: list[ColumnElement[bool]] = []
        if product_id is not None:
            conditions.append(Certification.product_id == product_id)
        if household_id is not None:
            conditions.append(Certification.household_id == household_id)
        if not conditions:
            return []
        result = await self._session.execute(
            select(Certification)
            .where(or_(*conditions))
            .order_by(Certification.valid_to.desc(), Certification.id)
        )
        return result.scalars().all()

    async def claim_expiring(
        self, *, today: date, horizon: date, now: datetime, limit: int
    ) -> Sequence[Row[uuid.UUID, str, str, date, uuid.UUID | None, uuid.UUID | None]]:
        """Mark up to `limit` certificates expiring in (today, horizon] as warned and return
        them, in one statement. `expiry_warned_at IS NULL` is re-checked on each row after
        its lock is taken, so of two concurrent runs only one claims a certificate."""
        due = (
            select(Certification.id)
            .where(
                Certification.expiry_warned_at.is_(None),
                Certification.valid_to > today,
                Certification.valid_to <= horizon,
            )
            .order_by(Certification.valid_to, Certification.id)
            .limit(limit)
            .scalar_subquery()
        )
        result = await self._session.execute(
            update(Certification)
            .where(Certification.id.in_(due), Certification.expiry_warned_at.is_(None))
            .values(expiry_warned_at=now, updated_at=now)
            .returning(
                Certification.id,
                Certification.kind,
                Certification.number,
                Certification.valid_to,
                Certification.product_id,
                Certification.household_id,
            ),
            execution_options={"synchronize_session": False},
        )
        return result.all()

    async def products_sellers(
        self, product_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[str, uuid.UUID | None, uuid.UUID | None, str]]:
        """Seller kind, household, cooperative and name of each product."""
        if not product_ids:
            return {}
        result = await self._session.execute(
            select(
                Product.id,
                Product.seller_kind,
                Product.household_id,
                Product.cooperative_id,
                Product.name,
            ).where(Product.id.in_(product_ids))
        )
        return {row[0]: (row[1], row[2], row[3], row[4]) for row in result}


class ImageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, image: ProductImage) -> ProductImage:
        self._session.add(image)
        await self._session.flush()
        return image

    async def get(self, product_id: uuid.UUID, image_id: uuid.UUID) -> ProductImage | None:
        result = await self._session.execute(
            select(ProductImage)
            .where(ProductImage.id == image_id, ProductImage.product_id == product_id)
            .with_for_update()
        )
        return result.scalar_one_or_none()

    async def get_ready(self, image_id: uuid.UUID) -> ProductImage | None:
        result = await self._session.execute(
            select(ProductImage).where(
                ProductImage.id == image_id, ProductImage.status == ImageStatus.READY.value
            )
        )
        return result.scalar_one_or_none()

    async def lock_for_processing(self, image_id: uuid.UUID) -> ProductImage | None:
        """The image row, locked for the length of the check; None when missing or when
        another run of the same job holds it (that run will finish the work)."""
        result = await self._session.execute(
            select(ProductImage)
            .where(ProductImage.id == image_id)
            .with_for_update(skip_locked=True)
        )
        return result.scalar_one_or_none()

    async def for_product(
        self, product_id: uuid.UUID, *, ready_only: bool
    ) -> Sequence[ProductImage]:
        query = select(ProductImage).where(ProductImage.product_id == product_id)
        if ready_only:
            query = query.where(ProductImage.status == ImageStatus.READY.value)
        result = await self._session.execute(
            query.order_by(ProductImage.position, ProductImage.created_at, ProductImage.id)
        )
        return result.scalars().all()

    async def count_kept(self, product_id: uuid.UUID) -> int:
        """Images not rejected: what counts towards a product's image cap."""
        return int(
            await self._session.scalar(
                select(func.count())
                .select_from(ProductImage)
                .where(
                    ProductImage.product_id == product_id,
                    ProductImage.status != ImageStatus.REJECTED.value,
                )
            )
            or 0
        )

    async def stuck_uploaded(self, before: datetime, limit: int) -> Sequence[uuid.UUID]:
        """Confirmed images whose check never ran (the job was lost between commit and
        send, or its worker died past the retries)."""
        result = await self._session.execute(
            select(ProductImage.id)
            .where(
                ProductImage.status == ImageStatus.UPLOADED.value,
                ProductImage.updated_at < before,
            )
            .order_by(ProductImage.updated_at)
            .limit(limit)
        )
        return result.scalars().all()

    async def flush(self) -> None:
        await self._session.flush()


class NoticeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_all(self, notices: Sequence[SellerNotice]) -> None:
        self._session.add_all(notices)
        await self._session.flush()

    async def for_seller(
        self, *, household_id: uuid.UUID | None, cooperative_id: uuid.UUID | None, limit: int
    ) -> Sequence[SellerNotice]:
        query = select(SellerNotice)
        if household_id is not None:
            query = query.where(SellerNotice.household_id == household_id)
        else:
            query = query.where(SellerNotice.cooperative_id == cooperative_id)
        result = await self._session.execute(
            query.order_by(SellerNotice.created_at.desc(), SellerNotice.id.desc()).limit(limit)
        )
        return result.scalars().all()

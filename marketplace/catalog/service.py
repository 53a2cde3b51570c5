"""Sellers managing their products: products, variants, lots and certifications.

Rules kept here:
- A product belongs to one household or one cooperative and is listed under its seller's
  commune and province.
- `search_text` is the folded name, region, category label and description, and
  `search_name` the folded name alone, computed here so the stored text and a folded query
  come from one function (`marketplace.text.fold`).
- `min_price_amount` is recomputed in the same transaction as every variant change.
- Listing needs an active priced variant, and for a cooperative a lot with contributions.
- A cooperative lot's contributions come from households that are members on the harvest
  day; together they never exceed the lot.
- Certificates: `valid_to` after `valid_from`; stars only (and always) for OCOP; a missing
  `valid_to` follows `CertificationPolicy`.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import date

import structlog
from msgspec import UNSET

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.catalog.access import ProductAccess
from marketplace.catalog.certificates import (
    CertificationPolicy,
    default_valid_to,
    is_valid_on,
    vietnam_today,
    warning_horizon,
)
from marketplace.catalog.errors import (
    InvalidField,
    ListedProductNeedsVariant,
    LotNotFound,
    NotAMember,
    VariantNotFound,
)
from marketplace.catalog.media import image_owner_read
from marketplace.catalog.models import (
    Category,
    Certification,
    CertificationKind,
    Lot,
    LotContribution,
    NoticeKind,
    Product,
    ProductStatus,
    SellerKind,
    SellerNotice,
    Variant,
)
from marketplace.catalog.repository import (
    CertificationRepository,
    ImageRepository,
    LotRepository,
    NoticeRepository,
    ProductRepository,
    VariantRepository,
)
from marketplace.catalog.schemas import (
    CertificationCreate,
    CertificationRead,
    ContributionCreate,
    ContributionRead,
    ContributionsCreate,
    LotCreate,
    LotRead,
    NoticeRead,
    ProductCreate,
    ProductOwnerRead,
    ProductOwnerSummary,
    ProductUpdate,
    VariantCreate,
    VariantRead,
    VariantUpdate,
)
from marketplace.catalog.storage import public_base_url
from marketplace.db import utcnow
from marketplace.resources import Clock
from marketplace.settings import Settings
from marketplace.text import fold
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

CATEGORY_LABELS: dict[Category, str] = {
    Category.FRUIT: "Trái cây",
    Category.VEGETABLE: "Rau củ",
    Category.RICE_GRAIN: "Lúa gạo, ngũ cốc",
    Category.PROCESSED: "Sản phẩm chế biến",
    Category.SEAFOOD: "Thủy hải sản",
    Category.LIVESTOCK: "Chăn nuôi",
    Category.HANDICRAFT: "Thủ công mỹ nghệ",
    Category.OTHER: "Sản phẩm khác",
}
TRACE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
"""No 0/O, 1/I: a code read aloud over the phone or off a crate cannot be misread."""
TRACE_CODE_LENGTH = 8
TRACE_CODE_ATTEMPTS = 5
MAX_SELLER_PAGE = 200
WARN_BATCH = 500


def season_mask(months: Sequence[int]) -> int:
    mask = 0
    for month in months:
        mask |= 1 << (month - 1)
    return mask


def season_months(mask: int) -> list[int]:
    return [month for month in range(1, 13) if mask & (1 << (month - 1))]


def search_text(name: str, region: str, category: Category, description: str) -> str:
    return fold(" ".join((name, region, CATEGORY_LABELS[category], description)))


def new_trace_code() -> str:
    return "".join(secrets.choice(TRACE_ALPHABET) for _ in range(TRACE_CODE_LENGTH))


def normalise_trace_code(raw: str) -> str:
    """What a person typed or a scanner read: case, spaces and dashes do not matter."""
    return "".join(ch for ch in raw.upper() if ch not in " -")


def trace_url(settings: Settings, code: str) -> str:
    return f"{public_base_url(settings)}/trace/{code}"


def variant_read(variant: Variant) -> VariantRead:
    return VariantRead(
        id=variant.id,
        label=variant.label,
        price_amount=variant.price_amount,
        available=variant.available,
        weight_grams=variant.weight_grams,
        is_active=variant.is_active,
    )


def certification_read(certification: Certification, today: date) -> CertificationRead:
    return CertificationRead(
        id=certification.id,
        kind=CertificationKind(certification.kind),
        subject="product" if certification.product_id is not None else "household",
        certifier=certification.certifier,
        number=certification.number,
        scope=certification.scope,
        stars=certification.stars,
        valid_from=certification.valid_from,
        valid_to=certification.valid_to,
        valid=is_valid_on(certification.valid_from, certification.valid_to, today),
    )


def lot_read(lot: Lot, contributions: Sequence[LotContribution], settings: Settings) -> LotRead:
    return LotRead(
        id=lot.id,
        trace_code=lot.trace_code,
        harvest_date=lot.harvest_date,
        quantity=lot.quantity,
        unit=lot.unit,  # type: ignore[arg-type]  # stored as the LotUnit value
        seller_kind=SellerKind(lot.seller_kind),
        household_id=lot.household_id,
        cooperative_id=lot.cooperative_id,
        contributions=[
            ContributionRead(household_id=c.household_id, quantity=c.quantity)
            for c in contributions
            if c.lot_id == lot.id
        ],
        trace_url=trace_url(settings, lot.trace_code),
    )


def owner_summary(product: Product) -> ProductOwnerSummary:
    return ProductOwnerSummary(
        id=product.id,
        status=ProductStatus(product.status),
        name=product.name,
        category=Category(product.category),
        min_price_amount=product.min_price_amount,
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


def notice_read(notice: SellerNotice) -> NoticeRead:
    return NoticeRead(
        id=notice.id,
        kind=notice.kind,
        subject_id=notice.subject_id,
        message=notice.message,
        due_on=notice.due_on,
        created_at=notice.created_at,
        read_at=notice.read_at,
    )


def expiry_message(kind: str, number: str, valid_to: date) -> str:
    label = "VietGAP" if kind == CertificationKind.VIETGAP else "OCOP"
    return (
        f"Chứng nhận {label} số {number} hết hiệu lực ngày {valid_to:%d/%m/%Y}. "
        "Vui lòng liên hệ tổ chức chứng nhận để gia hạn."
    )


class CatalogService:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        clock: Clock = utcnow,
        policy: CertificationPolicy | None = None,
    ) -> None:
        self._uow = uow
        self._settings = settings
        self._clock = clock
        self._policy = policy or CertificationPolicy()
        session = uow.session
        self._products = ProductRepository(session)
        self._variants = VariantRepository(session)
        self._lots = LotRepository(session)
        self._certifications = CertificationRepository(session)
        self._images = ImageRepository(session)
        self._notices = NoticeRepository(session)
        self._access = ProductAccess(uow, settings, clock)

    def today(self) -> date:
        return vietnam_today(self._clock())

    # ---- Products ------------------------------------------------------------------------

    async def create_product(
        self, user: AuthenticatedUser, data: ProductCreate
    ) -> ProductOwnerRead:
        seller = await self._access.seller_for_new_product(
            user, data.seller_kind, data.household_id, data.cooperative_id
        )
        labels = [variant.label.strip() for variant in data.variants]
        if len(set(labels)) != len(labels):
            raise InvalidField("variants", "two variants have the same label")
        name, region, description = data.name.strip(), data.region.strip(), data.description
        if not name:
            raise InvalidField("name", "must not be blank")
        product = await self._products.add(
            Product(
                seller_kind=seller.kind.value,
                household_id=seller.household_id,
                cooperative_id=seller.cooperative_id,
                name=name,
                description=description,
                category=data.category.value,
                region=region,
                season_mask=season_mask(data.season_months),
                province_code=seller.province_code,
                commune_code=seller.commune_code,
                admin_version=seller.admin_version,
                status=ProductStatus.DRAFT.value,
                search_text=search_text(name, region, data.category, description),
                search_name=fold(name),
            )
        )
        for variant in data.variants:
            await self._variants.add(self._new_variant(product.id, variant))
        await self._products.refresh_min_price(product)
        await self._access.record(seller.acting, "catalog.product_create", product.id)
        log.info("product_created", product_id=str(product.id), by_user_id=str(user.id))
        return await self._owner_read(product)

    async def update_product(
        self, user: AuthenticatedUser, product_id: uuid.UUID, data: ProductUpdate
    ) -> ProductOwnerRead:
        editable = await self._access.product_for_edit(user, product_id)
        product = editable.product
        if data.name is not UNSET:
            if not data.name.strip():
                raise InvalidField("name", "must not be blank")
            product.name = data.name.strip()
        if data.category is not UNSET:
            product.category = data.category.value
        if data.description is not UNSET:
            product.description = data.description
        if data.region is not UNSET:
            product.region = data.region.strip()
        if data.season_months is not UNSET:
            product.season_mask = season_mask(data.season_months)
        product.search_text = search_text(
            product.name, product.region, Category(product.category), product.description
        )
        product.search_name = fold(product.name)
        if data.status is not UNSET and data.status.value != product.status:
            await self._change_status(product, data.status)
        await self._products.flush()
        await self._access.record(editable.acting, "catalog.product_update", product.id)
        return await self._owner_read(product)

    async def _change_status(self, product: Product, status: ProductStatus) -> None:
        if status is ProductStatus.LISTED:
            product.list_for_sale(
                has_active_variant=await self._products.has_active_variant(product.id),
                has_contributed_lot=await self._products.has_contributed_lot(product.id),
            )
        elif status is ProductStatus.UNLISTED:
            product.unlist()
        else:
            raise InvalidField("status", "a product cannot go back to draft; unlist it")

    async def owner_view(self, user: AuthenticatedUser, product_id: uuid.UUID) -> ProductOwnerRead:
        editable = await self._access.product_for_edit(user, product_id)
        return await self._owner_read(editable.product)

    async def seller_products(
        self,
        user: AuthenticatedUser,
        household_id: uuid.UUID | None,
        cooperative_id: uuid.UUID | None,
    ) -> list[ProductOwnerSummary]:
        household_id, cooperative_id = await self._access.seller_for_reading(
            user, household_id, cooperative_id
        )
        products = await self._products.for_seller(
            household_id=household_id, cooperative_id=cooperative_id, limit=MAX_SELLER_PAGE
        )
        return [owner_summary(p) for p in products]

    # ---- Variants ------------------------------------------------------------------------

    def _new_variant(self, product_id: uuid.UUID, data: VariantCreate) -> Variant:
        label = data.label.strip()
        if not label:
            raise InvalidField("label", "must not be blank")
        return Variant(
            product_id=product_id,
            label=label,
            price_amount=data.price_amount,
            available=data.available,
            weight_grams=data.weight_grams,
            is_active=True,
        )

    async def add_variant(
        self, user: AuthenticatedUser, product_id: uuid.UUID, data: VariantCreate
    ) -> VariantRead:
        editable = await self._access.product_for_edit(user, product_id)
        variant = await self._variants.add(self._new_variant(editable.product.id, data))
        await self._products.refresh_min_price(editable.product)
        await self._access.record(editable.acting, "catalog.variant_create", variant.id)
        return variant_read(variant)

    async def update_variant(
        self,
        user: AuthenticatedUser,
        product_id: uuid.UUID,
        variant_id: uuid.UUID,
        data: VariantUpdate,
    ) -> VariantRead:
        editable = await self._access.product_for_edit(user, product_id)
        product = editable.product
        variant = await self._variants.get(product.id, variant_id)
        if variant is None:
            raise VariantNotFound()
        # The product row is locked, so the count of active variants cannot change under us.
        if (
            data.is_active is False
            and variant.is_active
            and product.status == ProductStatus.LISTED
            and await self._variants.count_active(product.id) <= 1
        ):
            raise ListedProductNeedsVariant()
        if data.label is not UNSET:
            if not data.label.strip():
                raise InvalidField("label", "must not be blank")
            variant.label = data.label.strip()
        if data.price_amount is not UNSET:
            variant.price_amount = data.price_amount
        if data.available is not UNSET:
            variant.available = data.available
        if data.weight_grams is not UNSET:
            variant.weight_grams = data.weight_grams
        if data.is_active is not UNSET:
            variant.is_active = data.is_active
        await self._variants.flush_changes(variant.label)
        await self._products.refresh_min_price(product)
        await self._access.record(editable.acting, "catalog.variant_update", variant.id)
        return variant_read(variant)

    # ---- Lots ----------------------------------------------------------------------------

    async def add_lot(
        self, user: AuthenticatedUser, product_id: uuid.UUID, data: LotCreate
    ) -> LotRead:
        editable = await self._access.product_for_edit(user, product_id)
        product = editable.product
        if data.harvest_date > self.today():
            raise InvalidField("harvest_date", "a lot is recorded once harvested, not before")
        if product.seller_kind == SellerKind.HOUSEHOLD and data.contributions:
            raise InvalidField(
                "contributions", "only a cooperative's lots record member contributions"
            )
        lot = Lot(
            product_id=product.id,
            harvest_date=data.harvest_date,
            quantity=data.quantity,
            unit=data.unit.value,
            seller_kind=product.seller_kind,
            household_id=product.household_id,
            cooperative_id=product.cooperative_id,
        )
        contributions: list[LotContribution] = []
        if data.contributions:
            contributions = await self._checked_contributions(
                product, lot, data.contributions, already=set(), already_total=0
            )
        await self._insert_with_trace_code(lot)
        for contribution in contributions:
            contribution.lot_id = lot.id
        await self._lots.add_contributions(contributions)
        await self._access.record(editable.acting, "catalog.lot_create", lot.id)
        return lot_read(lot, contributions, self._settings)

    async def add_contributions(
        self,
        user: AuthenticatedUser,
        product_id: uuid.UUID,
        lot_id: uuid.UUID,
        data: ContributionsCreate,
    ) -> LotRead:
        editable = await self._access.product_for_edit(user, product_id)
        product = editable.product
        lot = await self._lots.get(product.id, lot_id)
        if lot is None:
            raise LotNotFound()
        if product.seller_kind != SellerKind.COOPERATIVE:
            raise InvalidField(
                "contributions", "only a cooperative's lots record member contributions"
            )
        added = await self._checked_contributions(
            product,
            lot,
            data.contributions,
            already=await self._lots.contributor_ids(lot.id),
            already_total=await self._lots.contributed_total(lot.id),
        )
        for contribution in added:
            contribution.lot_id = lot.id
        await self._lots.add_contributions(added)
        await self._access.record(editable.acting, "catalog.lot_contributions", lot.id)
        return lot_read(lot, await self._lots.contributions([lot.id]), self._settings)

    async def _checked_contributions(
        self,
        product: Product,
        lot: Lot,
        entries: Sequence[ContributionCreate],
        *,
        already: set[uuid.UUID],
        already_total: int,
    ) -> list[LotContribution]:
        assert product.cooperative_id is not None  # noqa: S101 - cooperative products only
        members = set(
            await self._access.sellers.active_members(product.cooperative_id, lot.harvest_date)
        )
        seen = set(already)
        total = already_total
        out: list[LotContribution] = []
        for index, entry in enumerate(entries):
            field = f"contributions[{index}].household_id"
            if entry.household_id in seen:
                raise InvalidField(field, "this household already contributed to the lot")
            if entry.household_id not in members:
                raise NotAMember(
                    field,
                    f"not a member of the cooperative on the harvest date {lot.harvest_date}",
                )
            seen.add(entry.household_id)
            total += entry.quantity
            out.append(
                LotContribution(
                    lot_id=lot.id, household_id=entry.household_id, quantity=entry.quantity
                )
            )
        if total > lot.quantity:
            raise InvalidField(
                "contributions",
                f"contributions add up to {total}, more than the lot's {lot.quantity}",
            )
        return out

    async def _insert_with_trace_code(self, lot: Lot) -> None:
        """40 random bits make a clash unlikely; the unique constraint makes one harmless."""
        for _ in range(TRACE_CODE_ATTEMPTS):
            lot.trace_code = new_trace_code()
            if await self._lots.add(lot):
                return
        raise RuntimeError("could not draw a free trace code")

    # ---- Certifications ------------------------------------------------------------------

    async def add_certification(
        self, user: AuthenticatedUser, data: CertificationCreate
    ) -> CertificationRead:
        if (data.product_id is None) == (data.household_id is None):
            raise InvalidField("product_id", "give exactly one of product_id and household_id")
        kind = data.kind
        if kind is CertificationKind.OCOP and data.stars is None:
            raise InvalidField("stars", "an OCOP certificate has 1 to 5 stars")
        if kind is CertificationKind.VIETGAP and data.stars is not None:
            raise InvalidField("stars", "only OCOP certificates have stars")
        valid_to = data.valid_to or default_valid_to(
            kind, data.stars, data.valid_from, self._policy
        )
        if valid_to is None:
            raise InvalidField("valid_to", "required for an OCOP certificate of 1 or 2 stars")
        if valid_to <= data.valid_from:
            raise InvalidField("valid_to", "must be after valid_from")
        if data.product_id is not None:
            acting = (await self._access.product_for_edit(user, data.product_id)).acting
        else:
            assert data.household_id is not None  # noqa: S101 - checked above
            acting = await self._access.household_for_edit(user, data.household_id, "household_id")
        certification = await self._certifications.add(
            Certification(
                kind=kind.value,
                product_id=data.product_id,
                household_id=data.household_id,
                certifier=data.certifier.strip(),
                number=data.number.strip(),
                scope=data.scope,
                stars=data.stars,
                valid_from=data.valid_from,
                valid_to=valid_to,
            )
        )
        await self._access.record(acting, "catalog.certification_create", certification.id)
        return certification_read(certification, self.today())

    async def warn_expiring_certificates(self) -> int:
        """Warn each seller once per certificate expiring within the warning window: the
        claim (`expiry_warned_at`) and the notice are written in this one transaction, so a
        certificate is either claimed with its notice or not at all."""
        now = self._clock()
        today = vietnam_today(now)
        claimed = await self._certifications.claim_expiring(
            today=today,
            horizon=warning_horizon(today, self._policy),
            now=now,
            limit=WARN_BATCH,
        )
        if not claimed:
            return 0
        product_ids = [row.product_id for row in claimed if row.product_id is not None]
        sellers = await self._certifications.products_sellers(product_ids)
        notices: list[SellerNotice] = []
        for row in claimed:
            cert_id, kind, number, valid_to, product_id, household_id = row
            if product_id is not None:
                seller_kind, seller_household, seller_coop, _ = sellers[product_id]
            else:
                seller_kind, seller_household, seller_coop = (
                    SellerKind.HOUSEHOLD.value,
                    household_id,
                    None,
                )
            notices.append(
                SellerNotice(
                    kind=NoticeKind.CERTIFICATE_EXPIRING.value,
                    seller_kind=seller_kind,
                    household_id=seller_household,
                    cooperative_id=seller_coop,
                    subject_id=cert_id,
                    message=expiry_message(kind, number, valid_to),
                    due_on=valid_to,
                )
            )
            log.info(
                "certificate_expiry_warned",
                certification_id=str(cert_id),
                kind=kind,
                valid_to=valid_to.isoformat(),
            )
        await self._notices.add_all(notices)
        return len(notices)

    async def seller_notices(
        self,
        user: AuthenticatedUser,
        household_id: uuid.UUID | None,
        cooperative_id: uuid.UUID | None,
    ) -> list[NoticeRead]:
        household_id, cooperative_id = await self._access.seller_for_reading(
            user, household_id, cooperative_id
        )
        notices = await self._notices.for_seller(
            household_id=household_id, cooperative_id=cooperative_id, limit=MAX_SELLER_PAGE
        )
        return [notice_read(n) for n in notices]

    # ---- Reads ---------------------------------------------------------------------------

    async def _owner_read(self, product: Product) -> ProductOwnerRead:
        today = self.today()
        variants = await self._variants.for_product(product.id, active_only=False)
        lots = await self._lots.for_product(product.id, limit=MAX_SELLER_PAGE)
        contributions = await self._lots.contributions([lot.id for lot in lots])
        certifications = await self._certifications.for_subjects(
            product_id=product.id, household_id=product.household_id
        )
        images = await self._images.for_product(product.id, ready_only=False)
        return ProductOwnerRead(
            id=product.id,
            status=ProductStatus(product.status),
            seller_kind=SellerKind(product.seller_kind),
            household_id=product.household_id,
            cooperative_id=product.cooperative_id,
            name=product.name,
            description=product.description,
            category=Category(product.category),
            region=product.region,
            season_months=season_months(product.season_mask),
            province_code=product.province_code,
            commune_code=product.commune_code,
            min_price_amount=product.min_price_amount,
            variants=[variant_read(v) for v in variants],
            lots=[lot_read(lot, contributions, self._settings) for lot in lots],
            certifications=[certification_read(c, today) for c in certifications],
            images=[image_owner_read(i) for i in images],
            created_at=product.created_at,
            updated_at=product.updated_at,
        )

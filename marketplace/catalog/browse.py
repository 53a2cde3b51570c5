"""What anyone may read: the listing and search, a listed product, and lot traceability.

Listing pages are cut by a keyset cursor over (created_at, id), newest first (with a query,
within each relevance tier): a product listed while someone pages lands before their first
page, so a later page never repeats or skips a product. The cursor is opaque to clients.

The public sees a household seller by its given name and commune only.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime

import msgspec
import segno

from marketplace.catalog.certificates import VIETNAM, vietnam_today
from marketplace.catalog.errors import (
    InvalidCursor,
    InvalidField,
    ProductNotFound,
    TraceCodeNotFound,
)
from marketplace.catalog.listing import (
    ListingCursor,
    ListingFilters,
    ListingRepository,
    SearchMode,
    Tier,
)
from marketplace.catalog.media import rendition_urls
from marketplace.catalog.models import (
    Category,
    CertificationKind,
    LotUnit,
    Product,
    ProductStatus,
    SellerKind,
)
from marketplace.catalog.page_cache import PageCache
from marketplace.catalog.repository import (
    CertificationRepository,
    ImageRepository,
    LotRepository,
    ProductRepository,
    VariantRepository,
)
from marketplace.catalog.schemas import (
    ImageRead,
    LotSummary,
    ProductPage,
    ProductRead,
    ProductSummary,
    SellerSummary,
    TraceProducer,
    TraceProduct,
    TraceRead,
)
from marketplace.catalog.service import (
    CATEGORY_LABELS,
    TRACE_ALPHABET,
    TRACE_CODE_LENGTH,
    certification_read,
    normalise_trace_code,
    season_months,
    trace_url,
    variant_read,
)
from marketplace.db import utcnow
from marketplace.geo.errors import ProvinceNotFound
from marketplace.geo.service import GeoService
from marketplace.resources import Clock
from marketplace.sellers.cooperatives import CooperativeService
from marketplace.sellers.service import SellersService
from marketplace.settings import Settings
from marketplace.text import fold
from marketplace.unit_of_work import UnitOfWork

DEFAULT_PAGE = 20
MAX_PAGE = 50
PUBLIC_LOTS = 5
RENDITION_FOR_LISTING = "320"
_CATEGORIES = {category.value: category for category in Category}
_SELLER_KINDS = {kind.value: kind for kind in SellerKind}
_CERTIFICATION_KINDS = {kind.value: kind for kind in CertificationKind}
_SEASONS = tuple(tuple(season_months(mask)) for mask in range(1 << 12))
"""Months of every 12-bit season mask (the column's check constraint bounds it)."""


@dataclass(frozen=True, slots=True)
class ListingQuery:
    province: str | None = None
    commune: str | None = None
    category: Category | None = None
    certification: CertificationKind | None = None
    price_min: int | None = None
    price_max: int | None = None
    in_season: bool = False
    sold_by_poor: bool = False
    q: str | None = None
    cursor: str | None = None
    limit: int = DEFAULT_PAGE


def encode_cursor(cursor: ListingCursor) -> str:
    payload: list[object] = [cursor.created_at.isoformat(), str(cursor.id)]
    if cursor.mode is SearchMode.WORDS:
        payload += [int(cursor.tier), cursor.mode.value]
    elif cursor.mode is SearchMode.FUZZY:
        payload += [cursor.score, cursor.mode.value]
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, *, searching: bool) -> ListingCursor:
    """A cursor from a search only continues that kind of listing, and the other way round."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        if not isinstance(payload, list) or len(payload) not in (2, 4):
            raise InvalidCursor()
        created_at = datetime.fromisoformat(payload[0])
        if created_at.tzinfo is None:
            raise InvalidCursor()
        mode, tier, score = SearchMode.NONE, Tier.NAME_IS_QUERY, None
        if len(payload) == 4:
            mode, rank = SearchMode(payload[3]), payload[2]
            if mode is SearchMode.WORDS and type(rank) is int:
                tier = Tier(rank)
            elif mode is SearchMode.FUZZY and type(rank) in (int, float):
                score = float(rank)
            else:
                raise InvalidCursor()
        cursor = ListingCursor(
            created_at=created_at, id=uuid.UUID(payload[1]), mode=mode, tier=tier, score=score
        )
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor() from None
    if (cursor.mode is not SearchMode.NONE) != searching:
        raise InvalidCursor()
    return cursor


class CatalogBrowser:
    """Collaborators are made on first use: an answer served from the page cache opens no
    session at all."""

    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        clock: Clock = utcnow,
        cache: PageCache | None = None,
    ) -> None:
        self._uow = uow
        self._settings = settings
        self._clock = clock
        self._cache = cache

    @functools.cached_property
    def _listing(self) -> ListingRepository:
        return ListingRepository(self._uow.session)

    @functools.cached_property
    def _products(self) -> ProductRepository:
        return ProductRepository(self._uow.session)

    @functools.cached_property
    def _variants(self) -> VariantRepository:
        return VariantRepository(self._uow.session)

    @functools.cached_property
    def _lots(self) -> LotRepository:
        return LotRepository(self._uow.session)

    @functools.cached_property
    def _certifications(self) -> CertificationRepository:
        return CertificationRepository(self._uow.session)

    @functools.cached_property
    def _images(self) -> ImageRepository:
        return ImageRepository(self._uow.session)

    @functools.cached_property
    def _geo(self) -> GeoService:
        return GeoService(self._uow)

    @functools.cached_property
    def _sellers(self) -> SellersService:
        return SellersService(self._uow, self._settings, self._clock)

    @functools.cached_property
    def _cooperatives(self) -> CooperativeService:
        return CooperativeService(self._uow, self._settings, self._clock)

    async def list_products_json(self, query: ListingQuery) -> bytes:
        """The encoded page, from the page cache when a request just like it was answered
        moments ago. The Vietnamese day is part of the key: filters and certificate
        validity turn at midnight."""
        if self._cache is None:
            return msgspec.json.encode(await self.list_products(query))
        key = ("list", query, vietnam_today(self._clock()))

        async def compute() -> bytes:
            return msgspec.json.encode(await self.list_products(query))

        return await self._cache.get_or_compute(key, compute)

    async def product_json(self, product_id: uuid.UUID) -> bytes:
        if self._cache is None:
            return msgspec.json.encode(await self.get_product(product_id))
        key = ("product", product_id, vietnam_today(self._clock()))

        async def compute() -> bytes:
            return msgspec.json.encode(await self.get_product(product_id))

        return await self._cache.get_or_compute(key, compute)

    async def list_products(self, query: ListingQuery) -> ProductPage:
        now = self._clock()
        filters = await self._filters(query, vietnam_today(now), now)
        searching = filters.folded_query is not None
        cursor = decode_cursor(query.cursor, searching=searching) if query.cursor else None
        limit = max(1, min(query.limit, MAX_PAGE))
        mode = cursor.mode if cursor else SearchMode.WORDS if searching else SearchMode.NONE
        rows = await self._listing.page(filters, cursor, limit + 1, mode)
        if not rows and mode is SearchMode.WORDS and cursor is None:
            # Nothing contains every word: try near spellings (slower, so only now).
            mode = SearchMode.FUZZY
            rows = await self._listing.page(filters, None, limit + 1, mode)
        # Dictionary lookups, not enum calls: a page maps hundreds of values, and an unknown
        # one still fails loudly (KeyError).
        items = [
            ProductSummary(
                id=row.id,
                name=row.name,
                category=_CATEGORIES[row.category],
                region=row.region,
                province_code=row.province_code,
                commune_code=row.commune_code,
                seller_kind=_SELLER_KINDS[row.seller_kind],
                min_price_amount=row.min_price_amount,
                season_months=list(_SEASONS[row.season_mask]),
                certifications=(
                    sorted(_CERTIFICATION_KINDS[k] for k in row.certification_kinds)
                    if row.certification_kinds
                    else []
                ),
                image_url=(
                    f"/api/images/{row.image_id}/{RENDITION_FOR_LISTING}" if row.image_id else None
                ),
                created_at=row.created_at,
            )
            for row in rows[:limit]
        ]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(
                ListingCursor(
                    created_at=last.created_at,
                    id=last.id,
                    mode=mode,
                    tier=Tier(int(last.rank or 0)) if mode is SearchMode.WORDS else Tier(0),
                    score=float(last.rank or 0) if mode is SearchMode.FUZZY else None,
                )
            )
        return ProductPage(items=items, next_cursor=next_cursor)

    async def _filters(self, query: ListingQuery, today: date, now: datetime) -> ListingFilters:
        """Place codes are checked: a mistyped commune must not look like one with nothing
        for sale."""
        province_code = commune_code = None
        if query.commune is not None:
            commune_code = (await self._geo.require_commune(query.commune, field="commune")).code
        if query.province is not None:
            try:
                province_code = (await self._geo.get_province(query.province)).code
            except ProvinceNotFound:
                raise InvalidField("province", f"{query.province!r} is not a province") from None
        if (
            query.price_min is not None
            and query.price_max is not None
            and query.price_max < query.price_min
        ):
            raise InvalidField("price_max", "must not be below price_min")
        folded = fold(query.q) if query.q else ""
        return ListingFilters(
            today=today,
            province_code=province_code,
            commune_code=commune_code,
            category=query.category,
            certification=query.certification,
            price_min=query.price_min,
            price_max=query.price_max,
            in_season_month=now.astimezone(VIETNAM).month if query.in_season else None,
            sold_by_poor=query.sold_by_poor,
            folded_query=folded or None,
        )

    async def get_product(self, product_id: uuid.UUID) -> ProductRead:
        product = await self._products.get(product_id)
        if product is None or product.status != ProductStatus.LISTED:
            raise ProductNotFound()
        today = vietnam_today(self._clock())
        variants = await self._variants.for_product(product.id, active_only=True)
        certifications = await self._certifications.for_subjects(
            product_id=product.id, household_id=product.household_id
        )
        images = await self._images.for_product(product.id, ready_only=True)
        lots = await self._lots.for_product(product.id, limit=PUBLIC_LOTS)
        return ProductRead(
            id=product.id,
            name=product.name,
            description=product.description,
            category=Category(product.category),
            category_label=CATEGORY_LABELS[Category(product.category)],
            region=product.region,
            season_months=season_months(product.season_mask),
            province_code=product.province_code,
            commune_code=product.commune_code,
            min_price_amount=product.min_price_amount,
            seller=await self._seller_summary(product),
            variants=[variant_read(v) for v in variants],
            certifications=[certification_read(c, today) for c in certifications],
            images=[
                ImageRead(id=i.id, width=i.width, height=i.height, renditions=rendition_urls(i))
                for i in images
            ],
            lots=[
                LotSummary(
                    trace_code=lot.trace_code,
                    harvest_date=lot.harvest_date,
                    quantity=lot.quantity,
                    unit=LotUnit(lot.unit),
                )
                for lot in lots
            ],
            created_at=product.created_at,
            updated_at=product.updated_at,
        )

    async def _seller_summary(self, product: Product) -> SellerSummary:
        if product.household_id is not None:
            household = await self._sellers.household_ref(product.household_id)
            name, commune_code = household.given_name, household.commune_code
        else:
            assert product.cooperative_id is not None  # noqa: S101 - one seller per product
            cooperative = await self._cooperatives.get_cooperative(product.cooperative_id)
            name, commune_code = cooperative.name, cooperative.commune_code
        commune = await self._geo.get_commune(commune_code)
        return SellerSummary(
            kind=SellerKind(product.seller_kind),
            name=name,
            commune_code=commune.code,
            commune_name=commune.name,
            province_code=commune.province_code,
            province_name=commune.province_name,
        )

    async def trace(self, raw_code: str) -> TraceRead:
        """A lot's public record, whatever its product's listing status: the code is printed
        on crates that outlive a listing."""
        code = normalise_trace_code(raw_code)
        if len(code) != TRACE_CODE_LENGTH or any(ch not in TRACE_ALPHABET for ch in code):
            raise TraceCodeNotFound()
        found = await self._lots.by_trace_code(code)
        if found is None:
            raise TraceCodeNotFound()
        lot, product = found
        contributors: int | None = None
        if lot.household_id is not None:
            household = await self._sellers.household_ref(lot.household_id)
            name, commune_code = household.given_name, household.commune_code
        else:
            assert lot.cooperative_id is not None  # noqa: S101 - one producer per lot
            cooperative = await self._cooperatives.get_cooperative(lot.cooperative_id)
            name, commune_code = cooperative.name, cooperative.commune_code
            contributors = len(await self._lots.contributor_ids(lot.id))
        commune = await self._geo.get_commune(commune_code)
        today = vietnam_today(self._clock())
        certifications = await self._certifications.for_subjects(
            product_id=product.id, household_id=lot.household_id
        )
        url = trace_url(self._settings, code)
        return TraceRead(
            code=code,
            harvest_date=lot.harvest_date,
            quantity=lot.quantity,
            unit=LotUnit(lot.unit),
            product=TraceProduct(
                id=product.id,
                name=product.name,
                category=Category(product.category),
                region=product.region,
            ),
            producer=TraceProducer(
                kind=SellerKind(lot.seller_kind),
                name=name,
                commune_name=commune.name,
                province_name=commune.province_name,
                contributing_households=contributors,
            ),
            certifications=[certification_read(c, today) for c in certifications],
            trace_url=url,
            qr_url=f"/trace/{code}/qr.png",
        )

    async def trace_qr_png(self, raw_code: str) -> bytes:
        """The QR of the lot's public trace URL (404 for a code no lot has)."""
        trace = await self.trace(raw_code)
        out = io.BytesIO()
        segno.make(trace.trace_url, error="m").save(out, kind="png", scale=8, border=4)
        return out.getvalue()

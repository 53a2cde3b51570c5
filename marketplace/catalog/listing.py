"""The queries of the public listing and search: listed products only, one statement a page.

This is the hottest read of the marketplace, so it is written for the database and for the
event loop alike:
- SQLAlchemy Core on the tables, executed on the session's connection: a page of summaries
  needs no identity map, and the ORM layer cost more than the query itself.
- One statement per shape of request (which filters are present, how the text is matched,
  whether a cursor is given), built once and cached with bound parameters; only values
  travel per request. asyncpg keeps it prepared on each pooled connection.

Search matches every folded word of the query as a substring of the folded search text (the
GIN trigram index answers each `LIKE '%word%'`, words of any length, in one bitmap scan)
and ranks by pg_trgm `similarity` between the query and the product's folded name (the
start of its search text). Only when no product contains every word, a fuzzy pass matches
by `word_similarity` (`<%`, typos such as "buoi da xahn"): it rechecks many more rows, so
it runs for queries that found nothing otherwise.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    ColumnElement,
    Date,
    DateTime,
    Integer,
    Row,
    Select,
    String,
    Text,
    Uuid,
    and_,
    bindparam,
    cast,
    exists,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.catalog.models import (
    Category,
    Certification,
    CertificationKind,
    ImageStatus,
    Lot,
    LotContribution,
    Product,
    ProductImage,
    ProductStatus,
)
from marketplace.sellers.models import HouseholdStatusEntry, PovertyStatus

POOR_STATUSES = (PovertyStatus.POOR.value, PovertyStatus.NEAR_POOR.value)
MAX_QUERY_WORDS = 8
"""Words of a query matched one by one; further words are ignored (no product name needs
more, and each word is one more index condition)."""

products = Product.__table__
certifications = Certification.__table__
images = ProductImage.__table__
lots = Lot.__table__
contributions = LotContribution.__table__
reviews = HouseholdStatusEntry.__table__


class SearchMode(StrEnum):
    NONE = "none"
    WORDS = "words"
    FUZZY = "fuzzy"


@dataclass(frozen=True, slots=True)
class ListingFilters:
    today: date
    province_code: str | None = None
    commune_code: str | None = None
    category: Category | None = None
    certification: CertificationKind | None = None
    price_min: int | None = None
    price_max: int | None = None
    in_season_month: int | None = None
    sold_by_poor: bool = False
    folded_query: str | None = None


@dataclass(frozen=True, slots=True)
class ListingCursor:
    created_at: datetime
    id: uuid.UUID
    score: float | None = None
    """Relevance of the last row when the listing is a search."""
    mode: SearchMode = SearchMode.NONE


def like_pattern(word: str) -> str:
    """LIKE pattern for the word anywhere, LIKE's wildcards taken literally."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def query_words(folded_query: str) -> list[str]:
    return folded_query.split()[:MAX_QUERY_WORDS]


def status_on(household_id: ColumnElement[Any]) -> ColumnElement[Any]:
    """A household's poverty status on `:today`: its latest review on or before that day,
    the last recorded of one day winning (the sellers domain's rule). Correlated, so the
    planner walks the (household_id, review_date) index once per candidate household."""
    return (
        select(reviews.c.status)
        .where(
            reviews.c.household_id == household_id,
            reviews.c.review_date <= bindparam("today", type_=Date),
        )
        .order_by(reviews.c.review_date.desc(), reviews.c.created_at.desc(), reviews.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def valid_certificate_of_product() -> ColumnElement[bool]:
    """A certificate valid on `:today` issued for the product or for its household."""
    today = bindparam("today", type_=Date)
    return and_(
        or_(
            certifications.c.product_id == products.c.id,
            and_(
                products.c.household_id.is_not(None),
                certifications.c.household_id == products.c.household_id,
            ),
        ),
        certifications.c.valid_from <= today,
        certifications.c.valid_to > today,
    )


@dataclass(frozen=True, slots=True)
class Shape:
    """What a statement depends on besides the values: the key of the statement cache."""

    filters: frozenset[str]
    mode: SearchMode
    words: int
    after: bool


def shape_of(filters: ListingFilters, mode: SearchMode, cursor: ListingCursor | None) -> Shape:
    present = frozenset(
        name
        for name in (
            "province_code",
            "commune_code",
            "category",
            "certification",
            "price_min",
            "price_max",
            "in_season_month",
        )
        if getattr(filters, name) is not None
    ) | ({"sold_by_poor"} if filters.sold_by_poor else frozenset())
    words = len(query_words(filters.folded_query or "")) if mode is SearchMode.WORDS else 0
    return Shape(filters=present, mode=mode, words=words, after=cursor is not None)


def parameters(
    filters: ListingFilters, mode: SearchMode, cursor: ListingCursor | None, limit: int
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "today": filters.today,
        "limit": limit,
        "province_code": filters.province_code,
        "commune_code": filters.commune_code,
        "category": filters.category.value if filters.category else None,
        "certification": filters.certification.value if filters.certification else None,
        "price_min": filters.price_min,
        "price_max": filters.price_max,
        "season_bit": 1 << (filters.in_season_month - 1) if filters.in_season_month else None,
    }
    if mode is not SearchMode.NONE:
        values["q"] = filters.folded_query
    if mode is SearchMode.WORDS:
        for index, word in enumerate(query_words(filters.folded_query or "")):
            values[f"w{index}"] = like_pattern(word)
    if cursor is not None:
        values |= {"after_created_at": cursor.created_at, "after_id": cursor.id}
        if mode is not SearchMode.NONE:
            values["after_score"] = cursor.score or 0.0
    return {name: value for name, value in values.items() if value is not None}


def _conditions(shape: Shape) -> list[ColumnElement[bool]]:
    present = shape.filters
    out: list[ColumnElement[bool]] = []
    if "province_code" in present:
        out.append(products.c.province_code == bindparam("province_code", type_=String))
    if "commune_code" in present:
        out.append(products.c.commune_code == bindparam("commune_code", type_=String))
    if "category" in present:
        out.append(products.c.category == bindparam("category", type_=String))
    if "price_min" in present:
        out.append(products.c.min_price_amount >= bindparam("price_min", type_=BigInteger))
    if "price_max" in present:
        out.append(products.c.min_price_amount <= bindparam("price_max", type_=BigInteger))
    if "in_season_month" in present:
        out.append(products.c.season_mask.op("&")(bindparam("season_bit", type_=Integer)) != 0)
    if "certification" in present:
        out.append(
            exists().where(
                valid_certificate_of_product(),
                certifications.c.kind == bindparam("certification", type_=String),
            )
        )
    if "sold_by_poor" in present:
        contributor_is_poor = (
            exists()
            .where(lots.c.product_id == products.c.id, contributions.c.lot_id == lots.c.id)
            .where(status_on(contributions.c.household_id).in_(POOR_STATUSES))
        )
        out.append(
            or_(
                and_(
                    products.c.household_id.is_not(None),
                    status_on(products.c.household_id).in_(POOR_STATUSES),
                ),
                and_(products.c.cooperative_id.is_not(None), contributor_is_poor),
            )
        )
    return out


@functools.lru_cache(maxsize=512)
def listing_statement(shape: Shape) -> Select[Any]:
    # NULL when the product has no valid certificate: the caller reads it as no kinds.
    valid_kinds = (
        select(func.array_agg(certifications.c.kind.distinct()))
        .where(valid_certificate_of_product())
        .scalar_subquery()
    )
    first_image = (
        select(images.c.id)
        .where(
            images.c.product_id == products.c.id,
            images.c.status == ImageStatus.READY.value,
        )
        .order_by(images.c.position, images.c.created_at, images.c.id)
        .limit(1)
        .scalar_subquery()
    )
    statement = select(
        products.c.id,
        products.c.name,
        products.c.category,
        products.c.region,
        products.c.province_code,
        products.c.commune_code,
        products.c.seller_kind,
        products.c.min_price_amount,
        products.c.season_mask,
        valid_kinds.label("certification_kinds"),
        first_image.label("image_id"),
        products.c.created_at,
    ).where(products.c.status == ProductStatus.LISTED.value, *_conditions(shape))

    q = bindparam("q", type_=Text)
    score: ColumnElement[float] | None = None
    if shape.mode is SearchMode.WORDS:
        for index in range(shape.words):
            statement = statement.where(
                products.c.search_text.like(bindparam(f"w{index}", type_=Text), escape="\\")
            )
        # The search text starts with the folded name (service.search_text).
        folded_name = func.left(products.c.search_text, func.length(products.c.name))
        score = cast(func.similarity(folded_name, q), REAL)
    elif shape.mode is SearchMode.FUZZY:
        statement = statement.where(q.op("<%")(products.c.search_text))
        score = cast(func.word_similarity(q, products.c.search_text), REAL)

    after_created_at = bindparam("after_created_at", type_=DateTime(timezone=True))
    after_id = bindparam("after_id", type_=Uuid)
    if score is not None:
        statement = statement.add_columns(score.label("score"))
        if shape.after:
            after_score = cast(bindparam("after_score", type_=REAL), REAL)
            statement = statement.where(
                tuple_(score, products.c.created_at, products.c.id)
                < tuple_(after_score, after_created_at, after_id)
            )
        statement = statement.order_by(score.desc())
    elif shape.after:
        statement = statement.where(
            tuple_(products.c.created_at, products.c.id) < tuple_(after_created_at, after_id)
        )
    return statement.order_by(products.c.created_at.desc(), products.c.id.desc()).limit(
        bindparam("limit", type_=Integer)
    )


class ListingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def page(
        self,
        filters: ListingFilters,
        cursor: ListingCursor | None,
        limit: int,
        mode: SearchMode,
    ) -> Sequence[Row[Any]]:
        statement = listing_statement(shape_of(filters, mode, cursor))
        connection = await self._session.connection()
        result = await connection.execute(statement, parameters(filters, mode, cursor, limit))
        rows: Sequence[Row[Any]] = result.all()
        return rows

"""The queries of the public listing and search: listed products only, one statement a page.

This is the hottest read of the marketplace, so it is written for the database and for the
event loop alike:
- SQLAlchemy Core on the tables, executed on the session's connection: a page of summaries
  needs no identity map, and the ORM layer cost more than the query itself.
- One statement per shape of request (which filters are present, how the text is matched,
  whether a cursor is given), built once and cached with bound parameters; only values
  travel per request. asyncpg keeps it prepared on each pooled connection.
- Every order is one an index can produce, so a page reads about as many rows as it shows
  (keyset on (created_at, id), newest first) instead of sorting every match.
- The browser reads in autocommit (`CatalogBrowser`): a page is one statement, which sees
  one snapshot anyway, and BEGIN and COMMIT would be two more round trips to the database.

Search matches every folded word of the query as a substring (LIKE '%word%', answered by the
pg_trgm GIN indexes for words of any length) and shows, in tiers, newest first within each:
1. products whose folded name is the query ("buoi da xanh" finds "Bưởi da xanh" first);
2. products whose folded name holds every word;
3. products whose search text (region, category, description) holds every word but whose
   name does not.
Tiers 1 and 2 are one statement; the third runs only when they leave the page short (how it
is read depends on whether names hold the words: `ListingRepository.page`). Ranking
by pg_trgm `similarity` instead scored every match before the first row could be returned
(25-50 ms for a word such as "buoi" that 2,500 of 50,000 products contain, 300 ms for "hue").
Only when no product contains every word, a fuzzy pass matches by `word_similarity` (`<%`,
typos such as "buoi da xahn") and ranks by it: it rechecks many more rows, so it runs for
queries that found nothing otherwise.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from enum import IntEnum, StrEnum
from typing import Any, NamedTuple

from sqlalchemy import (
    REAL,
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Date,
    DateTime,
    Integer,
    Select,
    String,
    Text,
    Uuid,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
    tuple_,
    union_all,
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


class Tier(IntEnum):
    """Where a search found its words, best first."""

    NAME_IS_QUERY = 0
    NAME_HAS_WORDS = 1
    TEXT_HAS_WORDS = 2


NAME_TIERS = (Tier.NAME_IS_QUERY, Tier.NAME_HAS_WORDS)


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
    mode: SearchMode = SearchMode.NONE
    tier: Tier = Tier.NAME_IS_QUERY
    """Word search: the tier of the last row."""
    score: float | None = None
    """Fuzzy search: the word similarity of the last row."""


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


def valid_certificate_of(
    product_id: ColumnElement[Any], household_id: ColumnElement[Any]
) -> ColumnElement[bool]:
    """A certificate valid on `:today` issued for the product or for its household."""
    today = bindparam("today", type_=Date)
    return and_(
        or_(
            certifications.c.product_id == product_id,
            and_(household_id.is_not(None), certifications.c.household_id == household_id),
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
    """A cursor is given: the statement starts after it (in its first tier for a search)."""
    tiers: tuple[Tier, ...] = ()
    """Word search: the tiers this statement reads."""
    sort_all_matches: bool = False
    """Text tier: read every text match and sort them, rather than walk the newest-first
    index until the page is full (`ListingRepository.page` says when)."""


def shape_of(
    filters: ListingFilters,
    mode: SearchMode,
    cursor: ListingCursor | None,
    tiers: tuple[Tier, ...] = (),
    *,
    sort_all_matches: bool = False,
) -> Shape:
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
    return Shape(
        filters=present,
        mode=mode,
        words=words,
        after=cursor is not None,
        tiers=tiers,
        sort_all_matches=sort_all_matches,
    )


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
        if mode is SearchMode.FUZZY:
            values["after_score"] = cursor.score or 0.0
    return {name: value for name, value in values.items() if value is not None}


def _conditions(shape: Shape) -> list[ColumnElement[bool]]:
    present = shape.filters
    out: list[ColumnElement[bool]] = [products.c.status == ProductStatus.LISTED.value]
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
                valid_certificate_of(products.c.id, products.c.household_id),
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


def _every_word_in(column: ColumnElement[str], words: int) -> ColumnElement[bool]:
    return and_(
        *(column.like(bindparam(f"w{index}", type_=Text), escape="\\") for index in range(words))
    )


def _tier_match(tier: Tier, words: int) -> ColumnElement[bool]:
    """The tiers do not overlap: each product of a search is in exactly one."""
    q = bindparam("q", type_=Text)
    name_has_words = _every_word_in(products.c.search_name, words)
    if tier is Tier.NAME_IS_QUERY:
        return products.c.search_name == q
    if tier is Tier.NAME_HAS_WORDS:
        return and_(name_has_words, products.c.search_name != q)
    return and_(_every_word_in(products.c.search_text, words), not_(name_has_words))


_SUMMARY_COLUMNS = (
    products.c.id,
    products.c.name,
    products.c.category,
    products.c.region,
    products.c.province_code,
    products.c.commune_code,
    products.c.seller_kind,
    products.c.min_price_amount,
    products.c.season_mask,
    products.c.created_at,
    products.c.household_id,
)


def _newest_after(after: bool) -> list[ColumnElement[bool]]:
    if not after:
        return []
    after_key = tuple_(
        bindparam("after_created_at", type_=DateTime(timezone=True)),
        bindparam("after_id", type_=Uuid),
    )
    return [tuple_(products.c.created_at, products.c.id) < after_key]


def _matches(shape: Shape) -> Select[Any] | CompoundSelect[Any]:
    """The page's products before the per-row details: index orders, each with a LIMIT."""
    conditions = _conditions(shape)
    limit = bindparam("limit", type_=Integer)
    newest = (products.c.created_at.desc(), products.c.id.desc())
    if shape.mode is SearchMode.NONE:
        return (
            select(*_SUMMARY_COLUMNS)
            .where(*conditions, *_newest_after(shape.after))
            .order_by(*newest)
            .limit(limit)
        )
    if shape.mode is SearchMode.FUZZY:
        q = bindparam("q", type_=Text)
        score = cast(func.word_similarity(q, products.c.search_text), REAL)
        statement = select(*_SUMMARY_COLUMNS, score.label("score")).where(
            *conditions, q.op("<%")(products.c.search_text)
        )
        if shape.after:
            after = tuple_(
                cast(bindparam("after_score", type_=REAL), REAL),
                bindparam("after_created_at", type_=DateTime(timezone=True)),
                bindparam("after_id", type_=Uuid),
            )
            statement = statement.where(tuple_(score, products.c.created_at, products.c.id) < after)
        return statement.order_by(score.desc(), *newest).limit(limit)
    branches = [
        select(*_SUMMARY_COLUMNS, literal(int(tier), Integer).label("tier")).where(
            *conditions,
            _tier_match(tier, shape.words),
            *_newest_after(shape.after and tier == shape.tiers[0]),
        )
        for tier in shape.tiers
    ]
    if shape.sort_all_matches:
        # Materialised: the planner cannot walk the newest-first index for it.
        [text_tier] = branches
        every_match = text_tier.cte("text_matches").prefix_with("MATERIALIZED")
        return (
            select(every_match)
            .order_by(every_match.c.created_at.desc(), every_match.c.id.desc())
            .limit(limit)
        )
    branches = [branch.order_by(*newest).limit(limit) for branch in branches]
    return branches[0] if len(branches) == 1 else union_all(*branches)


class ListingRow(NamedTuple):
    """One product of a page, in the statement's column order. Read by position: attribute
    access on SQLAlchemy's `Row` cost more than the rest of turning a page into JSON."""

    id: uuid.UUID
    name: str
    category: str
    region: str
    province_code: str
    commune_code: str
    seller_kind: str
    min_price_amount: int | None
    season_mask: int
    certification_kinds: list[str] | None
    """Kinds of the certificates valid today; None when there are none."""
    image_id: uuid.UUID | None
    created_at: datetime
    rank: float | None = None
    """Word search: the row's tier; fuzzy search: its word similarity; else None."""


@functools.lru_cache(maxsize=512)
def listing_statement(shape: Shape) -> Select[Any]:
    matches = _matches(shape).subquery("matches")
    m = matches.c
    # NULL when the product has no valid certificate: the caller reads it as no kinds.
    valid_kinds = (
        select(func.array_agg(certifications.c.kind.distinct()))
        .where(valid_certificate_of(m.id, m.household_id))
        .scalar_subquery()
    )
    first_image = (
        select(images.c.id)
        .where(images.c.product_id == m.id, images.c.status == ImageStatus.READY.value)
        .order_by(images.c.position, images.c.created_at, images.c.id)
        .limit(1)
        .scalar_subquery()
    )
    columns: dict[str, Any] = {
        name: m[name] for name in ListingRow._fields if name in m and name != "rank"
    }
    columns["certification_kinds"] = valid_kinds.label("certification_kinds")
    columns["image_id"] = first_image.label("image_id")
    order: list[Any] = []
    if shape.mode is SearchMode.WORDS:
        columns["rank"] = m.tier
        order.append(m.tier)
    elif shape.mode is SearchMode.FUZZY:
        columns["rank"] = m.score
        order.append(m.score.desc())
    return (
        select(*(columns[name] for name in ListingRow._fields if name in columns))
        .order_by(*order, m.created_at.desc(), m.id.desc())
        .limit(bindparam("limit", type_=Integer))
    )


class ListingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _rows(self, statement: Select[Any], values: dict[str, Any]) -> list[ListingRow]:
        connection = await self._session.connection()
        result = await connection.execute(statement, values)
        return [ListingRow(*row) for row in result]

    async def page(
        self,
        filters: ListingFilters,
        cursor: ListingCursor | None,
        limit: int,
        mode: SearchMode,
    ) -> list[ListingRow]:
        values = parameters(filters, mode, cursor, limit)
        if mode is not SearchMode.WORDS:
            return await self._rows(listing_statement(shape_of(filters, mode, cursor)), values)
        rows: list[ListingRow] = []
        if cursor is None or cursor.tier in NAME_TIERS:
            start = cursor.tier if cursor is not None else Tier.NAME_IS_QUERY
            tiers = tuple(tier for tier in NAME_TIERS if tier >= start)
            rows += await self._rows(
                listing_statement(shape_of(filters, mode, cursor, tiers)), values
            )
            if len(rows) >= limit:
                return rows
            names_match = bool(rows) or cursor is not None
            cursor = None  # the name tiers ran out on this page: the text tier from its start
        else:
            names = listing_statement(shape_of(filters, mode, None, NAME_TIERS))
            names_match = bool(await self._rows(names, {**values, "limit": 1}))
        # Words that some names hold are mostly repeated in those products' descriptions, so
        # the products matching by text alone are few among the text matches: read them all
        # and sort. The planner, taking "text holds" and "name does not" as independent, would
        # walk the whole newest-first index looking for them. Words no name holds (a place,
        # "thu hoach") match by text alone densely: newest first by index, stopping early.
        text_only = shape_of(
            filters, mode, cursor, (Tier.TEXT_HAS_WORDS,), sort_all_matches=names_match
        )
        values = parameters(filters, mode, cursor, limit - len(rows))
        rows += await self._rows(listing_statement(text_only), values)
        return rows

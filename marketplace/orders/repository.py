"""Every query of the orders domain.

Lock order, everywhere: an order row before its holds, variants in ascending id order.
Placement locks only variants (it creates its order), so no two paths can wait on each
other in a cycle.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    LargeBinary,
    TextClause,
    Uuid,
    bindparam,
    delete,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.sql.sqltypes import NullType
from sqlalchemy.types import TypeEngine

from marketplace.db import Base
from marketplace.orders.models import (
    Fulfilment,
    IdempotencyRecord,
    IdempotencyStatus,
    Order,
    OrderLine,
    OrderStatus,
    StockHold,
)
from marketplace.orders.schemas import OrderDetails

# The stock decrement is the orders domain's rule (never oversell), so the statements that
# apply it live here even though `variants` belongs to the catalog.
#
# `_READ_STOCK` reads what a line copies (price, seller, names, the latest lot) without a
# lock. `_TAKE_STOCK` is the one conditional UPDATE that takes the units, only if they are
# there (`available >= n`, backed by CHECK available >= 0), only while the variant is still
# on sale at the price the line was written with. Placement runs it last, just before the
# commit, so the hot row's lock is held for two round trips, not the whole transaction.
_READ_STOCK = text(
    """
    SELECT v.id, v.available, v.is_active, v.label, v.price_amount, p.id AS product_id,
           p.name, p.category, p.status, p.seller_kind, p.household_id, p.cooperative_id,
           (SELECT l.id FROM lots AS l WHERE l.product_id = p.id
             ORDER BY l.harvest_date DESC, l.created_at DESC LIMIT 1) AS lot_id
      FROM variants AS v JOIN products AS p ON p.id = v.product_id
     WHERE v.id = ANY(:variant_ids)
    """
).bindparams(bindparam("variant_ids", type_=ARRAY(Uuid())))

_TAKE_STOCK = text(
    """
    UPDATE variants AS v SET available = v.available - :quantity
     WHERE v.id = :variant_id AND v.available >= :quantity AND v.is_active
       AND v.price_amount = :price_amount
       AND EXISTS (SELECT 1 FROM products AS p WHERE p.id = v.product_id AND p.status = 'listed')
    RETURNING v.available
    """
)

_RETURN_STOCK = text("UPDATE variants SET available = available + :quantity WHERE id = :variant_id")


@dataclass(frozen=True, slots=True)
class VariantFacts:
    """The catalog facts a line copies: who sells it, what it is, which lot."""

    variant_id: uuid.UUID
    label: str
    product_id: uuid.UUID
    product_name: str
    category: str
    seller_kind: str
    household_id: uuid.UUID | None
    cooperative_id: uuid.UUID | None
    lot_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class VariantStock:
    """A variant as last committed: what a line copies and whether it can be ordered."""

    facts: VariantFacts
    price_amount: int
    available: int
    for_sale: bool


@dataclass(frozen=True, slots=True)
class ReleasedHold:
    order_id: uuid.UUID
    variant_id: uuid.UUID
    livestream_item_id: uuid.UUID | None
    buyer_key: str
    quantity: int


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    fingerprint: str
    in_flight: bool
    status_code: int | None
    body: bytes | None


@dataclass(frozen=True, slots=True)
class NewClaim:
    claim_id: uuid.UUID
    scope: str
    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class ClaimAnswer:
    claim_id: uuid.UUID
    status_code: int
    body: bytes
    order_id: uuid.UUID | None


class StockRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def read(self, variant_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, VariantStock]:
        """One query for every variant of an order; unknown ids are simply absent."""
        rows = await self._session.execute(_READ_STOCK, {"variant_ids": list(variant_ids)})
        return {
            row.id: VariantStock(
                facts=VariantFacts(
                    variant_id=row.id,
                    label=row.label,
                    product_id=row.product_id,
                    product_name=row.name,
                    category=row.category,
                    seller_kind=row.seller_kind,
                    household_id=row.household_id,
                    cooperative_id=row.cooperative_id,
                    lot_id=row.lot_id,
                ),
                price_amount=int(row.price_amount),
                available=int(row.available),
                for_sale=bool(row.is_active) and row.status == "listed",
            )
            for row in rows
        }

    async def take(self, variant_id: uuid.UUID, quantity: int, price_amount: int) -> int | None:
        """Units left after taking `quantity`, or None when they were not taken (not
        enough left, or the variant stopped being on sale at that price meanwhile)."""
        result = await self._session.execute(
            _TAKE_STOCK,
            {"variant_id": variant_id, "quantity": quantity, "price_amount": price_amount},
        )
        left = result.scalar_one_or_none()
        return None if left is None else int(left)

    async def give_back(self, quantities: Mapping[uuid.UUID, int]) -> None:
        """Units back to `available`, one variant at a time in id order (the lock order)."""
        for variant_id in sorted(quantities):
            if quantities[variant_id] > 0:
                await self._session.execute(
                    _RETURN_STOCK, {"variant_id": variant_id, "quantity": quantities[variant_id]}
                )


_INSERTED: dict[str, type[Base]] = {
    "o": Order,
    "f": Fulfilment,
    "l": OrderLine,
    "h": StockHold,
}


_DIALECT = PGDialect()  # type: ignore[no-untyped-call] # SQLAlchemy leaves it unannotated


@functools.cache
def _insert_orders(*, answered: bool) -> TextClause:
    """One statement for any number of orders of any size: sibling INSERTs in CTEs (their
    foreign keys are checked at the end of the statement), the rows passed as one array per
    column and unnested, so the SQL text never changes and stays a prepared statement."""
    preparer = _DIALECT.identifier_preparer
    parts = []
    for prefix, model in _INSERTED.items():
        columns = list(model.__table__.columns)
        parts.append(
            "{} AS (INSERT INTO {} ({}) SELECT * FROM unnest({}))".format(  # noqa: S608 - our own identifiers
                prefix,
                model.__tablename__,
                ", ".join(preparer.quote(c.name) for c in columns),
                ", ".join(f"CAST(:{prefix}_{c.key} AS {_array_of(c)})" for c in columns),
            )
        )
    if not answered:
        return text("WITH " + ", ".join(parts) + " SELECT 1")
    parts.append(_ANSWERS_CTE)
    return text("WITH " + ", ".join(parts) + " SELECT count(*) FROM a")  # noqa: S608 - ours


def _array_of(column: Any) -> str:
    """The column's SQL type as an array; a foreign key column takes its target's type
    (built on first use, once every model is loaded and every target is known)."""
    column_type: TypeEngine[Any] = column.type
    if isinstance(column_type, NullType):
        column_type = next(iter(column.foreign_keys)).column.type
    compiled: str = column_type.compile(dialect=_DIALECT)
    return compiled + "[]"


@dataclass(frozen=True, slots=True)
class _ColumnSpec:
    key: str
    default: Any
    nullable: bool


@functools.cache
def _columns_of(model: type[Base]) -> tuple[_ColumnSpec, ...]:
    specs = []
    for column in model.__table__.columns:
        default = column.default
        value = default.arg if default is not None and default.is_scalar else None
        specs.append(_ColumnSpec(column.key, value, bool(column.nullable)))
    return tuple(specs)


def _column_arrays(model: type[Base], objects: Sequence[Base]) -> dict[str, list[Any]]:
    """One list per column over `objects`: the builder's value or the column's default (an
    unset column would be expired once the object joins the session, and reading it would
    need I/O). Read from each instance's dict: attribute access through the ORM was a third
    of a batch's CPU (bench/request_cost.py)."""
    states = [obj.__dict__ for obj in objects]
    arrays: dict[str, list[Any]] = {}
    for spec in _columns_of(model):
        key = spec.key
        if all(key in state for state in states):
            arrays[key] = [state[key] for state in states]
            continue
        if spec.default is None and not spec.nullable:
            raise ValueError(f"{model.__name__}.{key} must be set before insert")
        for obj, state in zip(objects, states, strict=True):
            if key not in state:
                setattr(obj, key, spec.default)
        arrays[key] = [state[key] for state in states]
    return arrays


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        order: Order,
        fulfilments: Sequence[Fulfilment],
        lines: Sequence[OrderLine],
        holds: Sequence[StockHold],
    ) -> None:
        """The order and all its rows in one round trip (`_insert_orders`); the objects then
        join the session as persistent, as if loaded, so later changes are UPDATEs."""
        await self.add_many([order], fulfilments, lines, holds)  # no answer: it follows
        for obj in (order, *fulfilments, *lines, *holds):
            make_transient_to_detached(obj)
            self._session.add(obj)

    async def add_many(
        self,
        orders: Sequence[Order],
        fulfilments: Sequence[Fulfilment],
        lines: Sequence[OrderLine],
        holds: Sequence[StockHold],
        *,
        answers: Sequence[ClaimAnswer] = (),
        now: datetime | None = None,
    ) -> int:
        """Any number of orders and their rows in one statement (a group commit's batch),
        and with them the idempotency answers of the batch's claims: how many of those
        claims were still held. The objects stay outside the session."""
        params: dict[str, Any] = {}
        for prefix, rows in (("o", orders), ("f", fulfilments), ("l", lines), ("h", holds)):
            for key, values in _column_arrays(_INSERTED[prefix], rows).items():
                params[f"{prefix}_{key}"] = values
        if not answers:
            await self._session.execute(_insert_orders(answered=False), params)
            return 0
        params |= {
            "a_ids": [a.claim_id for a in answers],
            "a_statuses": [a.status_code for a in answers],
            "a_bodies": [a.body for a in answers],
            "a_order_ids": [a.order_id for a in answers],
            "a_now": now,
        }
        result = await self._session.execute(_insert_orders(answered=True), params)
        return int(result.scalar_one())

    async def get(self, order_id: uuid.UUID) -> Order | None:
        return await self._session.get(Order, order_id)

    async def get_for_update(self, order_id: uuid.UUID) -> Order | None:
        result = await self._session.execute(
            select(Order)
            .where(Order.id == order_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def details(self, order: Order) -> OrderDetails:
        fulfilments = (
            await self._session.execute(
                select(Fulfilment)
                .where(Fulfilment.order_id == order.id)
                .order_by(Fulfilment.created_at, Fulfilment.id)
            )
        ).scalars()
        lines = (
            await self._session.execute(
                select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.position)
            )
        ).scalars()
        return OrderDetails(order=order, fulfilments=list(fulfilments), lines=list(lines))

    async def by_payment_codes(self, codes: Iterable[str]) -> Sequence[Order]:
        wanted = list(dict.fromkeys(codes))
        if not wanted:
            return []
        result = await self._session.execute(select(Order).where(Order.payment_code.in_(wanted)))
        return result.scalars().all()

    async def by_claim_hash(self, claim_hash: str, *, for_update: bool = False) -> Order | None:
        query = select(Order).where(Order.claim_token_hash == claim_hash)
        if for_update:
            query = query.with_for_update().execution_options(populate_existing=True)
        return (await self._session.execute(query)).scalar_one_or_none()

    async def page(
        self, *, buyer_user_id: uuid.UUID | None, limit: int, offset: int
    ) -> Sequence[Order]:
        """Newest first; every order when `buyer_user_id` is None (admins)."""
        query = select(Order)
        if buyer_user_id is not None:
            query = query.where(Order.buyer_user_id == buyer_user_id)
        result = await self._session.execute(
            query.order_by(Order.created_at.desc(), Order.id.desc()).limit(limit).offset(offset)
        )
        return result.scalars().all()

    async def expired_for_update(self, now: datetime, limit: int) -> Sequence[Order]:
        """Orders whose hold ran out while still unpaid, locked; SKIP LOCKED so two sweeps
        at once take disjoint orders, and an order a payment is settling right now waits
        for the next sweep instead of being cancelled under it."""
        result = await self._session.execute(
            select(Order)
            .where(
                Order.status == OrderStatus.PENDING_PAYMENT.value,
                Order.hold_expires_at < now,
            )
            .order_by(Order.hold_expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return result.scalars().all()

    async def release_holds(
        self, order_ids: Sequence[uuid.UUID], now: datetime
    ) -> list[ReleasedHold]:
        """Every hold of these orders not yet released, sold ones included (a cancelled
        cash-on-delivery order gives its goods back). Releasing twice releases nothing."""
        if not order_ids:
            return []
        result = await self._session.execute(
            update(StockHold)
            .where(StockHold.order_id.in_(order_ids), StockHold.released_at.is_(None))
            .values(released_at=now)
            .returning(
                StockHold.order_id,
                StockHold.variant_id,
                StockHold.livestream_item_id,
                StockHold.buyer_key,
                StockHold.quantity,
            )
        )
        return [
            ReleasedHold(
                order_id=row.order_id,
                variant_id=row.variant_id,
                livestream_item_id=row.livestream_item_id,
                buyer_key=row.buyer_key,
                quantity=row.quantity,
            )
            for row in result
        ]

    async def sell_holds(self, order_id: uuid.UUID, at: datetime) -> int:
        result = await self._session.execute(
            update(StockHold)
            .where(
                StockHold.order_id == order_id,
                StockHold.released_at.is_(None),
                StockHold.sold_at.is_(None),
            )
            .values(sold_at=at)
        )
        return int(result.rowcount)  # type: ignore[attr-defined] # CursorResult of an UPDATE

    async def extend_holds(self, order_id: uuid.UUID, expires_at: datetime) -> None:
        await self._session.execute(
            update(StockHold)
            .where(
                StockHold.order_id == order_id,
                StockHold.released_at.is_(None),
                StockHold.sold_at.is_(None),
            )
            .values(expires_at=expires_at)
        )

    async def holds(self, order_id: uuid.UUID) -> Sequence[StockHold]:
        result = await self._session.execute(
            select(StockHold).where(StockHold.order_id == order_id)
        )
        return result.scalars().all()

    async def payment_code_taken(self, code: str) -> bool:
        found = await self._session.scalar(select(Order.id).where(Order.payment_code == code))
        return found is not None

    async def flush(self) -> None:
        await self._session.flush()


class FulfilmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get_for_update(self, fulfilment_id: uuid.UUID) -> Fulfilment | None:
        result = await self._session.execute(
            select(Fulfilment)
            .where(Fulfilment.id == fulfilment_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def get(self, fulfilment_id: uuid.UUID) -> Fulfilment | None:
        return await self._session.get(Fulfilment, fulfilment_id)

    async def of_order(self, order_id: uuid.UUID) -> Sequence[Fulfilment]:
        result = await self._session.execute(
            select(Fulfilment)
            .where(Fulfilment.order_id == order_id)
            .order_by(Fulfilment.created_at, Fulfilment.id)
        )
        return result.scalars().all()

    async def page_for_sellers(
        self,
        *,
        household_ids: Sequence[uuid.UUID],
        cooperative_ids: Sequence[uuid.UUID],
        everyone: bool,
        limit: int,
        offset: int,
    ) -> Sequence[tuple[Fulfilment, Order]]:
        """Newest first, with their orders; unpaid orders' fulfilments are not shown to
        sellers (nothing to pack until the buyer paid or chose cash on delivery)."""
        conditions: list[ColumnElement[bool]] = []
        if household_ids:
            conditions.append(Fulfilment.household_id.in_(household_ids))
        if cooperative_ids:
            conditions.append(Fulfilment.cooperative_id.in_(cooperative_ids))
        if not everyone and not conditions:
            return []
        query = select(Fulfilment, Order).join(Order, Order.id == Fulfilment.order_id)
        if not everyone:
            query = query.where(or_(*conditions))
        query = query.where(
            Order.status.not_in([OrderStatus.PENDING_PAYMENT.value, OrderStatus.PARTIALLY_PAID])
        )
        result = await self._session.execute(
            query.order_by(Fulfilment.created_at.desc(), Fulfilment.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [(f, o) for f, o in result.all()]

    async def lines_of(self, fulfilment_ids: Sequence[uuid.UUID]) -> Sequence[OrderLine]:
        if not fulfilment_ids:
            return []
        result = await self._session.execute(
            select(OrderLine)
            .where(OrderLine.fulfilment_id.in_(fulfilment_ids))
            .order_by(OrderLine.position)
        )
        return result.scalars().all()


# A new key is inserted in flight; a key whose record expired (24 h) or whose request died
# holding it (lease passed) is taken over; any other existing key is left alone.
_CLAIM = text(
    """
    INSERT INTO idempotency_records AS r
           (id, scope, key, fingerprint, status, locked_until, expires_at, created_at, updated_at)
    VALUES (:id, :scope, :key, :fingerprint, 'in_flight', :locked_until, :expires_at, :now, :now)
    ON CONFLICT (scope, key) DO UPDATE
       SET id = excluded.id, fingerprint = excluded.fingerprint, status = 'in_flight',
           locked_until = excluded.locked_until, expires_at = excluded.expires_at,
           response_status = NULL, response_body = NULL, order_id = NULL,
           created_at = excluded.created_at, updated_at = excluded.updated_at
     WHERE r.expires_at < :now OR (r.status = 'in_flight' AND r.locked_until < :now)
    RETURNING r.id
    """
)


_COMPLETE = text(
    """
    UPDATE idempotency_records
       SET status = 'completed', response_status = :status_code, response_body = :body,
           order_id = :order_id, updated_at = :now
     WHERE id = :id AND status = 'in_flight'
    RETURNING id
    """
).bindparams(bindparam("body", type_=LargeBinary()), bindparam("order_id", type_=Uuid()))


class IdempotencyRepository:
    """Claims run in a session of their own (committed at once, so a concurrent request
    sees the claim); completion runs in the caller's session, with the work it records."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(
        self,
        *,
        scope: str,
        key: str,
        fingerprint: str,
        claim_id: uuid.UUID,
        now: datetime,
        locked_until: datetime,
        expires_at: datetime,
    ) -> bool:
        """Insert the in-flight marker, or take over a record that expired or whose
        request died holding it. True when this call holds the claim."""
        statement = _CLAIM
        params = {
            "id": claim_id,
            "scope": scope,
            "key": key,
            "fingerprint": fingerprint,
            "locked_until": locked_until,
            "expires_at": expires_at,
            "now": now,
        }
        return (await self._session.execute(statement, params)).scalar_one_or_none() is not None

    async def find(self, scope: str, key: str) -> StoredAnswer | None:
        row = (
            await self._session.execute(
                select(
                    IdempotencyRecord.fingerprint,
                    IdempotencyRecord.status,
                    IdempotencyRecord.response_status,
                    IdempotencyRecord.response_body,
                ).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
            )
        ).one_or_none()
        if row is None:
            return None
        return StoredAnswer(
            fingerprint=row.fingerprint,
            in_flight=row.status == IdempotencyStatus.IN_FLIGHT.value,
            status_code=row.response_status,
            body=row.response_body,
        )

    async def complete(
        self,
        *,
        claim_id: uuid.UUID,
        status_code: int,
        body: bytes,
        order_id: uuid.UUID | None,
        now: datetime,
    ) -> bool:
        """Record the answer; False when the claim was lost (taken over after its lease),
        in which case the caller must not commit its work."""
        result = await self._session.execute(
            _COMPLETE,
            {
                "id": claim_id,
                "status_code": status_code,
                "body": body,
                "order_id": order_id,
                "now": now,
            },
        )
        return result.scalar_one_or_none() is not None

    async def claim_many(
        self,
        claims: Sequence[NewClaim],
        *,
        now: datetime,
        locked_until: datetime,
        expires_at: datetime,
    ) -> set[uuid.UUID]:
        """`claim` for many keys in one statement, in the caller's transaction (a group
        commit's: the claim commits with the answer). Keys must be distinct; they are
        locked in sorted order so two batches cannot deadlock. The ids that hold a claim."""
        if not claims:
            return set()
        rows = await self._session.execute(
            _CLAIM_MANY,
            {
                "ids": [c.claim_id for c in claims],
                "scopes": [c.scope for c in claims],
                "keys": [c.key for c in claims],
                "fingerprints": [c.fingerprint for c in claims],
                "now": now,
                "locked_until": locked_until,
                "expires_at": expires_at,
            },
        )
        return {row[0] for row in rows}

    async def find_many(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredAnswer]:
        if not keys:
            return {}
        rows = await self._session.execute(
            select(
                IdempotencyRecord.scope,
                IdempotencyRecord.key,
                IdempotencyRecord.fingerprint,
                IdempotencyRecord.status,
                IdempotencyRecord.response_status,
                IdempotencyRecord.response_body,
            ).where(tuple_(IdempotencyRecord.scope, IdempotencyRecord.key).in_(list(keys)))
        )
        return {
            (row.scope, row.key): StoredAnswer(
                fingerprint=row.fingerprint,
                in_flight=row.status == IdempotencyStatus.IN_FLIGHT.value,
                status_code=row.response_status,
                body=row.response_body,
            )
            for row in rows
        }

    async def abandon(self, claim_id: uuid.UUID) -> None:
        await self._session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.id == claim_id,
                IdempotencyRecord.status == IdempotencyStatus.IN_FLIGHT.value,
            )
        )

    async def purge_expired(self, now: datetime, limit: int) -> int:
        doomed = (
            select(IdempotencyRecord.id)
            .where(IdempotencyRecord.expires_at < now)
            .limit(limit)
            .scalar_subquery()
        )
        result = await self._session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(doomed))
        )
        return int(result.rowcount)  # type: ignore[attr-defined] # CursorResult of a DELETE


_CLAIM_MANY = text(
    """
    INSERT INTO idempotency_records AS r
           (id, scope, key, fingerprint, status, locked_until, expires_at, created_at, updated_at)
    SELECT u.id, u.scope, u.key, u.fingerprint, 'in_flight', :locked_until, :expires_at,
           :now, :now
      FROM unnest(CAST(:ids AS uuid[]), CAST(:scopes AS varchar[]), CAST(:keys AS varchar[]),
                  CAST(:fingerprints AS varchar[])) AS u(id, scope, key, fingerprint)
     ORDER BY u.scope, u.key
    ON CONFLICT (scope, key) DO UPDATE
       SET id = excluded.id, fingerprint = excluded.fingerprint, status = 'in_flight',
           locked_until = excluded.locked_until, expires_at = excluded.expires_at,
           response_status = NULL, response_body = NULL, order_id = NULL,
           created_at = excluded.created_at, updated_at = excluded.updated_at
     WHERE r.expires_at < :now OR (r.status = 'in_flight' AND r.locked_until < :now)
    RETURNING r.id
    """
)


_ANSWERS_CTE = """a AS (
    UPDATE idempotency_records AS r
       SET status = 'completed', response_status = u.status, response_body = u.body,
           order_id = u.order_id, updated_at = :a_now
      FROM unnest(CAST(:a_ids AS uuid[]), CAST(:a_statuses AS smallint[]),
                  CAST(:a_bodies AS bytea[]), CAST(:a_order_ids AS uuid[]))
           AS u(id, status, body, order_id)
     WHERE r.id = u.id AND r.status = 'in_flight'
    RETURNING r.id)"""
"""The answers of a batch's claims, as a CTE of its orders' INSERT: both in one statement."""

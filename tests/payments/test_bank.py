"""VietQR orders paid by bank transfer: the QR, the signed bank feed, the statement import,
and the admin's queue of unmatched credits."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.orders.models import Order, OrderStatus
from marketplace.orders.service import OrderService
from marketplace.payments.models import BankTransaction, OutboxEvent, SellerLedgerEntry
from marketplace.payments.vietqr import parse_vietqr
from marketplace.sellers.models import PovertyStatus
from tests.accounts.factories import auth_headers, create_user
from tests.payments.conftest import COLLECTION_ACCOUNT, COLLECTION_BIN
from tests.payments.factories import BANK_WEBHOOK, bank_headers, feed, fresh, place, transfer
from tests.support.jobs import RecordingSender


async def ledger_total(session: AsyncSession, order: Order) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(SellerLedgerEntry.amount), 0)).where(
            SellerLedgerEntry.order_id == order.id
        )
    )
    return int(total or 0)


async def bank_rows(session: AsyncSession, reference: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(BankTransaction)
        .where(BankTransaction.bank_reference == reference)
    )
    return int(count or 0)


async def post_feed(client: httpx.AsyncClient, *transfers: dict[str, object]) -> httpx.Response:
    body = feed(*transfers)
    return await client.post(BANK_WEBHOOK, content=body, headers=bank_headers(body))


async def test_the_vietqr_of_an_order_asks_for_what_it_owes_with_its_payment_code(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    buyer, order = await place(session, orders, price_amount=180_000, quantity=2)
    headers = await auth_headers(session, buyer)

    response = await client.get(f"/api/orders/{order.id}/vietqr", headers=headers)
    image = await client.get(f"/api/orders/{order.id}/vietqr.png", headers=headers)

    assert response.status_code == 200
    qr = parse_vietqr(response.json()["payload"])
    assert (qr.bank_bin, qr.account, qr.amount) == (COLLECTION_BIN, COLLECTION_ACCOUNT, 360_000)
    assert qr.description == order.payment_code
    assert qr.is_dynamic
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n")


async def test_another_buyer_cannot_see_an_orders_qr(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    _, order = await place(session, orders)
    stranger = await auth_headers(session, await create_user(session, role=Role.BUYER))

    response = await client.get(f"/api/orders/{order.id}/vietqr.png", headers=stranger)

    assert response.status_code == 404


async def test_a_cash_on_delivery_order_has_no_qr(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    buyer, order = await place(session, orders, method="cod")

    response = await client.get(
        f"/api/orders/{order.id}/vietqr", headers=await auth_headers(session, buyer)
    )

    assert response.status_code == 409
    assert response.json()["code"] == "not_awaiting_transfer"


async def test_an_exact_transfer_pays_the_order_and_credits_the_seller_net_of_the_fee(
    session: AsyncSession,
    client: httpx.AsyncClient,
    orders: OrderService,
    job_sender: RecordingSender,
) -> None:
    _, order = await place(session, orders, price_amount=180_000)

    response = await post_feed(client, transfer(f"thanh toan {order.payment_code}", 180_000))

    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["outcome"] == "exact"
    order = await fresh(session, order)
    assert order.status == OrderStatus.PAID
    assert await ledger_total(session, order) == 171_000
    outbox = (
        await session.execute(select(OutboxEvent).where(OutboxEvent.order_id == order.id))
    ).scalar_one()
    assert outbox.kind == "payment_settled"
    assert "payments.deliver_outbox" in job_sender.names()


async def test_a_poor_households_sale_pays_no_platform_fee(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    _, order = await place(session, orders, price_amount=180_000, status=PovertyStatus.POOR)

    await post_feed(client, transfer(order.payment_code, 180_000))

    assert await ledger_total(session, order) == 180_000


async def test_a_partial_transfer_leaves_the_rest_owed_until_a_second_one_pays_it(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    _, order = await place(session, orders, price_amount=180_000)

    first = await post_feed(client, transfer(order.payment_code, 100_000))
    order = await fresh(session, order)
    status_between = order.status
    second = await post_feed(client, transfer(order.payment_code, 80_000))
    order = await fresh(session, order)

    assert first.json()["results"][0]["outcome"] == "partial"
    assert first.json()["results"][0]["amount_still_due"] == 80_000
    assert status_between == OrderStatus.PARTIALLY_PAID
    assert await ledger_total(session, order) == 171_000
    assert second.json()["results"][0]["outcome"] == "exact"
    assert order.status == OrderStatus.PAID


async def test_an_overpayment_pays_the_order_and_records_the_excess_to_return(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    _, order = await place(session, orders, price_amount=180_000)

    response = await post_feed(client, transfer(order.payment_code, 200_000))

    order = await fresh(session, order)
    assert response.json()["results"][0]["outcome"] == "over"
    assert response.json()["results"][0]["excess_amount"] == 20_000
    assert order.status == OrderStatus.PAID
    assert order.excess_amount == 20_000
    assert await ledger_total(session, order) == 171_000


async def test_a_code_mangled_by_the_bank_still_matches(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    _, order = await place(session, orders, price_amount=95_000)
    assert order.payment_code is not None
    mangled = f"MBVCB.1234.{order.payment_code[:5].lower()} {order.payment_code[5:]}.CT tu 0071"

    response = await post_feed(client, transfer(mangled, 95_000))

    assert response.json()["results"][0]["outcome"] == "exact"


async def test_a_replayed_bank_reference_changes_nothing(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    _, order = await place(session, orders, price_amount=180_000)
    credit = transfer(order.payment_code, 100_000)

    await post_feed(client, credit)
    again = await post_feed(client, credit)

    order = await fresh(session, order)
    assert again.status_code == 200
    assert again.json()["results"][0]["outcome"] == "duplicate"
    assert order.paid_amount == 100_000
    assert await bank_rows(session, str(credit["reference"])) == 1


async def test_a_transfer_without_a_known_code_waits_for_an_admin_who_applies_it(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    _, order = await place(session, orders, price_amount=180_000)
    admin = await auth_headers(session, await create_user(session, role=Role.ADMIN))
    credit = transfer("chuyen tien mua cam cho me", 180_000)

    response = await post_feed(client, credit)
    queue = await client.get("/api/admin/payments/bank-transactions", headers=admin)
    [waiting] = [t for t in queue.json()["items"] if t["reference"] == credit["reference"]]
    resolved = await client.post(
        f"/api/admin/payments/bank-transactions/{waiting['id']}/resolve",
        json={"order_id": str(order.id), "note": "Khách gọi điện xác nhận"},
        headers=admin,
    )
    again = await client.post(
        f"/api/admin/payments/bank-transactions/{waiting['id']}/resolve",
        json={"dismiss": True},
        headers=admin,
    )

    assert response.json()["results"][0]["outcome"] == "unmatched"
    assert waiting["reason"] == "no_code"
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    order = await fresh(session, order)
    assert order.status == OrderStatus.PAID
    assert again.status_code == 409
    assert again.json()["code"] == "already_resolved"


async def test_money_for_an_order_already_cancelled_goes_to_the_queue(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    _, order = await place(session, orders, price_amount=180_000)
    await orders.cancel(order.id, by=None, reason="hold_expired")

    response = await post_feed(client, transfer(order.payment_code, 180_000))

    row = (
        await session.execute(select(BankTransaction).where(BankTransaction.amount == 180_000))
    ).scalar_one()
    assert response.json()["results"][0]["outcome"] == "unmatched"
    assert (row.status, row.reason) == ("unmatched", "order_not_payable")


@pytest.mark.parametrize(
    ("spoil", "code"),
    [
        ("forged", "invalid_signature"),
        ("tampered", "invalid_signature"),
        ("stale", "stale_timestamp"),
        ("unsigned", "invalid_signature"),
    ],
    ids=["forged", "tampered", "stale", "unsigned"],
)
async def test_a_webhook_that_does_not_verify_is_refused_and_changes_nothing(
    session: AsyncSession,
    client: httpx.AsyncClient,
    orders: OrderService,
    spoil: str,
    code: str,
) -> None:
    _, order = await place(session, orders, price_amount=180_000)
    credit = transfer(order.payment_code, 180_000)
    body = feed(credit)
    headers = bank_headers(body)
    if spoil == "forged":
        headers = bank_headers(body, secret="not-the-bank")
    elif spoil == "tampered":
        body = body.replace(b"180000", b"900000")
    elif spoil == "stale":
        headers = bank_headers(body, timestamp=int(time.time()) - 301)
    else:
        headers = {"Content-Type": "application/json"}

    response = await client.post(BANK_WEBHOOK, content=body, headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    order = await fresh(session, order)
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert await bank_rows(session, str(credit["reference"])) == 0


async def test_a_signed_but_malformed_feed_is_refused_naming_the_field(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    body = feed({"reference": "FT1", "amount": -5, "description": "x", "credited_at": "now"})

    response = await client.post(BANK_WEBHOOK, content=body, headers=bank_headers(body))

    assert response.status_code == 422
    assert "transactions[0].amount" in response.json()["detail"]


async def test_a_signed_feed_with_a_nul_is_refused_naming_the_field_and_records_nothing(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    _, order = await place(session, orders, price_amount=180_000)
    good = transfer(order.payment_code, 180_000)
    bad = transfer(f"chuyen tien\x00{order.payment_code}", 180_000)

    response = await post_feed(client, good, bad)

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "transactions[1].description"
    assert await bank_rows(session, str(good["reference"])) == 0
    assert (await fresh(session, order)).status == OrderStatus.PENDING_PAYMENT


async def test_a_statement_holding_a_nul_is_refused_whole_naming_its_line(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    admin = await auth_headers(session, await create_user(session, role=Role.ADMIN))
    reference = "FT" + uuid.uuid4().hex[:10].upper()
    csv = (
        "reference,credited_at,amount,description\n"
        f"{reference},2026-11-23 09:15:00,180000,CK thanh toan\n"
        f"{reference}X,2026-11-23 09:16:00,95000,chuyen\x00khoan\n"
    ).encode()

    response = await client.post(
        "/api/admin/payments/bank-statements",
        content=csv,
        headers={**admin, "Content-Type": "text/csv"},
    )

    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"field": "file", "message": "line 3 contains a NUL character, which cannot be stored"}
    ]
    assert await bank_rows(session, reference) == 0


STATEMENT = """reference,credited_at,amount,description
FT{a},2026-11-23 09:15:00,180.000,CK {code} thanh toan
FT{b},23/11/2026 09:20,"95,000",chuyen khoan khong ma
FT{c},hom qua,180000,{code}
FT{d},2026-11-23T09:30:00+07:00,abc,{code}
,2026-11-23 09:31:00,1000,{code}
"""


async def test_a_statement_imports_its_good_rows_and_reports_bad_ones_by_line_once(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    _, order = await place(session, orders, price_amount=180_000)
    admin = await auth_headers(session, await create_user(session, role=Role.ADMIN))
    tag = uuid.uuid4().hex[:8].upper()
    csv = STATEMENT.format(
        a=tag + "A", b=tag + "B", c=tag + "C", d=tag + "D", code=order.payment_code
    ).encode()
    url = "/api/admin/payments/bank-statements"

    first = await client.post(url, content=csv, headers={**admin, "Content-Type": "text/csv"})
    second = await client.post(url, content=csv, headers={**admin, "Content-Type": "text/csv"})

    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["imported"], body["duplicates"]) == (2, 0)
    assert [e["line"] for e in body["errors"]] == [4, 5, 6]
    assert "credited_at" in body["errors"][0]["message"]
    assert "amount" in body["errors"][1]["message"]
    assert "reference" in body["errors"][2]["message"]
    assert [r["outcome"] for r in body["results"]] == ["exact", "unmatched"]
    again = second.json()
    assert (again["imported"], again["duplicates"]) == (0, 2)
    order = await fresh(session, order)
    assert order.status == OrderStatus.PAID
    assert order.paid_amount == 180_000
    assert await ledger_total(session, order) == 171_000


async def test_a_statement_without_the_expected_columns_is_refused_whole(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    admin = await auth_headers(session, await create_user(session, role=Role.ADMIN))

    response = await client.post(
        "/api/admin/payments/bank-statements",
        content=b"ngay,so tien\n2026-11-23,1000\n",
        headers={**admin, "Content-Type": "text/csv"},
    )

    assert response.status_code == 422
    assert "reference" in response.json()["detail"]


async def test_only_admins_import_statements_and_see_the_queue(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    buyer = await auth_headers(session, await create_user(session, role=Role.BUYER))

    statement = await client.post(
        "/api/admin/payments/bank-statements", content=b"reference\n", headers=buyer
    )
    queue = await client.get("/api/admin/payments/bank-transactions", headers=buyer)

    assert (statement.status_code, queue.status_code) == (403, 403)

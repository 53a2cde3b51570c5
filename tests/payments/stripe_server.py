"""A local HTTP server that plays the part of Stripe's API for the real `stripe` SDK.

It answers the two calls payments makes (create a PaymentIntent, create a Refund) the way
Stripe does, including idempotency: a request repeating an Idempotency-Key gets the first
response again. Every request is recorded so tests can check what the SDK sent (the amount
in VND's zero-decimal form, the idempotency key). `signed(...)` makes a `Stripe-Signature`
header exactly as Stripe computes it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    idempotency_key: str | None


@dataclass
class FakeStripe:
    requests: list[RecordedRequest] = field(default_factory=list)
    responses_by_key: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    refund_status: str = "succeeded"
    fail_next: int | None = None
    """An HTTP status the next call answers with (a card error, an outage)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def handle(
        self, method: str, path: str, params: dict[str, str], key: str | None
    ) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append(RecordedRequest(method, path, params, key))
            if key is not None and key in self.responses_by_key:
                return self.responses_by_key[key]
            if self.fail_next is not None:
                status, self.fail_next = self.fail_next, None
                answer = (status, _error(status))
            elif method == "POST" and path == "/v1/payment_intents":
                answer = (200, _payment_intent(params))
            elif method == "POST" and path == "/v1/refunds":
                answer = (200, _refund(params, self.refund_status))
            else:
                answer = (404, _error(404))
            if key is not None and answer[0] < 500:
                self.responses_by_key[key] = answer
            return answer


def _payment_intent(params: dict[str, str]) -> dict[str, Any]:
    intent_id = "pi_" + secrets.token_hex(12)
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": int(params["amount"]),
        "amount_received": 0,
        "currency": params["currency"],
        "status": "requires_payment_method",
        "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
        "metadata": {
            key[len("metadata[") : -1]: value
            for key, value in params.items()
            if key.startswith("metadata[")
        },
        "livemode": False,
    }


def _refund(params: dict[str, str], status: str) -> dict[str, Any]:
    return {
        "id": "re_" + secrets.token_hex(12),
        "object": "refund",
        "amount": int(params["amount"]),
        "currency": "vnd",
        "payment_intent": params["payment_intent"],
        "status": status,
    }


def _error(status: int) -> dict[str, Any]:
    kind = "card_error" if status == 402 else "api_error"
    return {"error": {"type": kind, "message": "Your card was declined.", "code": "card_declined"}}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self._answer("POST")

    def do_GET(self) -> None:
        self._answer("GET")

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        params = dict(parse_qsl(body, keep_blank_values=True))
        status, payload = self.server.fake.handle(
            method, self.path.split("?")[0], params, self.headers.get("Idempotency-Key")
        )
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", "req_" + secrets.token_hex(6))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeStripe


class StripeServer:
    """Started and stopped by a test fixture; `base_url` goes into settings."""

    def __init__(self) -> None:
        self.fake = FakeStripe()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self.fake
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def signed(payload: str, secret: str, *, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header: `t=<unix>,v1=<hex HMAC-SHA256 of "t.payload">`."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(event_type: str, data_object: dict[str, Any], *, event_id: str | None = None) -> str:
    """A Stripe event body as Stripe sends it (the SDK parses it after checking)."""
    return json.dumps(
        {
            "id": event_id or "evt_" + secrets.token_hex(12),
            "object": "event",
            "api_version": "2025-01-27.acacia",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
            "data": {"object": data_object},
        }
    )

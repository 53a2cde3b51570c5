"""Conditional GET for read-only reference data: an ETag from the body, 304 on a match.

The ETag is a digest of the exact bytes sent, so it changes whenever the answer does (a
newer package release, a special zone's area set) with no version bookkeeping. The server
still builds the answer; a 304 saves the client the transfer, and `Cache-Control: public`
lets browsers and proxies skip asking at all for `max_age` seconds. Only 200 answers are
cached: an error must not be served from a cache for an hour.
"""

from __future__ import annotations

import hashlib

from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

_SAFE_METHODS = frozenset({"GET", "HEAD"})


def body_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): `W/"x"` matches `"x"`."""
    if not if_none_match:
        return False
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


class ConditionalGetMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, max_age: int) -> None:
        self.cache_control = f"public, max-age={max_age}"

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope.get("method") not in _SAFE_METHODS:
            await next_app(scope, receive, send)
            return
        if_none_match = Headers.from_scope(scope).get("if-none-match")
        start: HTTPResponseStartEvent | None = None
        chunks: list[bytes] = []

        async def buffered_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message.get("status") == 200:
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            etag = body_etag(body)
            headers = MutableScopeHeaders.from_message(start)
            headers["etag"] = etag
            headers["cache-control"] = self.cache_control
            if etag_matches(if_none_match, etag):
                for name in ("content-length", "content-type"):
                    if name in headers:
                        del headers[name]
                start["status"] = 304
                body = b""
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await next_app(scope, receive, buffered_send)

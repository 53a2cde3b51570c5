"""Refuse text PostgreSQL cannot store, for every route at once, before any handler runs.

PostgreSQL `text`, `varchar` and `jsonb` cannot hold the NUL character: asyncpg fails on it
mid-transaction and the client would see a 500. JSON may carry it (`"\\u0000"`), and so may a
query string, a path or a form (`%00`), so it is refused here as a 422 naming each field,
rather than in each schema or service. (The other characters PostgreSQL refuses, lone UTF-16
surrogates and invalid UTF-8, never get this far: msgspec refuses them in JSON, and query
strings are decoded with replacement characters.)

What is checked: path parameters, query parameters (HTTP and WebSocket), and the body of
every route whose handler takes `data` (JSON or a URL-encoded form), which is the body
Litestar decodes for the handler. Routes that read their raw body (signed webhooks, file
imports, the embedded store's uploads) are left alone: their bytes are verified or parsed by
their own code, and reading an unbounded upload here would defeat its streaming.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Request
from litestar.enums import RequestEncodingType, ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.params import BodyKwarg
from litestar.types import ASGIApp, Receive, Scope, Send

from marketplace.errors import FieldError, ValidationFailed

NUL = "\x00"
MESSAGE = "must not contain the NUL character (U+0000)"
MAX_REPORTED = 20
"""More offending fields than this are not listed: the client has enough to go on."""

# Cheap tests on the raw bytes first: only a request that might carry a NUL is decoded here.
_JSON_NUL = b"\\u0000"
_URL_NUL = b"%00"


class StorableTextMiddleware:
    """Runs after routing and authentication: it knows the route's parameters and the
    handler's body type, and an anonymous caller of a guarded route still gets its 401."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in (ScopeType.HTTP, ScopeType.WEBSOCKET):
            errors = [*_path_errors(scope), *_query_errors(scope)]
            if not errors and scope["type"] == ScopeType.HTTP:
                errors = await _body_errors(scope, receive)
            if errors:
                errors = errors[:MAX_REPORTED]
                raise ValidationFailed(
                    "; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors
                )
        await self.app(scope, receive, send)


def _path_errors(scope: Scope) -> Iterator[FieldError]:
    for name, value in (scope.get("path_params") or {}).items():
        if isinstance(value, str) and NUL in value:
            yield FieldError(name, MESSAGE)


def _query_errors(scope: Scope) -> Iterator[FieldError]:
    raw: bytes = scope.get("query_string", b"")
    if _URL_NUL in raw or b"\x00" in raw:
        yield from _pair_errors(raw)


def _pair_errors(raw: bytes) -> Iterator[FieldError]:
    # Parsed as Litestar does (UTF-8 with replacement), so the names match its parameters.
    for name, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        if NUL in name or NUL in value:
            yield FieldError(_printable(name), MESSAGE)


async def _body_errors(scope: Scope, receive: Receive) -> list[FieldError]:
    handler = scope.get("route_handler")
    if not isinstance(handler, HTTPRouteHandler):
        return []
    media_type = _decoded_body_type(handler)
    if media_type not in (RequestEncodingType.JSON, RequestEncodingType.URL_ENCODED):
        return []
    # The body is cached on the scope: the handler's own request reads it from there.
    body = await Request[Any, Any, Any](scope, receive).body()
    if media_type is RequestEncodingType.URL_ENCODED:
        if _URL_NUL in body or b"\x00" in body:
            return list(_pair_errors(body))
        return []
    return [FieldError(field, MESSAGE) for field in json_nul_fields(body)]


def json_nul_fields(body: bytes) -> list[str]:
    """The fields of a JSON document whose text holds a NUL (`body` for a bare string).
    Malformed JSON has none: whoever decodes it refuses it with its own error. Handlers that
    decode their raw body themselves (the signed bank feed) call this after verifying it."""
    if _JSON_NUL not in body:
        return []
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return []
    return [path or "body" for path in _nul_paths(decoded, "")]


def _decoded_body_type(handler: HTTPRouteHandler) -> RequestEncodingType | str | None:
    """How Litestar decodes the body for this handler, or None when it does not."""
    field = handler.parsed_fn_signature.parameters.get("data")
    if field is None:
        return None
    if isinstance(field.kwarg_definition, BodyKwarg):
        return field.kwarg_definition.media_type
    return RequestEncodingType.JSON


def _nul_paths(value: object, path: str) -> Iterator[str]:
    """Dotted paths (`lines[0].note`, as validation errors name fields) of every string,
    object key included, that holds a NUL."""
    if isinstance(value, str):
        if NUL in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{_printable(key)}" if path else _printable(key)
            if NUL in key:
                yield child
            else:
                yield from _nul_paths(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, f"{path}[{index}]")


def _printable(name: str) -> str:
    """A field name that itself holds a NUL is reported with the NUL spelt out."""
    return name.replace(NUL, "\\u0000")

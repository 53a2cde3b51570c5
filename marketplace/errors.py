"""The error hierarchy and its RFC 9457 problem+json rendering.

Every error a client sees carries a stable `code` it can branch on; the `title` is for
people. Domain packages subclass these in their own `errors.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec
import structlog
from litestar import Litestar, MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.openapi import ResponseSpec
from litestar.routes import HTTPRoute
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from marketplace.observability import current_request_id
from marketplace.outages import RETRY_AFTER_SECONDS as OUTAGE_RETRY_AFTER_SECONDS
from marketplace.outages import unavailable_service

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://marketplace.example/problems/"


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class MarketplaceError(Exception):
    """Base of every error we raise on purpose."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = tuple(errors)
        self.headers = headers or {}
        self.extra = extra or {}


class ValidationFailed(MarketplaceError):
    status_code = 422
    code = "validation_failed"
    title = "The request has invalid fields"

    @classmethod
    def for_field(cls, field: str, message: str) -> ValidationFailed:
        return cls(f"{field}: {message}", errors=[FieldError(field, message)])


class NotAuthenticated(MarketplaceError):
    status_code = 401
    code = "not_authenticated"
    title = "Authentication required"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class PermissionDenied(MarketplaceError):
    status_code = 403
    code = "forbidden"
    title = "You may not do this"


class NotFound(MarketplaceError):
    status_code = 404
    code = "not_found"
    title = "Not found"


class Conflict(MarketplaceError):
    status_code = 409
    code = "conflict"
    title = "Conflict with the current state"


class RateLimited(MarketplaceError):
    status_code = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after


class ServiceUnavailable(MarketplaceError):
    status_code = 503
    code = "service_unavailable"
    title = "A backing service is unavailable"


def problem(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    instance: str | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    if extra:
        body.update(extra)
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    return Response(
        content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers or {}
    )


def handle_marketplace_error(
    request: Request[Any, Any, Any], exc: MarketplaceError
) -> Response[Any]:
    return problem(
        status=exc.status_code,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
        instance=request.url.path,
    )


def _validation_field_errors(exc: ValidationException) -> list[FieldError]:
    """Litestar reports `{"key": ..., "message": ..., "source": ...}` per bad field."""
    out: list[FieldError] = []
    extra = exc.extra if isinstance(exc.extra, list) else [exc.extra] if exc.extra else []
    for item in extra:
        if isinstance(item, dict):
            key = str(item.get("key") or item.get("source") or "body")
            out.append(FieldError(field=key, message=str(item.get("message", exc.detail))))
    if not out:
        out.append(FieldError(field=_field_from_message(exc.detail), message=exc.detail))
    return out


def _field_from_message(message: str) -> str:
    # msgspec says "... - at `$.items[0].quantity`"; turn that into a dotted field path.
    marker = "at `$."
    if marker in message:
        return message.split(marker, 1)[1].rstrip("`").strip()
    return "body"


def handle_validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    errors = _validation_field_errors(exc)
    return problem(
        status=422,
        code=ValidationFailed.code,
        title=ValidationFailed.title,
        detail="; ".join(f"{e.field}: {e.message}" for e in errors),
        errors=errors,
        instance=request.url.path,
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "service_unavailable",
}


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error")
    headers = dict(exc.headers or {})
    if isinstance(exc, MethodNotAllowedException):
        code = "method_not_allowed"
    elif isinstance(exc, NotFoundException):
        code = "not_found"
    elif isinstance(exc, NotAuthorizedException):
        code = "not_authenticated"
        headers.setdefault("WWW-Authenticate", "Bearer")
    elif isinstance(exc, PermissionDeniedException):
        code = "forbidden"
    if status >= 500:
        log.error("http_exception", status=status, detail=exc.detail, path=request.url.path)
    return problem(
        status=status,
        code=code,
        title=code.replace("_", " ").capitalize(),
        detail=exc.detail,
        headers=headers,
        instance=request.url.path,
    )


_SERVICE_NAMES = {"database": "The database", "redis": "Redis"}


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Log the traceback with the request id; tell the client nothing about internals.
    PostgreSQL or Redis being unreachable is an outage, not a bug: 503 with Retry-After."""
    service = unavailable_service(exc)
    if service is not None:
        log.warning(
            "backing_service_unavailable",
            service=service,
            path=request.url.path,
            method=request.method,
            error=f"{type(exc).__name__}: {exc}"[:300],
        )
        return problem(
            status=503,
            code=ServiceUnavailable.code,
            title=ServiceUnavailable.title,
            detail=f"{_SERVICE_NAMES[service]} is unreachable for a moment; retry shortly.",
            headers={"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)},
            extra={"service": service},
            instance=request.url.path,
        )
    log.exception("unhandled_exception", path=request.url.path, method=request.method)
    return problem(
        status=HTTP_500_INTERNAL_SERVER_ERROR,
        code="internal_error",
        title="Internal server error",
        detail="Something went wrong on our side; quote the request id when reporting it.",
        instance=request.url.path,
    )


class ProblemFieldError(msgspec.Struct):
    field: str
    message: str


class Problem(msgspec.Struct, kw_only=True):
    """The documented shape of every error body, so clients (and the contract fuzz) can rely
    on `code` whatever the operation; some problems add keys of their own (`retry_after`)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[ProblemFieldError] | None = None
    request_id: str | None = None


# What any operation may answer besides its success: bad or unauthorised input, missing or
# conflicting objects, limits, and an unavailable dependency. 500 stays undocumented: a bug.
DOCUMENTED_ERROR_STATUSES = (400, 401, 403, 404, 409, 413, 415, 422, 429, 502, 503)
PROBLEM_RESPONSES = {
    status: ResponseSpec(
        data_container=Problem,
        media_type=PROBLEM_JSON,
        description="A problem (RFC 9457)",
        generate_examples=False,
    )
    for status in DOCUMENTED_ERROR_STATUSES
}


def document_problem_responses(app: Litestar) -> None:
    """Every operation documents the problem+json errors instead of Litestar's default 400
    body, which the handlers above never send; a handler's own `responses` win."""
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                handler.responses = {**PROBLEM_RESPONSES, **(handler.responses or {})}


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    MarketplaceError: handle_marketplace_error,
    ValidationException: handle_validation_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}

__all__ = [
    "EXCEPTION_HANDLERS",
    "PROBLEM_JSON",
    "PROBLEM_RESPONSES",
    "Conflict",
    "FieldError",
    "MarketplaceError",
    "MediaType",
    "NotAuthenticated",
    "NotFound",
    "PermissionDenied",
    "Problem",
    "RateLimited",
    "ServiceUnavailable",
    "ValidationFailed",
    "document_problem_responses",
    "problem",
]

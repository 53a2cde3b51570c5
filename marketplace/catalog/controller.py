"""HTTP endpoints of the catalog: public listing, search, product pages and traceability;
sellers' product management; photo upload slots; the embedded mode's media endpoints.

Write bodies are decoded twice: Litestar's own (lenient) pass documents the schema, then a
strict msgspec pass refuses a price sent as `"180000"` or `180000.0`, naming the field.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Controller, MediaType, Request, Response, get, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import File, Redirect
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_307_TEMPORARY_REDIRECT

from marketplace.accounts.guards import allow, public
from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.catalog.browse import DEFAULT_PAGE, MAX_PAGE, CatalogBrowser, ListingQuery
from marketplace.catalog.errors import InvalidField, MediaUnavailable, UploadTooLarge
from marketplace.catalog.media import (
    REDIRECT_MAX_AGE_SECONDS,
    RENDITIONS_PREFIX,
    UPLOADS_PREFIX,
    ImageService,
    in_thread,
)
from marketplace.catalog.models import MAX_PRICE_AMOUNT, Category, CertificationKind
from marketplace.catalog.schemas import (
    CertificationCreate,
    CertificationRead,
    ContributionsCreate,
    ImageOwnerRead,
    LotCreate,
    LotRead,
    NoticeRead,
    ProductCreate,
    ProductOwnerRead,
    ProductOwnerSummary,
    ProductPage,
    ProductRead,
    ProductUpdate,
    TraceRead,
    UploadSlotCreate,
    UploadSlotRead,
    VariantCreate,
    VariantRead,
    VariantUpdate,
)
from marketplace.catalog.service import CatalogService
from marketplace.catalog.storage import page_cache_of, storage_of
from marketplace.errors import PermissionDenied
from marketplace.http_cache import ConditionalGetMiddleware
from marketplace.resources import Resources, autocommit_sessions
from marketplace.unit_of_work import UnitOfWork
from media.storage import FilesystemStorage, InvalidKey, PresignedUrlRejected

T = TypeVar("T")

BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}]
SELLERS = allow(Role.FARMER, Role.COOPERATIVE_MANAGER, Role.HELPER, Role.ADMIN)
"""Who manages products; which products each may touch is the service's ownership check."""
LISTING_MAX_AGE_SECONDS = 30
"""Prices and stock change: a buyer may see a listing at most this stale."""
TRACE_MAX_AGE_SECONDS = 300
MEDIA_MAX_AGE_SECONDS = 3600


async def strict_body(request: Request[Any, Any, Any], schema: type[T]) -> T:
    try:
        return msgspec.json.decode(await request.body(), type=schema, strict=True)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$.")
        raise InvalidField(where.rstrip("`") or "body", message) from None
    except msgspec.DecodeError:
        raise InvalidField("body", "not valid JSON") from None


async def provide_catalog(
    uow: NamedDependency[UnitOfWork], resources: NamedDependency[Resources]
) -> CatalogService:
    return CatalogService(uow, resources.settings, resources.clock)


async def provide_browser(
    resources: NamedDependency[Resources],
) -> AsyncGenerator[CatalogBrowser, None]:
    """Public reads, in autocommit: a listing page is one statement, and BEGIN and COMMIT
    would double its round trips. A product page's few statements may see a change made
    between them; the next reload shows it whole. No session opens on a page-cache hit."""
    async with UnitOfWork(autocommit_sessions(resources), resources.job_sender) as uow:
        yield CatalogBrowser(uow, resources.settings, resources.clock, page_cache_of(resources))


async def provide_images(
    uow: NamedDependency[UnitOfWork], resources: NamedDependency[Resources]
) -> ImageService:
    return ImageService(uow, storage_of(resources), resources.settings, resources.clock)


Price = Annotated[int | None, QueryParameter(ge=0, le=MAX_PRICE_AMOUNT)]
PlaceCode = Annotated[str | None, QueryParameter(min_length=1, max_length=10)]


class ProductController(Controller):
    path = "/api/products"
    tags = ["catalog"]
    dependencies = {
        "catalog": Provide(provide_catalog),
        "browser": Provide(provide_browser),
        "images": Provide(provide_images),
    }
    # Only GET and HEAD are touched (and only public answers are GETs here).
    middleware = [ConditionalGetMiddleware(max_age=LISTING_MAX_AGE_SECONDS)]

    @get(
        "/",
        opt=public(),
        summary="Listed products: filters, search, keyset pages",
        responses={200: ResponseSpec(ProductPage, description="One page")},
    )
    async def list_products(
        self,
        *,
        browser: NamedDependency[CatalogBrowser],
        province: PlaceCode = None,
        commune: PlaceCode = None,
        category: FromQuery[Category | None] = None,
        certification: FromQuery[CertificationKind | None] = None,
        price_min: Price = None,
        price_max: Price = None,
        in_season: FromQuery[bool] = False,
        sold_by_poor: FromQuery[bool] = False,
        q: Annotated[
            str | None,
            QueryParameter(
                max_length=100, description="Words, with or without diacritics ('buoi da xanh')"
            ),
        ] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    ) -> Response[bytes]:
        body = await browser.list_products_json(
            ListingQuery(
                province=province,
                commune=commune,
                category=category,
                certification=certification,
                price_min=price_min,
                price_max=price_max,
                in_season=in_season,
                sold_by_poor=sold_by_poor,
                q=q,
                cursor=cursor,
                limit=limit,
            )
        )
        return Response(body, media_type=MediaType.JSON)

    @get(
        "/{product_id:uuid}",
        opt=public(),
        summary="A listed product",
        responses={200: ResponseSpec(ProductRead, description="The product")},
    )
    async def get_product(
        self, *, browser: NamedDependency[CatalogBrowser], product_id: FromPath[uuid.UUID]
    ) -> Response[bytes]:
        return Response(await browser.product_json(product_id), media_type=MediaType.JSON)

    @post("/", guards=[SELLERS], security=BEARER, summary="Create a product (as a draft)")
    async def create_product(
        self,
        *,
        request: Request[Any, Any, Any],
        data: JSONBody[ProductCreate],
        catalog: NamedDependency[CatalogService],
        current_user: NamedDependency[AuthenticatedUser],
    ) -> ProductOwnerRead:
        body = await strict_body(request, ProductCreate)
        return await catalog.create_product(current_user, body)

    @patch(
        "/{product_id:uuid}",
        guards=[SELLERS],
        security=BEARER,
        summary="Change a product; `status` lists or unlists it",
    )
    async def update_product(
        self,
        *,
        request: Request[Any, Any, Any],
        product_id: FromPath[uuid.UUID],
        data: JSONBody[ProductUpdate],
        catalog: NamedDependency[CatalogService],
        current_user: NamedDependency[AuthenticatedUser],
    ) -> ProductOwnerRead:
        body = await strict_body(request, ProductUpdate)
        return await catalog.update_product(current_user, product_id, body)

    @post("/{product_id:uuid}/variants", guards=[SELLERS], security=BEARER, summary="Add a variant")
    async def add_variant(
        self,
        *,
        request: Request[Any, Any, Any],
        product_id: FromPath[uuid.UUID],
        data: JSONBody[VariantCreate],
        catalog: NamedDependency[CatalogService],
        current_user: NamedDependency[AuthenticatedUser],
    ) -> VariantRead:
        body = await strict_body(request, VariantCreate)
        return await catalog.add_variant(current_user, product_id, body)

    @patch(
        "/{product_id:uuid}/variants/{variant_id:uuid}",
        guards=[SELLERS],
        security=BEARER,
        summary="Change a variant's price, stock or label, or deactivate it",
    )
    async def update_variant(
        self,
        *,
        request: Request[Any, Any, Any],
        product_id: FromPath[uuid.UUID],
        variant_id: FromPath[uuid.UUID],
        data: JSONBody[VariantUpdate],
        catalog: NamedDependency[CatalogService],
        current_user: NamedDependency[AuthenticatedUser],
    ) -> VariantRead:
        body = await strict_body(request, VariantUpdate)
        return await catalog.update_variant(current_user, product_id, variant_id, body)

    @post(
        "/{product_id:uuid}/lots",
        guards=[SELLERS],
        security=BEARER,
        summary="Record a harvested lot (gets its trace code)",
    )
    async def add_lot(
        self,
        *,
        request: Request[Any, Any, Any],
        product_id: FromPath[uuid.UUID],
        data: JSONBody[LotCreate],
        catalog: NamedDependency[CatalogService],
        current_user: NamedDependency[AuthenticatedUser],
    ) -> LotRead:
        body = await strict_body(request, LotCreate)
        return await catalog.add_lot(current_user, product_id, body)

    @post(
        "/{product_id:uuid}/lots/{lot_id:uuid}/contributions",
        guards=[SELLERS],
        security=BEARER,
        summary="Record member households' contributions to a cooperative lot",
    )
    async def add_contributions(
        self,
        *,
        request: Request[Any, Any, Any],
        product_id: FromPath[uuid.UUID],
        lot_id: FromPath[uuid.UUID],
        data: JSONBody[ContributionsCreate],
        catalog: NamedDependency[CatalogService],
        current_user: NamedDependency[AuthenticatedUser],
    ) -> LotRead:
        body = await strict_body(request, ContributionsCreate)
        return await catalog.add_contributions(current_user, product_id, lot_id, body)

    @post(
        "/{product_id:uuid}/images/upload-slot",
        guards=[SELLERS],
        security=BEARER,
        summary="A presigned URL to PUT one photo to",
    )
    async def upload_slot(
        self,
        *,
        request: Request[Any, Any, Any],
        product_id: FromPath[uuid.UUID],
        data: JSONBody[UploadSlotCreate],
        images: NamedDependency[ImageService],
        current_user: NamedDependency[AuthenticatedUser],
    ) -> UploadSlotRead:
        body = await strict_body(request, UploadSlotCreate)
        return await images.upload_slot(current_user, product_id, body)

    @post(
        "/{product_id:uuid}/images/{image_id:uuid}/confirm",
        status_code=HTTP_202_ACCEPTED,
        guards=[SELLERS],
        security=BEARER,
        summary="The upload finished: check the photo (asynchronously)",
    )
    async def confirm_image(
        self,
        *,
        product_id: FromPath[uuid.UUID],
        image_id: FromPath[uuid.UUID],
        images: NamedDependency[ImageService],
        current_user: NamedDependency[AuthenticatedUser],
    ) -> ImageOwnerRead:
        return await images.confirm(current_user, product_id, image_id)


class SellerCatalogController(Controller):
    """A seller's own view: drafts, every variant, lots with contributions, image checks."""

    path = "/api/seller"
    tags = ["catalog"]
    guards = [SELLERS]
    security = BEARER
    dependencies = {"catalog": Provide(provide_catalog)}

    @get("/products", summary="A household's or cooperative's products, every status")
    async def list_products(
        self,
        *,
        catalog: NamedDependency[CatalogService],
        current_user: NamedDependency[AuthenticatedUser],
        household_id: FromQuery[uuid.UUID | None] = None,
        cooperative_id: FromQuery[uuid.UUID | None] = None,
    ) -> list[ProductOwnerSummary]:
        return await catalog.seller_products(current_user, household_id, cooperative_id)

    @get("/products/{product_id:uuid}", summary="Everything about one of your products")
    async def get_product(
        self,
        *,
        product_id: FromPath[uuid.UUID],
        catalog: NamedDependency[CatalogService],
        current_user: NamedDependency[AuthenticatedUser],
    ) -> ProductOwnerRead:
        return await catalog.owner_view(current_user, product_id)

    @get("/notices", summary="Warnings for a seller (certificates about to expire)")
    async def notices(
        self,
        *,
        catalog: NamedDependency[CatalogService],
        current_user: NamedDependency[AuthenticatedUser],
        household_id: FromQuery[uuid.UUID | None] = None,
        cooperative_id: FromQuery[uuid.UUID | None] = None,
    ) -> list[NoticeRead]:
        return await catalog.seller_notices(current_user, household_id, cooperative_id)


class CertificationController(Controller):
    path = "/api/certifications"
    tags = ["catalog"]
    guards = [SELLERS]
    security = BEARER
    dependencies = {"catalog": Provide(provide_catalog)}

    @post("/", summary="Attach a VietGAP or OCOP certificate to a product or a household")
    async def create(
        self,
        *,
        request: Request[Any, Any, Any],
        data: JSONBody[CertificationCreate],
        catalog: NamedDependency[CatalogService],
        current_user: NamedDependency[AuthenticatedUser],
    ) -> CertificationRead:
        body = await strict_body(request, CertificationCreate)
        return await catalog.add_certification(current_user, body)


class ImageController(Controller):
    path = "/api/images"
    tags = ["catalog"]
    dependencies = {"images": Provide(provide_images)}

    @get(
        "/{image_id:uuid}/{width:str}",
        opt=public(),
        status_code=HTTP_307_TEMPORARY_REDIRECT,
        summary="A verified photo's rendition (redirect to a short-lived signed URL)",
    )
    async def rendition(
        self,
        *,
        image_id: FromPath[uuid.UUID],
        width: FromPath[str],
        images: NamedDependency[ImageService],
    ) -> Redirect:
        url = await images.rendition_url(image_id, width)
        return Redirect(
            url,
            status_code=HTTP_307_TEMPORARY_REDIRECT,
            headers={"Cache-Control": f"public, max-age={REDIRECT_MAX_AGE_SECONDS}"},
        )


class TraceController(Controller):
    path = "/trace"
    tags = ["traceability"]
    dependencies = {"browser": Provide(provide_browser)}
    middleware = [ConditionalGetMiddleware(max_age=TRACE_MAX_AGE_SECONDS)]

    @get("/{code:str}", opt=public(), summary="Where a lot comes from")
    async def trace(
        self, code: FromPath[str], browser: NamedDependency[CatalogBrowser]
    ) -> TraceRead:
        return await browser.trace(code)

    @get("/{code:str}/qr.png", opt=public(), media_type="image/png", summary="QR of the trace URL")
    async def qr(
        self, code: FromPath[str], browser: NamedDependency[CatalogBrowser]
    ) -> Response[bytes]:
        return Response(await browser.trace_qr_png(code), media_type="image/png")


class MediaController(Controller):
    """The embedded mode's object endpoints, standing in for MinIO's presigned URLs. A
    signature (made by `FilesystemStorage` for one key, one method, until a time) is the only
    credential: uploads may go only under `uploads/`, reads only under `renditions/`."""

    path = "/media"
    tags = ["media"]
    include_in_schema = False

    @put("/{key:path}", opt=public(), status_code=HTTP_200_OK, request_max_body_size=None)
    async def upload(
        self,
        *,
        request: Request[Any, Any, Any],
        key: FromPath[str],
        resources: NamedDependency[Resources],
        expires: FromQuery[str] = "",
        sig: FromQuery[str] = "",
    ) -> None:
        storage = _filesystem(resources)
        key = key.lstrip("/")
        _verify(
            storage,
            key=key,
            method="PUT",
            expires=expires,
            sig=sig,
            resources=resources,
            prefix=UPLOADS_PREFIX,
        )
        max_bytes = resources.settings.storage.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise UploadTooLarge("body", max_bytes)
        received = bytearray()
        async for chunk in request.stream():
            received += chunk
            if len(received) > max_bytes:
                raise UploadTooLarge("body", max_bytes)
        content_type = request.headers.get("content-type", "application/octet-stream")
        await in_thread(storage.put_bytes, key, bytes(received), content_type=content_type)

    @get("/{key:path}", opt=public())
    async def download(
        self,
        *,
        key: FromPath[str],
        resources: NamedDependency[Resources],
        expires: FromQuery[str] = "",
        sig: FromQuery[str] = "",
    ) -> File:
        storage = _filesystem(resources)
        key = key.lstrip("/")
        _verify(
            storage,
            key=key,
            method="GET",
            expires=expires,
            sig=sig,
            resources=resources,
            prefix=RENDITIONS_PREFIX,
        )
        path = storage.path_for(key)
        if not path.is_file():
            raise MediaUnavailable()
        return File(
            path,
            media_type="image/webp",
            content_disposition_type="inline",
            headers={"Cache-Control": f"public, max-age={MEDIA_MAX_AGE_SECONDS}"},
        )


class MediaSignatureRejected(PermissionDenied):
    code = "media_url_rejected"
    title = "The media URL is not valid (expired, altered or for another use)"


def _filesystem(resources: Resources) -> FilesystemStorage:
    storage = storage_of(resources)
    if not isinstance(storage, FilesystemStorage):
        raise MediaUnavailable("media are served by the object store in this deployment")
    return storage


def _verify(
    storage: FilesystemStorage,
    *,
    key: str,
    method: str,
    expires: str,
    sig: str,
    resources: Resources,
    prefix: str,
) -> None:
    try:
        storage.verify_presigned(key, method, expires, sig, resources.clock())
    except PresignedUrlRejected as exc:
        raise MediaSignatureRejected(str(exc)) from None
    if not key.startswith(prefix):
        raise MediaSignatureRejected(f"{method} is allowed only under {prefix}")
    try:
        storage.path_for(key)
    except InvalidKey:
        raise MediaSignatureRejected("malformed key") from None


CATALOG_CONTROLLERS = (
    ProductController,
    SellerCatalogController,
    CertificationController,
    ImageController,
    TraceController,
    MediaController,
)

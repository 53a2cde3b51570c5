"""Public, cacheable reads of provinces and communes."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter

from marketplace.geo.models import CommuneUnitType
from marketplace.geo.schemas import CommuneRead, ProvinceRead
from marketplace.geo.service import GeoService
from marketplace.http_cache import ConditionalGetMiddleware
from marketplace.unit_of_work import UnitOfWork

CACHE_MAX_AGE_SECONDS = 3600
"""Units change only with a new administrative version or a special zone's area setting."""

SearchQuery = Annotated[
    str | None,
    QueryParameter(
        description="Part of the name, with or without diacritics, any case ('can tho').",
        max_length=100,
    ),
]


async def provide_geo_service(uow: NamedDependency[UnitOfWork]) -> GeoService:
    return GeoService(uow)


class GeoController(Controller):
    path = "/api/geo"
    tags = ["geo"]
    dependencies = {"geo": Provide(provide_geo_service)}
    middleware = [ConditionalGetMiddleware(max_age=CACHE_MAX_AGE_SECONDS)]

    @get(
        "/provinces",
        summary="Provinces of the current administrative version",
        opt={"public": True},
    )
    async def list_provinces(
        self, geo: NamedDependency[GeoService], q: SearchQuery = None
    ) -> list[ProvinceRead]:
        return await geo.list_provinces(q)

    @get("/provinces/{code:str}", summary="One province", opt={"public": True})
    async def get_province(
        self, geo: NamedDependency[GeoService], code: FromPath[str]
    ) -> ProvinceRead:
        return await geo.get_province(code)

    @get("/provinces/{code:str}/communes", summary="Communes of a province", opt={"public": True})
    async def list_communes(
        self,
        geo: NamedDependency[GeoService],
        code: FromPath[str],
        q: SearchQuery = None,
        unit_type: FromQuery[CommuneUnitType | None] = None,
    ) -> list[CommuneRead]:
        return await geo.list_communes(code, q, unit_type)

    @get("/communes/{code:str}", summary="One commune, its province and area", opt={"public": True})
    async def get_commune(
        self, geo: NamedDependency[GeoService], code: FromPath[str]
    ) -> CommuneRead:
        return await geo.get_commune(code)

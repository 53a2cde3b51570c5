"""Schemathesis over every /api/ operation as every role, on a real server and seeded database:
no 5xx, every refusal is problem+json, every documented response body matches its schema."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis

from tests.support.fuzz import ROLE_LOGINS, FuzzServer, fuzz_role, fuzz_server, load_schema
from tests.support.services import ServiceUrls

MAX_EXAMPLES = 5


@pytest.fixture(scope="module")
def server(
    service_urls: ServiceUrls, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzServer]:
    with fuzz_server(service_urls, redis_url, tmp_path_factory.mktemp("fuzz")) as running:
        yield running


@pytest.fixture(scope="module")
def schema(server: FuzzServer) -> schemathesis.BaseSchema:
    return load_schema(server)


@pytest.mark.slow
@pytest.mark.parametrize("role", list(ROLE_LOGINS))
def test_every_operation_holds_under_generated_requests(
    server: FuzzServer, schema: schemathesis.BaseSchema, role: str
) -> None:
    report = fuzz_role(schema, server, role, MAX_EXAMPLES)

    assert report.operations > 0
    assert not report.failures, "\n\n".join(
        f"{label}\n{detail}" for label, detail in report.failures.items()
    )


async def test_an_offset_beyond_postgres_bigint_is_refused_as_bad_input(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/livestreams", params={"offset": str(2**64)})

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_the_schema_documents_every_error_as_problem_json(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/schema/openapi.json")).json()

    login = schema["paths"]["/api/auth/login"]["post"]["responses"]
    for status in ("400", "401", "404", "422", "429"):
        assert login[status]["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert set(schema["components"]["schemas"]["Problem"]["required"]) == {
        "type",
        "title",
        "status",
        "detail",
        "code",
    }


async def test_an_administrative_code_with_a_nul_byte_is_refused_as_bad_input(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/cooperatives", params={"province_code": "9\x002"})

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")

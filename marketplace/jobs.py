"""Job names shared by the API and the workers, and the sender that reaches Celery.

The API never imports `workers/`: it sends tasks by their stable string name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import anyio.to_thread

JsonValue = str | int | float | bool | None | list[Any] | dict[str, Any]

TASK_QUEUE = "marketplace"
"""The one queue the API publishes to and `celery -A workers.app worker` consumes."""


class JobName(StrEnum):
    """Stable Celery task names: renaming one strands queued messages, so add, never rename."""

    PING = "system.ping"
    RELEASE_EXPIRED_HOLDS = "orders.release_expired_holds"
    PROCESS_IMAGE = "catalog.process_image"
    WARN_EXPIRING_CERTIFICATES = "catalog.warn_expiring_certificates"
    SWEEP_UNCHECKED_IMAGES = "catalog.sweep_unchecked_images"
    SEND_SESSION_REMINDERS = "livestreams.send_session_reminders"
    DELIVER_OUTBOX = "payments.deliver_outbox"
    RECONCILE_ATTRIBUTION = "impact.reconcile_attribution"
    BUILD_EXPORT = "impact.build_export"
    REBUILD_IMPACT_AGGREGATES = "impact.rebuild_aggregates"


@dataclass(frozen=True, slots=True)
class Job:
    name: JobName
    kwargs: Mapping[str, JsonValue] = field(default_factory=dict)
    request_id: str | None = None


class JobSender(Protocol):
    """Process boundary to the task queue; tests use a recording sender."""

    async def send(self, jobs: Sequence[Job]) -> None: ...


class CelerySender:
    """Publishes jobs by name on the Redis broker; the request id travels as a header."""

    def __init__(self, broker_url: str) -> None:
        from celery import Celery  # noqa: PLC0415 - keep celery out of import time of the API

        # Not the current app: inside a worker process that role belongs to workers.app.
        self._app = Celery("marketplace-api", broker=broker_url, set_as_current=False)
        self._app.conf.update(
            task_serializer="json",
            accept_content=["json"],
            task_default_queue=TASK_QUEUE,
            broker_connection_retry_on_startup=False,
        )

    async def send(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            await anyio.to_thread.run_sync(self._send_one, job)

    def _send_one(self, job: Job) -> None:
        self._app.send_task(
            job.name.value,
            kwargs=dict(job.kwargs),
            headers={"request_id": job.request_id} if job.request_id else None,
        )


class NullSender:
    """For one-off CLI commands that queue nothing."""

    async def send(self, jobs: Sequence[Job]) -> None:
        if jobs:
            raise RuntimeError(f"NullSender asked to send {len(jobs)} job(s)")

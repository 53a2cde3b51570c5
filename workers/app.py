"""The Celery application: Redis broker, JSON only, one queue, the beat schedule in code.

Importing this module reads no settings and connects to nothing: the configuration is a
promise that Celery evaluates the first time it reads `app.conf`, which `celery -A workers.app
worker` and `celery -A workers.app beat` do at start-up.

Delivery is at least once: a message is acknowledged after its task returns
(`task_acks_late`) and goes back to the queue if the worker process dies mid-task, so every
task body must be idempotent. No result backend: callers never wait on a task, outcomes are
rows.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from celery.schedules import crontab
from celery.signals import (
    setup_logging,
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)
from kombu import Queue

from marketplace.jobs import TASK_QUEUE, JobName
from marketplace.observability import bind_request_id, configure_logging
from marketplace.settings import Settings, SettingsError
from workers import runtime

TASK_MODULES = (
    "workers.system",
    "workers.catalog",
    "workers.impact",
    "workers.livestreams",
    "workers.orders",
    "workers.payments",
)
"""Modules whose tasks the worker registers; each domain adds its own (workers.orders, ...)."""

PERIODIC_JOBS: dict[JobName, float | crontab] = {
    JobName.PING: 60.0,
    # Every minute: a follower hears of a session 15 to 14 minutes before it starts.
    JobName.SEND_SESSION_REMINDERS: 60.0,
    # Unpaid orders' holds run out at any moment; stock should be back within 30 s.
    JobName.RELEASE_EXPIRED_HOLDS: 30.0,
    # Settlement events whose after-commit job was lost reach the impact ledger within 30 s.
    JobName.DELIVER_OUTBOX: 30.0,
    # 01:00 UTC is 08:00 in Vietnam: sellers find the warning at the start of their day.
    JobName.WARN_EXPIRING_CERTIFICATES: crontab(minute=0, hour=1),
    JobName.SWEEP_UNCHECKED_IMAGES: 600.0,
    # 19:30 UTC is 02:30 in Vietnam: the day's settlements are in, nobody is reading reports.
    JobName.RECONCILE_ATTRIBUTION: crontab(minute=30, hour=19),
}
"""What beat sends and how often (seconds or a crontab); adding a periodic job is one line."""


def beat_schedule() -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for job, every in PERIODIC_JOBS.items():
        entry: dict[str, Any] = {"task": job.value, "schedule": every}
        if isinstance(every, int | float):
            # A run still queued when the next one is due is dropped: a stopped worker
            # comes back to one sweep, not a backlog of identical ones.
            entry["options"] = {"expires": every}
        entries[job.value] = entry
    return entries


def celery_config(settings: Settings) -> dict[str, Any]:
    # Checked here, in the main process, so a missing URL stops start-up with a message
    # naming it instead of crashing every forked child.
    required = {"DATABASE_URL": settings.database.url, "REDIS_URL": settings.redis.url}
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise SettingsError(
            "the worker and beat need " + " and ".join(missing) + " (or run `marketplace demo`)"
        )
    visibility = settings.redis.broker_visibility_timeout
    return {
        "broker_url": settings.redis.url,
        "broker_connection_retry_on_startup": True,
        # A message taken by a worker that died before acknowledging it goes back to the
        # queue once it is `visibility` seconds old; every worker looks for such messages
        # at start-up and then every few seconds (kombu's own sweep is only every ~100 s).
        "broker_transport_options": {
            "visibility_timeout": visibility,
            "unacked_restore_interval": max(1, min(10, visibility // 4)),
            "unacked_restore_throttle": 1,
        },
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # acks_late already redelivers the message; cancelling the running copy on a lost
        # broker connection avoids running it twice at once.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": TASK_QUEUE,
        "task_queues": (Queue(TASK_QUEUE),),
        "task_create_missing_queues": False,
        "enable_utc": True,
        "timezone": "UTC",
        "beat_schedule": beat_schedule(),
        "beat_schedule_filename": str(settings.var_dir / "celerybeat-schedule"),
        "worker_hijack_root_logger": False,
    }


app = Celery("marketplace", include=list(TASK_MODULES))
app.add_defaults(lambda: celery_config(runtime.process_settings()))


@setup_logging.connect
def _configure_logging(loglevel: int | None = None, **_: Any) -> None:
    """Our JSON logging instead of Celery's; the more verbose of LOG_LEVEL and `-l` wins."""
    settings = runtime.process_settings()
    levels = [logging.getLevelNamesMapping().get(settings.log_level, logging.INFO)]
    if isinstance(loglevel, int):
        levels.append(loglevel)
    configure_logging(logging.getLevelName(min(levels)), json=settings.log_json)


@task_prerun.connect
def _bind_request_id(task: Task[Any, Any] | None = None, **_: Any) -> None:
    """Continue the request id the job was queued with, so its log lines and the jobs it
    queues carry the same id as the request that caused them."""
    request_id = task.request.get("request_id") if task is not None else None
    bind_request_id(request_id if isinstance(request_id, str) else None)


@task_postrun.connect
def _clear_request_id(**_: Any) -> None:
    bind_request_id(None)


@worker_process_init.connect
def _start_runtime(**_: Any) -> None:
    runtime.start()


@worker_process_shutdown.connect
@worker_shutdown.connect
def _stop_runtime(**_: Any) -> None:
    runtime.shutdown()

"""The Celery app: configured from settings only when Celery asks, and beat names real tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from marketplace.jobs import TASK_QUEUE, JobName
from marketplace.settings import DatabaseSettings, RedisSettings, Settings, SettingsError
from workers.app import celery_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE_REDIS = "redis://unreachable.invalid:6379/0"


def _python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Our own interpreter in a bare environment: only what the test hands it."""
    return subprocess.run(  # noqa: S603 - fixed interpreter and code written by this test
        [sys.executable, "-c", code],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_worker_takes_json_from_the_marketplace_queue_and_acks_after_the_task(
    settings: Settings,
) -> None:
    config = celery_config(settings)

    assert config["broker_url"] == settings.redis.url
    assert config["accept_content"] == ["json"]
    assert config["task_serializer"] == "json"
    assert config["result_backend"] is None
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1
    assert config["task_default_queue"] == TASK_QUEUE
    assert [queue.name for queue in config["task_queues"]] == [TASK_QUEUE]
    assert config["beat_schedule_filename"] == str(settings.var_dir / "celerybeat-schedule")


@pytest.mark.parametrize(
    ("database_url", "redis_url", "named"),
    [
        ("", "redis://127.0.0.1:6379/0", "DATABASE_URL"),
        ("postgresql+asyncpg://u@h/d", "", "REDIS_URL"),
    ],
    ids=["without-database", "without-redis"],
)
def test_the_worker_refuses_to_start_without_its_services(
    database_url: str, redis_url: str, named: str
) -> None:
    settings = Settings(
        database=DatabaseSettings(url=database_url), redis=RedisSettings(url=redis_url)
    )

    with pytest.raises(SettingsError, match=named):
        celery_config(settings)


def test_importing_the_app_reads_no_settings_and_connects_to_nothing(tmp_path: Path) -> None:
    result = _python(
        "import workers.app, workers.system; "
        "assert not workers.app.app.configured, 'configuration was read at import'",
        env={"REDIS_URL": UNREACHABLE_REDIS},
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    # Settings.from_env in embedded mode would have created ./var/secrets.json.
    assert list(tmp_path.iterdir()) == []


def test_every_beat_entry_sends_a_task_the_worker_registers(tmp_path: Path) -> None:
    result = _python(
        "import json, workers.app as m; "
        "m.app.loader.import_default_modules(); "
        "print(json.dumps({'registered': sorted(m.app.tasks), "
        "'schedule': {k: [v['task'], v['schedule']] "
        "for k, v in m.app.conf.beat_schedule.items()}}, default=str))",
        env={
            "REDIS_URL": UNREACHABLE_REDIS,
            "DATABASE_URL": "postgresql://nobody@unreachable.invalid/nothing",
            "MARKETPLACE_VAR_DIR": str(tmp_path / "var"),
        },
        cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])

    scheduled = {task for task, _ in found["schedule"].values()}
    assert scheduled <= set(found["registered"])
    assert scheduled <= {job.value for job in JobName}
    assert found["schedule"][JobName.PING.value] == [JobName.PING.value, 60.0]

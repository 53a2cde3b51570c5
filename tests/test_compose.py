"""docker-compose.yml is valid Compose, runs commands that exist, and carries no secret.

There is no Docker daemon here, so the file is checked the way `docker compose config` and the
containers would see it: interpolated from a filled-in `.env`, validated against the Compose
Specification's JSON schema (tests/data/compose-spec.json; its origin, version and licence are
in tests/data/README.md), and every command our image runs is resolved against the code that
would answer it, without running it.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import click
import pytest
import uvicorn
import yaml
from celery import Celery
from celery.app.utils import find_app
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli
from jsonschema import Draft7Validator  # type: ignore[import-untyped]  # no stubs in the lock

from marketplace.app import create_app
from marketplace.catalog.storage import build_storage
from marketplace.jobs import CelerySender, JobName
from marketplace.settings import Mode, Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA_FILE = Path(__file__).resolve().parent / "data" / "compose-spec.json"

APP_SERVICES = ("migrate", "api", "worker", "beat")
SECRET_NAME = re.compile(r"SECRET|PASSWORD|_KEY$|TOKEN|AUTH")
REQUIRED_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}")
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)


class MissingVariable(Exception):
    """What compose prints when a `${VAR:?message}` variable is unset or empty."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


def interpolate_text(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation (spec 12-interpolation.md), without nesting, which we don't use."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        braced = _BRACED.fullmatch(match["braced"])
        if braced is None:
            raise ValueError(f"invalid interpolation: {match[0]!r}")
        name, op, arg = braced["name"], braced["op"], braced["arg"] or ""
        value = env.get(name)
        unset_or_empty = not value
        missing = unset_or_empty if op and op.startswith(":") else value is None
        if op in {":-", "-"}:
            return arg if missing else cast(str, value)
        if op in {":?", "?"}:
            if missing:
                raise MissingVariable(name, arg)
            return cast(str, value)
        if op in {":+", "+"}:
            return "" if missing else arg
        return value or ""

    return _VARIABLE.sub(replace, text)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    """Values are interpolated, keys are not (as in Compose)."""
    if isinstance(node, str):
        return interpolate_text(node, env)
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    return node


def referenced_variables(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        for match in _VARIABLE.finditer(node):
            if match["named"]:
                yield match["named"]
            elif match["braced"] is not None:
                braced = _BRACED.fullmatch(match["braced"])
                assert braced is not None, match[0]
                yield braced["name"]
    elif isinstance(node, dict):
        for value in node.values():
            yield from referenced_variables(value)
    elif isinstance(node, list):
        for item in node:
            yield from referenced_variables(item)


def all_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from all_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_strings(item)


def parse_env_file(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"not NAME=value: {raw!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[name.strip()] = value
    return env


def documented_variables(text: str) -> set[str]:
    """Names given a line of their own in .env.example, set or commented out with a default."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.M))


def load_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


def env_example() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE.read_text())


@functools.cache
def _generated_dotenv() -> dict[str, str]:
    return {
        name: value or f"generated-{name.lower()}-{secrets.token_hex(16)}"
        for name, value in env_example().items()
    }


def filled_dotenv() -> dict[str, str]:
    """The .env an operator makes from .env.example: every empty value generated (once per run,
    so the compose file and the env_file of one test see the same secrets)."""
    return dict(_generated_dotenv())


def environment_mapping(environment: Any) -> dict[str, str]:
    if environment is None:
        return {}
    if isinstance(environment, list):
        return dict(item.partition("=")[::2] for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def container_environment(service: Mapping[str, Any], dotenv: Mapping[str, str]) -> dict[str, str]:
    """env_file first, then `environment` on top: the precedence Compose gives them."""
    files = service.get("env_file") or []
    env: dict[str, str] = {}
    for entry in [files] if isinstance(files, str) else files:
        path = entry if isinstance(entry, str) else entry["path"]
        assert path == ".env", f"unexpected env_file {path!r}"
        env.update(dotenv)
    env.update(environment_mapping(service.get("environment")))
    return env


def command_argv(service: Mapping[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def interpolated_compose() -> dict[str, Any]:
    return cast(dict[str, Any], interpolate(load_compose(), filled_dotenv()))


def resolve_click(
    group: click.Group, prog: str, argv: Sequence[str], obj: Any = None
) -> tuple[click.Command, click.Context]:
    """Walk a command line through click groups and parse the leaf's options, invoking nothing.

    Group-level options come before the subcommand in every command we run, so each group's
    own arguments end at the first token that names one of its subcommands.
    """
    args = list(argv)
    command: click.Command = group
    parent: click.Context | None = None
    name = prog
    while isinstance(command, click.Group):
        probe = click.Context(command, info_name=name, parent=parent)
        names = set(command.list_commands(probe))
        index = next((i for i, token in enumerate(args) if token in names), None)
        assert index is not None, f"{name}: no subcommand among {args} (has {sorted(names)})"
        ctx = command.make_context(name, args[: index + 1], parent=parent)
        if parent is None:
            ctx.obj = obj(ctx) if callable(obj) else obj
        sub = command.get_command(ctx, args[index])
        assert sub is not None
        command, parent, name, args = sub, ctx, args[index], args[index + 1 :]
    return command, command.make_context(name, args, parent=parent)


def celery_command(argv: Sequence[str]) -> tuple[Celery, str, dict[str, Any]]:
    """`celery -A module ...`: load the app as Celery's own CLI does, then parse the rest."""
    loaded: dict[str, Celery] = {}

    def cli_context(ctx: click.Context) -> CLIContext:
        loaded["app"] = find_app(ctx.params["app"])
        return CLIContext(app=loaded["app"], no_color=True, workdir=None, quiet=True)

    command, ctx = resolve_click(celery_cli, "celery", argv[1:], cli_context)
    assert isinstance(loaded["app"], Celery)
    return loaded["app"], str(command.name), dict(ctx.params)


def celery_report(argv: Sequence[str]) -> dict[str, Any]:
    """What the worker or beat of this command line would consume, register and schedule."""
    app, subcommand, params = celery_command(argv)
    app.loader.import_default_modules()
    registered = sorted(name for name in app.tasks if not name.startswith("celery."))
    routed = sorted(set(registered) | {job.value for job in JobName})
    return {
        "subcommand": subcommand,
        "queues": list(params.get("queues") or []),
        "registered": registered,
        "routes": {name: app.amqp.router.route({}, name)["queue"].name for name in routed},
        "beat_tasks": {entry: spec["task"] for entry, spec in app.conf.beat_schedule.items()},
    }


@functools.cache
def celery_report_in_container(service: str) -> dict[str, Any]:
    """Run `celery_report` in a fresh interpreter with the environment the container gets.

    workers.app reads its settings from the process environment the first time its
    configuration is read; a subprocess gives it the compose environment without changing
    this test process's environment or binding its shared Celery app to compose's hosts.
    """
    services = interpolated_compose()["services"]
    argv = command_argv(services[service])
    env = container_environment(services[service], filled_dotenv())
    env |= {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    script = (
        "import json, sys\n"
        "from tests.test_compose import celery_report\n"
        "print(json.dumps(celery_report(sys.argv[1:])))\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter on our own module
        [sys.executable, "-c", script, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return cast(dict[str, Any], json.loads(done.stdout.strip().splitlines()[-1]))


# --- the file itself ----------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    Draft7Validator.check_schema(schema)
    validator = Draft7Validator(schema)
    for label, document in (
        ("as written", load_compose()),
        ("interpolated", interpolated_compose()),
    ):
        errors = [
            f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(document)
        ]
        assert errors == [], f"{label}: {errors}"


def test_the_stack_has_every_service_the_issue_names() -> None:
    services = load_compose()["services"]
    assert set(services) == {
        "postgres",
        "redis",
        "minio",
        "createbuckets",
        "migrate",
        "api",
        "worker",
        "beat",
    }


def test_every_service_built_here_uses_the_one_dockerfile() -> None:
    services = interpolated_compose()["services"]
    built = {name: service for name, service in services.items() if "build" in service}
    assert set(built) == set(APP_SERVICES)
    assert {json.dumps(service["build"], sort_keys=True) for service in built.values()} == {
        json.dumps({"context": ".", "dockerfile": "Dockerfile"}, sort_keys=True)
    }
    assert len({service["image"] for service in built.values()}) == 1
    assert DOCKERFILE.is_file()


def test_the_image_copies_only_what_exists_and_is_not_dockerignored() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".git", ".venv", "var"} <= ignored
    sources = [
        source
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
        if not source.startswith("--")
    ]
    assert sources, "the Dockerfile copies nothing from the build context"
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source.rstrip("/") not in ignored, f"{source} is in .dockerignore"


def test_the_image_runs_as_a_non_root_user_in_production_mode() -> None:
    dockerfile = DOCKERFILE.read_text()
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    users = re.findall(r"^USER\s+(\S+)", final_stage, flags=re.M)
    assert users, "the runtime stage never leaves root"
    assert users[-1] not in {"root", "0"}
    assert "MARKETPLACE_MODE=production" in final_stage
    assert re.search(r"^EXPOSE\s+8000\b", final_stage, flags=re.M)
    assert "uv sync --frozen --no-dev" in dockerfile


# --- secrets ------------------------------------------------------------------------------


def test_no_secret_value_is_written_into_the_compose_file() -> None:
    compose = load_compose()
    blocks = [compose.get("x-app", {}), *compose["services"].values()]
    checked = 0
    for block in blocks:
        for name, value in environment_mapping(block.get("environment")).items():
            if SECRET_NAME.search(name):
                checked += 1
                assert REQUIRED_REFERENCE.fullmatch(value), (
                    f"{name}={value!r} must be a ${{VAR:?message}} reference to .env"
                )
    assert checked >= 6
    for text in all_strings(compose):
        for password in re.findall(r"://[^/@\s:]*:([^@\s]*)@", text):
            assert REQUIRED_REFERENCE.fullmatch(password), f"credential written into {text!r}"


def test_env_example_ships_no_secret_values() -> None:
    for name, value in env_example().items():
        if SECRET_NAME.search(name):
            assert value == "", f"{name} has a value in .env.example"


@pytest.mark.parametrize(
    "secret",
    [
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "MINIO_ROOT_USER",
        "MINIO_ROOT_PASSWORD",
        "SECRET_KEY",
        "PII_HMAC_KEY",
        "PII_ENCRYPTION_KEY",
    ],
)
def test_compose_refuses_to_start_while_a_secret_is_missing(secret: str) -> None:
    dotenv = filled_dotenv()
    interpolate(load_compose(), dotenv)
    dotenv[secret] = ""
    with pytest.raises(MissingVariable) as missing:
        interpolate(load_compose(), dotenv)
    assert missing.value.name == secret


def test_compose_as_copied_from_env_example_names_a_missing_secret() -> None:
    with pytest.raises(MissingVariable) as missing:
        interpolate(load_compose(), env_example())
    assert SECRET_NAME.search(missing.value.name)


# --- .env.example documents what is read -------------------------------------------------


def settings_variables() -> set[str]:
    """Environment names that marketplace/settings.py reads, found in its syntax tree."""
    tree = ast.parse((ROOT / "marketplace" / "settings.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "get"
                and isinstance(func.value, ast.Name)
                and func.value.id == "env"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(str(node.args[0].value))
            for before, arg in zip(node.args, node.args[1:], strict=False):
                if (
                    isinstance(before, ast.Name)
                    and before.id == "env"
                    and isinstance(arg, ast.Constant)
                ):
                    names.add(str(arg.value))
        elif isinstance(node, ast.Dict):
            names.update(
                key.value
                for key in node.keys
                if isinstance(key, ast.Constant) and isinstance(key.value, str)
            )
    return {name for name in names if re.fullmatch(r"[A-Z][A-Z0-9_]+", name)}


def test_env_example_documents_every_variable_the_settings_read() -> None:
    read = settings_variables()
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PLATFORM_FEE_BPS"} <= read
    undocumented = read - documented_variables(ENV_EXAMPLE.read_text())
    assert undocumented == set()


def test_env_example_documents_every_variable_compose_interpolates() -> None:
    undocumented = set(referenced_variables(load_compose())) - documented_variables(
        ENV_EXAMPLE.read_text()
    )
    assert undocumented == set()


# --- the containers are wired to each other ----------------------------------------------


@pytest.mark.parametrize("service", APP_SERVICES)
def test_each_app_process_starts_in_production_mode_against_the_compose_services(
    service: str,
) -> None:
    services = interpolated_compose()["services"]
    env = container_environment(services[service], filled_dotenv())
    settings = Settings.from_env(env)

    postgres = services["postgres"]["environment"]
    database = urlsplit(settings.database.url)
    assert settings.mode is Mode.PRODUCTION
    assert database.scheme == "postgresql+asyncpg"
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"]
    assert database.path == "/" + postgres["POSTGRES_DB"]

    redis_command = command_argv(services["redis"])
    redis = urlsplit(settings.redis.url)
    assert redis.hostname == "redis"
    assert redis.password == redis_command[redis_command.index("--requirepass") + 1]

    minio = services["minio"]["environment"]
    assert settings.storage.backend == "s3"
    assert settings.storage.endpoint == "minio:9000"
    assert settings.storage.access_key == minio["MINIO_ROOT_USER"]
    assert settings.storage.secret_key == minio["MINIO_ROOT_PASSWORD"]
    assert settings.storage.bucket == services["createbuckets"]["environment"]["S3_BUCKET"]
    assert settings.storage.public_endpoint == "http://localhost:9000"
    assert settings.security.secret_key == env["SECRET_KEY"]


def test_browsers_get_media_urls_for_the_port_minio_publishes() -> None:
    """Inside compose the API reaches MinIO as `minio:9000`, a name browsers cannot resolve:
    the presigned URLs it hands out name the host port compose publishes instead."""
    services = interpolated_compose()["services"]
    settings = Settings.from_env(container_environment(services["api"], filled_dotenv()))
    [published] = [port for port in services["minio"]["ports"] if port.endswith(":9000")]
    host_ip, host_port, _ = published.split(":")

    storage = build_storage(settings)
    url = urlsplit(storage.presigned_get_url("renditions/p/w320.webp", expires=timedelta(hours=1)))

    assert (url.hostname, url.port) in {("localhost", int(host_port)), (host_ip, int(host_port))}
    assert url.path == f"/{settings.storage.bucket}/renditions/p/w320.webp"


def test_the_bucket_job_creates_the_bucket_it_is_given() -> None:
    script = "\n".join(interpolated_compose()["services"]["createbuckets"]["entrypoint"])
    assert (
        'mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"' in script
    )
    assert 'mc mb --ignore-existing "local/$S3_BUCKET"' in script


def test_services_start_only_after_what_they_need() -> None:
    services = load_compose()["services"]
    expected = {
        "createbuckets": {"minio": "service_healthy"},
        "migrate": {"postgres": "service_healthy"},
        "api": {
            "migrate": "service_completed_successfully",
            "createbuckets": "service_completed_successfully",
            "postgres": "service_healthy",
            "redis": "service_healthy",
        },
        "worker": {
            "migrate": "service_completed_successfully",
            "createbuckets": "service_completed_successfully",
            "postgres": "service_healthy",
            "redis": "service_healthy",
        },
        "beat": {"migrate": "service_completed_successfully", "redis": "service_healthy"},
    }
    for name, needs in expected.items():
        depends_on = services[name]["depends_on"]
        assert {dep: spec["condition"] for dep, spec in depends_on.items()} == needs, name
    for name, service in services.items():
        for dep, spec in service.get("depends_on", {}).items():
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits on {dep}'s healthcheck"
    for one_shot in ("createbuckets", "migrate"):
        assert services[one_shot]["restart"] == "no"


@pytest.mark.parametrize("service", ["postgres", "redis", "minio", "api"])
def test_long_running_services_have_a_healthcheck(service: str) -> None:
    healthcheck = load_compose()["services"][service]["healthcheck"]
    assert healthcheck["test"][0] in {"CMD", "CMD-SHELL"}
    assert not healthcheck.get("disable", False)


def test_api_healthcheck_asks_the_ready_route_on_the_port_uvicorn_serves() -> None:
    services = interpolated_compose()["services"]
    api = services["api"]
    probe = " ".join(api["healthcheck"]["test"])
    url = urlsplit(re.findall(r"https?://[^'\"\s]+", probe)[0])
    params = uvicorn.main.make_context("uvicorn", command_argv(api)[1:]).params
    assert url.port == params["port"]
    assert url.path == "/ready"
    assert any(port.endswith(f":{params['port']}") for port in api["ports"])

    settings = Settings.from_env(container_environment(api, filled_dotenv()))
    app = create_app(settings, skip_logging_setup=True)
    assert url.path in {route.path for route in app.routes}


# --- every command our image runs exists --------------------------------------------------


def check_uvicorn(service: str, argv: list[str]) -> None:
    params = uvicorn.main.make_context("uvicorn", argv[1:]).params
    assert params["factory"], "create_app must be called by uvicorn, not at import"
    module_name, _, attribute = params["app"].partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    assert callable(factory)
    inspect.signature(factory).bind()  # uvicorn calls the factory with no arguments
    assert params["host"] == "0.0.0.0"  # noqa: S104 - inside the container, on purpose
    assert params["proxy_headers"]


def check_celery(service: str, argv: list[str]) -> None:
    report = celery_report_in_container(service)
    if report["subcommand"] == "worker":
        assert report["queues"], "the worker must name the queue it consumes"
    elif report["subcommand"] == "beat":
        for entry, task in report["beat_tasks"].items():
            assert task in report["registered"], f"beat entry {entry} runs an unknown task"
    else:
        pytest.fail(f"unexpected celery subcommand {report['subcommand']}")


def check_marketplace_cli(service: str, argv: list[str]) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    module_name, _, attribute = pyproject["project"]["scripts"][argv[0]].partition(":")
    main = getattr(importlib.import_module(module_name), attribute)
    assert isinstance(main, click.Group)
    resolve_click(main, argv[0], argv[1:])


CHECKS: dict[str, Callable[[str, list[str]], None]] = {
    "uvicorn": check_uvicorn,
    "celery": check_celery,
    "marketplace": check_marketplace_cli,
}


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_command_our_image_runs_exists_in_the_project(service: str) -> None:
    argv = command_argv(interpolated_compose()["services"][service])
    assert argv[0] in CHECKS, f"no check for {argv[0]}"
    CHECKS[argv[0]](service, argv)


def test_tasks_land_on_the_queue_the_worker_consumes() -> None:
    worker = celery_report_in_container("worker")
    queues = worker["queues"]
    for name, queue in worker["routes"].items():
        assert queue in queues, f"{name} is routed to {queue!r}, the worker reads {queues}"
    # The API publishes through its own small Celery app, whose configuration decides the queue.
    sender_app = CelerySender("redis://redis:6379/0")._app
    for job in JobName:
        queue = sender_app.amqp.router.route({}, job.value)["queue"].name
        assert queue in queues, f"the API sends {job.value} to {queue!r}, the worker reads {queues}"

"""One loop and one engine per process: the runtime drives bodies and survives fork."""

from __future__ import annotations

import asyncio
import multiprocessing
from multiprocessing.connection import Connection

from sqlalchemy import text

from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from workers import runtime
from workers.runtime import WorkerContext


async def _backend_pid(ctx: WorkerContext) -> int:
    async with ctx.unit_of_work() as uow:
        pid: int = (await uow.session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        return pid


def test_a_body_reaches_the_database_and_redis_of_the_settings(settings: Settings) -> None:
    async def body(ctx: WorkerContext) -> tuple[str, bool]:
        async with ctx.unit_of_work() as uow:
            database = (await uow.session.execute(text("SELECT current_database()"))).scalar_one()
        return database, bool(await ctx.redis.ping())

    runtime.start(settings)
    try:
        database, redis_answered = runtime.run(body)
    finally:
        runtime.shutdown()

    assert settings.database.url.endswith("/" + database)
    assert redis_answered


def test_every_run_in_a_process_shares_one_loop_and_one_engine(settings: Settings) -> None:
    runtime.start(settings)
    try:
        first = runtime.run(_backend_pid)
        second = runtime.run(_backend_pid)
        loop = runtime.start().loop
    finally:
        runtime.shutdown()

    assert first == second, "the pooled connection was not reused across runs"
    assert loop.is_closed()


def test_each_call_gives_a_fresh_unit_of_work(settings: Settings) -> None:
    async def body(ctx: WorkerContext) -> tuple[UnitOfWork, UnitOfWork]:
        return ctx.unit_of_work(), ctx.unit_of_work()

    runtime.start(settings)
    try:
        first, second = runtime.run(body)
    finally:
        runtime.shutdown()

    assert first is not second


def _child(settings: Settings, reply: Connection) -> None:
    runtime.start(settings)
    try:
        reply.send(runtime.run(_backend_pid))
    finally:
        runtime.shutdown()
        reply.close()


def test_a_forked_child_builds_its_own_runtime_and_leaves_the_parents_connection_alone(
    settings: Settings,
) -> None:
    runtime.start(settings)
    try:
        parent_before = runtime.run(_backend_pid)
        receive, reply = multiprocessing.get_context("fork").Pipe(duplex=False)
        child = multiprocessing.get_context("fork").Process(target=_child, args=(settings, reply))
        child.start()
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
            child.join()
        child_backend = receive.recv() if receive.poll(1) else None
        parent_after = runtime.run(lambda ctx: asyncio.wait_for(_backend_pid(ctx), 10))
    finally:
        runtime.shutdown()

    assert child.exitcode == 0
    assert child_backend is not None
    assert child_backend != parent_before
    # pool_pre_ping would silently reconnect a socket the child had closed; the same backend
    # pid proves the parent's connection survived the child's start and shutdown.
    assert parent_after == parent_before

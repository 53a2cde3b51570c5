"""The unit of work commits once and sends jobs only after that commit."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.jobs import JobName
from marketplace.observability import bind_request_id
from marketplace.unit_of_work import UnitOfWork
from tests.support.jobs import RecordingSender


async def _scratch_table(session: AsyncSession) -> None:
    await session.execute(text("CREATE TEMP TABLE IF NOT EXISTS uow_probe (v int)"))


async def test_jobs_are_sent_after_commit_and_not_before(
    sessionmaker: async_sessionmaker[AsyncSession], job_sender: RecordingSender
) -> None:
    async with UnitOfWork(sessionmaker, job_sender) as uow:
        await _scratch_table(uow.session)
        await uow.session.execute(text("INSERT INTO uow_probe VALUES (1)"))
        uow.add_job(JobName.PING, {"n": 1})
        assert job_sender.sent == []
        await uow.commit()
    assert job_sender.names() == ["system.ping"]
    assert job_sender.sent[0].kwargs == {"n": 1}


async def test_rollback_drops_queued_jobs_and_rows(
    sessionmaker: async_sessionmaker[AsyncSession], job_sender: RecordingSender
) -> None:
    async with UnitOfWork(sessionmaker, job_sender) as uow:
        await _scratch_table(uow.session)
        await uow.commit()
    async with UnitOfWork(sessionmaker, job_sender) as uow:
        await uow.session.execute(text("INSERT INTO uow_probe VALUES (2)"))
        uow.add_job(JobName.PING)
        # leaving without commit rolls back
    async with UnitOfWork(sessionmaker, job_sender) as uow:
        count = (await uow.session.execute(text("SELECT count(*) FROM uow_probe"))).scalar_one()
    assert count == 0
    assert job_sender.sent == []


async def test_an_exception_inside_the_block_sends_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], job_sender: RecordingSender
) -> None:
    try:
        async with UnitOfWork(sessionmaker, job_sender) as uow:
            uow.add_job(JobName.PING)
            raise RuntimeError("service failed")
    except RuntimeError:
        pass
    assert job_sender.sent == []


async def test_a_failed_send_keeps_the_commit(
    sessionmaker: async_sessionmaker[AsyncSession], job_sender: RecordingSender
) -> None:
    async with UnitOfWork(sessionmaker, job_sender) as uow:
        await _scratch_table(uow.session)
        await uow.session.execute(text("INSERT INTO uow_probe VALUES (3)"))
        uow.add_job(JobName.PING)
        job_sender.fail_next = True
        await uow.commit()
    async with UnitOfWork(sessionmaker, job_sender) as uow:
        values = (await uow.session.execute(text("SELECT v FROM uow_probe"))).scalars().all()
    assert values == [3]


async def test_queued_jobs_carry_the_request_id(
    sessionmaker: async_sessionmaker[AsyncSession], job_sender: RecordingSender
) -> None:
    bind_request_id("req-abc-123")
    try:
        async with UnitOfWork(sessionmaker, job_sender) as uow:
            uow.add_job(JobName.PING)
            await uow.commit()
    finally:
        bind_request_id(None)
    assert job_sender.sent[0].request_id == "req-abc-123"

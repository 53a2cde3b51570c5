"""A recording job sender: the task queue is a process boundary, so tests fake it here."""

from __future__ import annotations

from collections.abc import Sequence

from marketplace.jobs import Job


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[Job] = []
        self.fail_next = False

    async def send(self, jobs: Sequence[Job]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("broker unreachable (simulated)")
        self.sent.extend(jobs)

    def names(self) -> list[str]:
        return [job.name.value for job in self.sent]

"""Followers of households and cooperatives, and their reminders before a session.

A follower is reminded 15 minutes before a scheduled session of a seller they follow,
exactly once per session: the reminder is a row, unique per (session, user), recorded by one
INSERT ... ON CONFLICT DO NOTHING RETURNING. A sweep that runs twice, two beats at once or a
worker restarted mid-run record nothing twice, and only the run that recorded a reminder
announces it. The row is also the follower's in-app notification.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import structlog

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.db import utcnow
from marketplace.errors import ValidationFailed
from marketplace.livestreams.errors import FollowNotFound, SellerNotFound
from marketplace.livestreams.models import REMINDER_LEAD, Follow, LiveSession, Reminder
from marketplace.livestreams.repository import DueReminder, LivestreamRepository
from marketplace.resources import Clock
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)


class FollowerService:
    def __init__(self, uow: UnitOfWork, clock: Clock = utcnow) -> None:
        self._clock = clock
        self._repo = LivestreamRepository(uow.session)

    async def follow(
        self,
        user: AuthenticatedUser,
        *,
        household_id: uuid.UUID | None,
        cooperative_id: uuid.UUID | None,
    ) -> Follow:
        """Follow one household or one cooperative; following again changes nothing."""
        if (household_id is None) == (cooperative_id is None):
            raise ValidationFailed.for_field(
                "household_id", "give exactly one of household_id and cooperative_id"
            )
        if household_id is not None and not await self._repo.existing_households([household_id]):
            raise SellerNotFound()
        if cooperative_id is not None and not await self._repo.cooperative_exists(cooperative_id):
            raise SellerNotFound()
        return await self._repo.add_follow(
            Follow(
                id=uuid.uuid4(),
                user_id=user.id,
                household_id=household_id,
                cooperative_id=cooperative_id,
            )
        )

    async def unfollow(self, user: AuthenticatedUser, follow_id: uuid.UUID) -> None:
        follow = await self._repo.get_follow(follow_id)
        if follow is None or follow.user_id != user.id:
            raise FollowNotFound()
        await self._repo.delete_follow(follow)

    async def follows_of(self, user: AuthenticatedUser) -> Sequence[Follow]:
        return await self._repo.follows_of(user.id)

    async def reminders_of(
        self, user: AuthenticatedUser, *, limit: int
    ) -> Sequence[tuple[Reminder, LiveSession]]:
        return await self._repo.reminders_of(user.id, limit=limit)

    async def send_due_reminders(self, now: datetime | None = None) -> list[DueReminder]:
        """Record the reminders due now (sessions starting within the next 15 minutes) and
        return the ones this run recorded; a session already started is not announced."""
        at = now or self._clock()
        sent = await self._repo.record_due_reminders(at, at + REMINDER_LEAD)
        if sent:
            log.info(
                "livestream_reminders_sent",
                reminders=len(sent),
                sessions=len({reminder.session_id for reminder in sent}),
            )
        return sent

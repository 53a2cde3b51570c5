"""What the 2025 Law on E-commerce asks of a livestream platform from 2026-07-01: each host's
identity verified before they stream, and complaints taken during and after a session.

A host submits an identity document reference; an admin approves or rejects it, and the row
keeps who decided and when. Buyers file complaints about a live or ended session; admins
read, answer and close them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import structlog

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.db import utcnow
from marketplace.livestreams.errors import (
    AlreadyVerified,
    ComplaintNotFound,
    ComplaintsNotOpen,
    SessionNotFound,
    VerificationNotFound,
)
from marketplace.livestreams.models import (
    Complaint,
    ComplaintStatus,
    DocumentKind,
    HostVerification,
    SessionStatus,
    VerificationStatus,
)
from marketplace.livestreams.repository import LivestreamRepository
from marketplace.livestreams.service import check_text
from marketplace.resources import Clock
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

COMPLAINT_MAX_LENGTH = 5_000


class ComplianceService:
    def __init__(self, uow: UnitOfWork, clock: Clock = utcnow) -> None:
        self._clock = clock
        self._repo = LivestreamRepository(uow.session)

    # ---- Host identity -------------------------------------------------------------------

    async def submit_verification(
        self, host: AuthenticatedUser, *, document_kind: DocumentKind, document_reference: str
    ) -> HostVerification:
        """One submission waits for review at a time; a verified host has nothing to
        submit."""
        reference = check_text("document_reference", document_reference, max_length=200)
        if await self._repo.host_is_verified(host.id):
            raise AlreadyVerified()
        verification = HostVerification(
            host_user_id=host.id,
            document_kind=document_kind.value,
            document_reference=reference,
            status=VerificationStatus.SUBMITTED.value,
            submitted_at=self._clock(),
        )
        await self._repo.add_verification(verification)
        log.info("host_verification_submitted", host=str(host.id))
        return verification

    async def host_status(self, host_id: uuid.UUID) -> tuple[bool, HostVerification | None]:
        verified = await self._repo.host_is_verified(host_id)
        return verified, await self._repo.latest_verification(host_id)

    async def list_verifications(
        self, *, status: VerificationStatus | None, limit: int, offset: int
    ) -> tuple[Sequence[HostVerification], int]:
        return await self._repo.verifications_page(status=status, limit=limit, offset=offset)

    async def approve(
        self, admin: AuthenticatedUser, verification_id: uuid.UUID, note: str
    ) -> HostVerification:
        verification = await self._verification(verification_id)
        verification.approve(admin.id, self._clock(), self._note(note, required=False))
        await self._repo.flush()
        log.info("host_verified", host=str(verification.host_user_id), by=str(admin.id))
        return verification

    async def reject(
        self, admin: AuthenticatedUser, verification_id: uuid.UUID, note: str
    ) -> HostVerification:
        """A rejection says why, so the host knows what to submit next."""
        verification = await self._verification(verification_id)
        verification.reject(admin.id, self._clock(), self._note(note, required=True))
        await self._repo.flush()
        return verification

    async def _verification(self, verification_id: uuid.UUID) -> HostVerification:
        verification = await self._repo.get_verification(verification_id, lock=True)
        if verification is None:
            raise VerificationNotFound()
        return verification

    @staticmethod
    def _note(note: str, *, required: bool) -> str:
        if not note.strip() and not required:
            return ""
        return check_text("note", note, max_length=2_000, multiline=True)

    # ---- Complaints ----------------------------------------------------------------------

    async def file_complaint(
        self, user: AuthenticatedUser, session_id: uuid.UUID, body: str
    ) -> Complaint:
        """During or after a session: a session not yet live (or cancelled before it was)
        has nothing to complain about yet."""
        text = check_text("body", body, max_length=COMPLAINT_MAX_LENGTH, multiline=True)
        live = await self._repo.get_session(session_id)
        if live is None or live.state is SessionStatus.DRAFT:
            raise SessionNotFound()
        if live.state not in (SessionStatus.LIVE, SessionStatus.ENDED):
            raise ComplaintsNotOpen(f"the session is {live.status}")
        complaint = Complaint(
            session_id=live.id,
            complainant_user_id=user.id,
            body=text,
            status=ComplaintStatus.OPEN.value,
        )
        await self._repo.add(complaint)
        log.info("livestream_complaint_filed", session_id=str(live.id), complaint=str(complaint.id))
        return complaint

    async def complaints_of(
        self, user: AuthenticatedUser, *, limit: int, offset: int
    ) -> tuple[Sequence[Complaint], int]:
        return await self._repo.complaints_page(
            status=None, complainant_user_id=user.id, session_id=None, limit=limit, offset=offset
        )

    async def list_complaints(
        self,
        *,
        status: ComplaintStatus | None,
        session_id: uuid.UUID | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[Complaint], int]:
        return await self._repo.complaints_page(
            status=status.value if status else None,
            complainant_user_id=None,
            session_id=session_id,
            limit=limit,
            offset=offset,
        )

    async def answer(
        self, admin: AuthenticatedUser, complaint_id: uuid.UUID, answer: str
    ) -> Complaint:
        complaint = await self._complaint(complaint_id)
        text = check_text("answer", answer, max_length=COMPLAINT_MAX_LENGTH, multiline=True)
        complaint.give_answer(admin.id, text, self._clock())
        await self._repo.flush()
        return complaint

    async def close(self, admin: AuthenticatedUser, complaint_id: uuid.UUID) -> Complaint:
        complaint = await self._complaint(complaint_id)
        complaint.close(admin.id, self._clock())
        await self._repo.flush()
        return complaint

    async def _complaint(self, complaint_id: uuid.UUID) -> Complaint:
        complaint = await self._repo.get_complaint(complaint_id, lock=True)
        if complaint is None:
            raise ComplaintNotFound()
        return complaint

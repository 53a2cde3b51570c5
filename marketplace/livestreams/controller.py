"""HTTP, WebSocket and Server-Sent Events endpoints of livestream selling.

Who may call what:
- anyone: announced sessions, their items, the masked comment feed, the public event
  streams (`/ws`, `/events`);
- a platform connector: `POST /api/livestreams/{id}/comments` with the session's connector
  token in `X-Connector-Token` (the route is public to the bearer-token middleware; the
  token, which the host mints per session, is checked by the service: 401 without it). A
  connector thus holds no host credentials and can post to one session only;
- any logged-in account: complaints, follows and reminders;
- hosts (and admins): their own sessions, items, flash deals, live queue, report and the
  host's exact event streams; another host's session is 404;
- admins: host verification reviews and complaint handling.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Response, WebSocket, delete, get, patch, post, websocket
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.response import ServerSentEvent
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from marketplace.accounts.controller import BEARER
from marketplace.accounts.guards import allow, authenticated, public
from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.db import BIGINT_MAX
from marketplace.errors import MarketplaceError
from marketplace.livestreams.compliance import ComplianceService
from marketplace.livestreams.events import Audience, LiveChannels, live_events
from marketplace.livestreams.followers import FollowerService
from marketplace.livestreams.live_queue import EntryEdit, IncomingComment, LiveQueue
from marketplace.livestreams.models import (
    ComplaintStatus,
    EntryStatus,
    SessionStatus,
    VerificationStatus,
)
from marketplace.livestreams.report import SessionReporter
from marketplace.livestreams.schemas import (
    CommentCreate,
    CommentPage,
    ComplaintAnswer,
    ComplaintCreate,
    ComplaintPage,
    ComplaintRead,
    ConnectorTokenRead,
    FlashDealCreate,
    FollowCreate,
    FollowRead,
    HostItemRead,
    HostStatusRead,
    IngestedCommentRead,
    ItemCreate,
    ItemRead,
    ItemUpdate,
    QueueEntryRead,
    QueueEntryUpdate,
    QueuePage,
    ReminderRead,
    SessionCreate,
    SessionPage,
    SessionRead,
    SessionReport,
    SessionUpdate,
    VerificationCreate,
    VerificationPage,
    VerificationRead,
    VerificationReview,
    comment_read,
    complaint_read,
    entry_read,
    follow_read,
    host_item_read,
    item_read,
    reminder_read,
    session_read,
    verification_read,
)
from marketplace.livestreams.service import (
    MAX_PAGE,
    FlashDraft,
    ItemChanges,
    ItemDraft,
    LivestreamService,
    SessionChanges,
    SessionDraft,
    session_channel,
)
from marketplace.resources import Resources
from marketplace.unit_of_work import UnitOfWork

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, QueryParameter(ge=0, le=BIGINT_MAX)]
ConnectorToken = Annotated[str | None, HeaderParameter(name="X-Connector-Token", required=False)]
LastEventId = Annotated[str | None, HeaderParameter(name="Last-Event-ID", required=False)]


async def provide_livestreams(
    uow: NamedDependency[UnitOfWork], resources: NamedDependency[Resources]
) -> LivestreamService:
    return LivestreamService(uow, resources.redis, resources.clock, events=live_events(resources))


async def provide_live_queue(
    uow: NamedDependency[UnitOfWork], resources: NamedDependency[Resources]
) -> LiveQueue:
    return LiveQueue(
        uow, resources.settings, resources.redis, resources.clock, events=live_events(resources)
    )


async def provide_reporter(
    uow: NamedDependency[UnitOfWork], resources: NamedDependency[Resources]
) -> SessionReporter:
    return SessionReporter(
        uow, resources.settings, resources.redis, resources.clock, events=live_events(resources)
    )


async def provide_compliance(
    uow: NamedDependency[UnitOfWork], resources: NamedDependency[Resources]
) -> ComplianceService:
    return ComplianceService(uow, resources.clock)


async def provide_followers(
    uow: NamedDependency[UnitOfWork], resources: NamedDependency[Resources]
) -> FollowerService:
    return FollowerService(uow, resources.clock)


async def _stream_websocket(
    socket: WebSocket[Any, Any, Any],
    *,
    channels: LiveChannels,
    resources: Resources,
    session_id: uuid.UUID,
    audience: Audience,
    actor: AuthenticatedUser | None = None,
) -> None:
    try:
        channel = await session_channel(resources, session_id, audience, actor)
    except MarketplaceError as error:
        await socket.accept()
        await socket.close(code=4000 + error.status_code, reason=error.code)
        return
    await socket.accept()
    await channels.serve_websocket(socket, channel)


class LivestreamController(Controller):
    """What buyers and platform connectors call."""

    path = "/api/livestreams"
    tags = ["livestreams"]
    dependencies = {
        "livestreams": Provide(provide_livestreams),
        "live_queue": Provide(provide_live_queue),
        "compliance": Provide(provide_compliance),
    }

    @get("/", opt=public(), summary="Announced sessions, soonest first")
    async def list_sessions(
        self,
        livestreams: NamedDependency[LivestreamService],
        status: FromQuery[SessionStatus | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> SessionPage:
        views, total = await livestreams.list_sessions(
            host=None, statuses=[status] if status else None, limit=limit, offset=offset
        )
        return SessionPage(
            items=[session_read(v) for v in views], total=total, limit=limit, offset=offset
        )

    @get("/{session_id:uuid}", opt=public(), summary="One announced session and its rules")
    async def get_session(
        self, session_id: FromPath[uuid.UUID], livestreams: NamedDependency[LivestreamService]
    ) -> SessionRead:
        return session_read(await livestreams.public_session(session_id))

    @get("/{session_id:uuid}/items", opt=public(), summary="Pinned items at today's price")
    async def items(
        self,
        session_id: FromPath[uuid.UUID],
        livestreams: NamedDependency[LivestreamService],
        resources: NamedDependency[Resources],
    ) -> list[ItemRead]:
        await livestreams.public_session(session_id)
        now = resources.clock()
        views = await livestreams.items(session_id, pinned_only=True)
        return [item_read(view, now) for view in views]

    @get(
        "/{session_id:uuid}/comments",
        opt=public(),
        summary="The comment feed, phone numbers masked, in arrival order",
    )
    async def comments(
        self,
        session_id: FromPath[uuid.UUID],
        live_queue: NamedDependency[LiveQueue],
        after: Annotated[int, QueryParameter(ge=0, le=BIGINT_MAX)] = 0,
        limit: Limit = 50,
    ) -> CommentPage:
        rows = await live_queue.feed(session_id, after_seq=after, limit=limit)
        return CommentPage(
            items=[comment_read(c) for c in rows], next_after=rows[-1].seq if rows else after
        )

    @post(
        "/{session_id:uuid}/comments",
        opt=public(),
        summary="Deliver a comment from a platform connector (X-Connector-Token)",
        description=(
            "Idempotent per (platform, external_id): 201 the first time, 200 with the same "
            "body on a retry."
        ),
    )
    async def ingest_comment(
        self,
        session_id: FromPath[uuid.UUID],
        data: JSONBody[CommentCreate],
        live_queue: NamedDependency[LiveQueue],
        connector_token: ConnectorToken = None,
    ) -> Response[IngestedCommentRead]:
        ingested = await live_queue.ingest(
            session_id,
            connector_token,
            IncomingComment(
                platform=data.platform,
                external_id=data.external_id,
                author_platform_id=data.author_platform_id,
                author_display_name=data.author_display_name,
                text=data.text,
                commented_at=data.commented_at,
            ),
        )
        comment = ingested.comment
        body = IngestedCommentRead(
            id=comment.id,
            seq=comment.seq,
            intent=comment.intent,
            duplicate=ingested.duplicate,
            entries=[entry_read(entry, comment) for entry in ingested.entries],
        )
        return Response(body, status_code=HTTP_200_OK if ingested.duplicate else HTTP_201_CREATED)

    @get(
        "/{session_id:uuid}/events",
        opt=public(),
        summary="Server-Sent Events of the session (the last 100 first)",
    )
    async def events_sse(
        self,
        session_id: FromPath[uuid.UUID],
        channels: NamedDependency[LiveChannels],
        resources: NamedDependency[Resources],
        last_event_id: LastEventId = None,
    ) -> ServerSentEvent:
        channel = await session_channel(resources, session_id, "public")
        return ServerSentEvent(channels.sse_messages(channel, last_event_id))

    @websocket("/{session_id:uuid}/ws", opt=public())
    async def events_ws(
        self,
        socket: WebSocket[Any, Any, Any],
        session_id: FromPath[uuid.UUID],
        channels: NamedDependency[LiveChannels],
        resources: NamedDependency[Resources],
    ) -> None:
        await _stream_websocket(
            socket, channels=channels, resources=resources, session_id=session_id, audience="public"
        )

    @post(
        "/{session_id:uuid}/complaints",
        guards=[authenticated()],
        security=BEARER,
        summary="Complain about a session, during or after it",
    )
    async def file_complaint(
        self,
        session_id: FromPath[uuid.UUID],
        data: JSONBody[ComplaintCreate],
        current_user: NamedDependency[AuthenticatedUser],
        compliance: NamedDependency[ComplianceService],
    ) -> ComplaintRead:
        return complaint_read(await compliance.file_complaint(current_user, session_id, data.body))

    @get(
        "/complaints/mine",
        guards=[authenticated()],
        security=BEARER,
        summary="My complaints and their answers",
    )
    async def my_complaints(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        compliance: NamedDependency[ComplianceService],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> ComplaintPage:
        rows, total = await compliance.complaints_of(current_user, limit=limit, offset=offset)
        return ComplaintPage(
            items=[complaint_read(c) for c in rows], total=total, limit=limit, offset=offset
        )


class HostLivestreamController(Controller):
    """A host's own sessions (an admin may act on any)."""

    path = "/api/host/livestreams"
    tags = ["livestreams: host"]
    guards = [allow(Role.HOST, Role.ADMIN)]
    security = BEARER
    dependencies = {
        "livestreams": Provide(provide_livestreams),
        "live_queue": Provide(provide_live_queue),
        "reporter": Provide(provide_reporter),
    }

    @post("/", guards=[allow(Role.HOST)], summary="Create a draft session")
    async def create(
        self,
        data: JSONBody[SessionCreate],
        current_user: NamedDependency[AuthenticatedUser],
        livestreams: NamedDependency[LivestreamService],
    ) -> SessionRead:
        view = await livestreams.create_session(
            current_user,
            SessionDraft(
                title=data.title,
                platform=data.platform,
                scheduled_start_at=data.scheduled_start_at,
                scheduled_end_at=data.scheduled_end_at,
                rules_text=data.rules_text,
                hold_seconds=data.hold_seconds,
                household_ids=data.household_ids,
                cooperative_id=data.cooperative_id,
            ),
        )
        return session_read(view)

    @get("/", summary="My sessions (an admin's: all), soonest first")
    async def mine(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        livestreams: NamedDependency[LivestreamService],
        status: FromQuery[SessionStatus | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> SessionPage:
        views, total = await livestreams.list_sessions(
            host=current_user, statuses=[status] if status else None, limit=limit, offset=offset
        )
        return SessionPage(
            items=[session_read(v) for v in views], total=total, limit=limit, offset=offset
        )

    @get("/{session_id:uuid}", summary="One of my sessions, drafts included")
    async def get_session(
        self,
        session_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        livestreams: NamedDependency[LivestreamService],
    ) -> SessionRead:
        return session_read(await livestreams.session_for(current_user, session_id))

    @patch("/{session_id:uuid}", summary="Change a draft or scheduled session")
    async def update(
        self,
        session_id: FromPath[uuid.UUID],
        data: JSONBody[SessionUpdate],
        current_user: NamedDependency[AuthenticatedUser],
        livestreams: NamedDependency[LivestreamService],
    ) -> SessionRead:
        view = await livestreams.update_session(
            current_user,
            session_id,
            SessionChanges(
                title=data.title,
                platform=data.platform,
                scheduled_start_at=data.scheduled_start_at,
                scheduled_end_at=data.scheduled_end_at,
                rules_text=data.rules_text,
                hold_seconds=data.hold_seconds,
            ),
            household_ids=data.household_ids,
            cooperative_id=data.cooperative_id,
        )
        return session_read(view)

    @post("/{session_id:uuid}/schedule", status_code=HTTP_200_OK, summary="Announce a draft")
    async def schedule(
        self,
        session_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        livestreams: NamedDependency[LivestreamService],
    ) -> SessionRead:
        return session_read(await livestreams.schedule(current_user, session_id))

    @post("/{session_id:uuid}/go-live", status_code=HTTP_200_OK, summary="Start selling")
    async def go_live(
        self,
        session_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        livestreams: NamedDependency[LivestreamService],
    ) -> SessionRead:
        return session_read(await livestreams.go_live(current_user, session_id))

    @post(
        "/{session_id:uuid}/end",
        status_code=HTTP_200_OK,
        summary="End a live session; unsold stock returns to the variants",
    )
    async def end(
        self,
        session_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        livestreams: NamedDependency[LivestreamService],
    ) -> SessionRead:
        return session_read(await livestreams.end(current_user, session_id))

    @post(
        "/{session_id:uuid}/cancel",
        status_code=HTTP_200_OK,
        summary="Cancel a draft or scheduled session",
    )
    async def cancel(
        self,
        session_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        livestreams: NamedDependency[LivestreamService],
    ) -> SessionRead:
        return session_read(await livestreams.cancel(current_user, session_id))

    @post(
        "/{session_id:uuid}/connector-token",
        status_code=HTTP_200_OK,
        summary="Mint the session's comment connector token (replaces the previous one)",
    )
    async def connector_token(
        self,
        session_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        livestreams: NamedDependency[LivestreamService],
    ) -> ConnectorTokenRead:
        return ConnectorTokenRead(
            token=await livestreams.rotate_connector_token(current_user, session_id)
        )

    @get("/{session_id:uuid}/items", summary="Every item of the session with exact stock")
    async def items(
        self,
        session_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        livestreams: NamedDependency[LivestreamService],
        resources: NamedDependency[Resources],
    ) -> list[HostItemRead]:
        live = await livestreams.owned_session(current_user, session_id)
        now = resources.clock()
        views = await livestreams.items(live.id, pinned_only=False, with_sales=True)
        return [host_item_read(view, now) for view in views]

    @post("/{session_id:uuid}/items", summary="Pin a variant under a code")
    async def pin(
        self,
        session_id: FromPath[uuid.UUID],
        data: JSONBody[ItemCreate],
        current_user: NamedDependency[AuthenticatedUser],
        livestreams: NamedDependency[LivestreamService],
        resources: NamedDependency[Resources],
    ) -> HostItemRead:
        view = await livestreams.pin_item(
            current_user,
            session_id,
            ItemDraft(
                variant_id=data.variant_id,
                code=data.code,
                live_price_amount=data.live_price_amount,
                stock_cap=data.stock_cap,
                per_buyer_limit=data.per_buyer_limit,
            ),
        )
        return host_item_read(view, resources.clock())

    @patch(
        "/{session_id:uuid}/items/{item_id:uuid}",
        summary="Change an item's live price, per-buyer limit or stock cap",
    )
    async def update_item(
        self,
        *,
        session_id: FromPath[uuid.UUID],
        item_id: FromPath[uuid.UUID],
        data: JSONBody[ItemUpdate],
        current_user: NamedDependency[AuthenticatedUser],
        livestreams: NamedDependency[LivestreamService],
        resources: NamedDependency[Resources],
    ) -> HostItemRead:
        view = await livestreams.update_item(
            current_user,
            session_id,
            item_id,
            ItemChanges(
                live_price_amount=data.live_price_amount,
                per_buyer_limit=data.per_buyer_limit,
                stock_cap=data.stock_cap,
            ),
        )
        return host_item_read(view, resources.clock())

    @post(
        "/{session_id:uuid}/items/{item_id:uuid}/unpin",
        status_code=HTTP_200_OK,
        summary="Unpin an item; its unsold stock returns to the variant",
    )
    async def unpin(
        self,
        session_id: FromPath[uuid.UUID],
        item_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        livestreams: NamedDependency[LivestreamService],
        resources: NamedDependency[Resources],
    ) -> HostItemRead:
        view = await livestreams.unpin_item(current_user, session_id, item_id)
        return host_item_read(view, resources.clock())

    @post(
        "/{session_id:uuid}/items/{item_id:uuid}/flash-deals",
        summary="Announce a flash deal: a countdown of 10-300 s, then 1-20 minutes",
    )
    async def flash_deal(
        self,
        *,
        session_id: FromPath[uuid.UUID],
        item_id: FromPath[uuid.UUID],
        data: JSONBody[FlashDealCreate],
        current_user: NamedDependency[AuthenticatedUser],
        livestreams: NamedDependency[LivestreamService],
        resources: NamedDependency[Resources],
    ) -> HostItemRead:
        view = await livestreams.start_flash_deal(
            current_user,
            session_id,
            item_id,
            FlashDraft(
                price_amount=data.price_amount,
                countdown_seconds=data.countdown_seconds,
                duration_minutes=data.duration_minutes,
            ),
        )
        return host_item_read(view, resources.clock())

    @get("/{session_id:uuid}/queue", summary="The live queue, in comment arrival order")
    async def queue(
        self,
        *,
        session_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        live_queue: NamedDependency[LiveQueue],
        status: FromQuery[list[EntryStatus] | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> QueuePage:
        rows, total = await live_queue.queue(
            current_user, session_id, statuses=status, limit=limit, offset=offset
        )
        return QueuePage(
            items=[entry_read(entry, comment) for entry, comment in rows],
            total=total,
            limit=limit,
            offset=offset,
        )

    @patch(
        "/{session_id:uuid}/queue/{entry_id:uuid}",
        summary="Correct a parsed order (code, quantity, phone) before accepting it",
    )
    async def edit_entry(
        self,
        session_id: FromPath[uuid.UUID],
        entry_id: FromPath[uuid.UUID],
        data: JSONBody[QueueEntryUpdate],
        current_user: NamedDependency[AuthenticatedUser],
        live_queue: NamedDependency[LiveQueue],
    ) -> QueueEntryRead:
        entry, comment = await live_queue.edit(
            current_user,
            session_id,
            entry_id,
            EntryEdit(code=data.code, quantity=data.quantity, phone=data.phone),
        )
        return entry_read(entry, comment)

    @post(
        "/{session_id:uuid}/queue/{entry_id:uuid}/accept",
        status_code=HTTP_200_OK,
        summary="Place a queued order by hand",
    )
    async def accept_entry(
        self,
        session_id: FromPath[uuid.UUID],
        entry_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        live_queue: NamedDependency[LiveQueue],
    ) -> QueueEntryRead:
        entry, comment = await live_queue.accept(current_user, session_id, entry_id)
        return entry_read(entry, comment)

    @post(
        "/{session_id:uuid}/queue/{entry_id:uuid}/reject",
        status_code=HTTP_200_OK,
        summary="Reject a queued order (a held one is cancelled)",
    )
    async def reject_entry(
        self,
        session_id: FromPath[uuid.UUID],
        entry_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        live_queue: NamedDependency[LiveQueue],
    ) -> QueueEntryRead:
        entry, comment = await live_queue.reject(current_user, session_id, entry_id)
        return entry_read(entry, comment)

    @get("/{session_id:uuid}/report", summary="Orders, revenue, sell-outs and conversion")
    async def report(
        self,
        session_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        reporter: NamedDependency[SessionReporter],
    ) -> SessionReport:
        return await reporter.report(current_user, session_id)

    @get("/{session_id:uuid}/events", summary="The host's Server-Sent Events (exact stock)")
    async def events_sse(
        self,
        session_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        channels: NamedDependency[LiveChannels],
        resources: NamedDependency[Resources],
        last_event_id: LastEventId = None,
    ) -> ServerSentEvent:
        channel = await session_channel(resources, session_id, "host", current_user)
        return ServerSentEvent(channels.sse_messages(channel, last_event_id))

    @websocket("/{session_id:uuid}/ws")
    async def events_ws(
        self,
        socket: WebSocket[Any, Any, Any],
        session_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        channels: NamedDependency[LiveChannels],
        resources: NamedDependency[Resources],
    ) -> None:
        await _stream_websocket(
            socket,
            channels=channels,
            resources=resources,
            session_id=session_id,
            audience="host",
            actor=current_user,
        )


class HostVerificationController(Controller):
    path = "/api/host/verification"
    tags = ["livestreams: host"]
    guards = [allow(Role.HOST)]
    security = BEARER
    dependencies = {"compliance": Provide(provide_compliance)}

    @post("/", summary="Submit my identity document for review")
    async def submit(
        self,
        data: JSONBody[VerificationCreate],
        current_user: NamedDependency[AuthenticatedUser],
        compliance: NamedDependency[ComplianceService],
    ) -> VerificationRead:
        verification = await compliance.submit_verification(
            current_user,
            document_kind=data.document_kind,
            document_reference=data.document_reference,
        )
        return verification_read(verification)

    @get("/", summary="Whether I am verified, and my latest submission")
    async def status(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        compliance: NamedDependency[ComplianceService],
    ) -> HostStatusRead:
        verified, latest = await compliance.host_status(current_user.id)
        return HostStatusRead(
            verified=verified, latest=verification_read(latest) if latest else None
        )


class AdminLivestreamController(Controller):
    path = "/api/admin/livestreams"
    tags = ["admin"]
    guards = [allow(Role.ADMIN)]
    security = BEARER
    dependencies = {"compliance": Provide(provide_compliance)}

    @get("/verifications", summary="Host verifications, oldest first")
    async def verifications(
        self,
        compliance: NamedDependency[ComplianceService],
        status: FromQuery[VerificationStatus | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> VerificationPage:
        rows, total = await compliance.list_verifications(status=status, limit=limit, offset=offset)
        return VerificationPage(
            items=[verification_read(v) for v in rows], total=total, limit=limit, offset=offset
        )

    @post(
        "/verifications/{verification_id:uuid}/approve",
        status_code=HTTP_200_OK,
        summary="Approve a host's identity (recorded with who and when)",
    )
    async def approve(
        self,
        verification_id: FromPath[uuid.UUID],
        data: JSONBody[VerificationReview],
        current_user: NamedDependency[AuthenticatedUser],
        compliance: NamedDependency[ComplianceService],
    ) -> VerificationRead:
        return verification_read(await compliance.approve(current_user, verification_id, data.note))

    @post(
        "/verifications/{verification_id:uuid}/reject",
        status_code=HTTP_200_OK,
        summary="Reject a host's identity document, saying why",
    )
    async def reject(
        self,
        verification_id: FromPath[uuid.UUID],
        data: JSONBody[VerificationReview],
        current_user: NamedDependency[AuthenticatedUser],
        compliance: NamedDependency[ComplianceService],
    ) -> VerificationRead:
        return verification_read(await compliance.reject(current_user, verification_id, data.note))

    @get("/complaints", summary="Complaints about sessions, oldest first")
    async def complaints(
        self,
        compliance: NamedDependency[ComplianceService],
        status: FromQuery[ComplaintStatus | None] = None,
        session_id: FromQuery[uuid.UUID | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> ComplaintPage:
        rows, total = await compliance.list_complaints(
            status=status, session_id=session_id, limit=limit, offset=offset
        )
        return ComplaintPage(
            items=[complaint_read(c) for c in rows], total=total, limit=limit, offset=offset
        )

    @post(
        "/complaints/{complaint_id:uuid}/answer",
        status_code=HTTP_200_OK,
        summary="Answer a complaint",
    )
    async def answer(
        self,
        complaint_id: FromPath[uuid.UUID],
        data: JSONBody[ComplaintAnswer],
        current_user: NamedDependency[AuthenticatedUser],
        compliance: NamedDependency[ComplianceService],
    ) -> ComplaintRead:
        return complaint_read(await compliance.answer(current_user, complaint_id, data.answer))

    @post(
        "/complaints/{complaint_id:uuid}/close",
        status_code=HTTP_200_OK,
        summary="Close a complaint",
    )
    async def close(
        self,
        complaint_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        compliance: NamedDependency[ComplianceService],
    ) -> ComplaintRead:
        return complaint_read(await compliance.close(current_user, complaint_id))


class FollowController(Controller):
    path = "/api/follows"
    tags = ["livestreams"]
    guards = [authenticated()]
    security = BEARER
    dependencies = {"followers": Provide(provide_followers)}

    @post("/", summary="Follow a household or a cooperative (again: no change)")
    async def follow(
        self,
        data: JSONBody[FollowCreate],
        current_user: NamedDependency[AuthenticatedUser],
        followers: NamedDependency[FollowerService],
    ) -> FollowRead:
        follow = await followers.follow(
            current_user, household_id=data.household_id, cooperative_id=data.cooperative_id
        )
        return follow_read(follow)

    @get("/", summary="Whom I follow")
    async def mine(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        followers: NamedDependency[FollowerService],
    ) -> list[FollowRead]:
        return [follow_read(f) for f in await followers.follows_of(current_user)]

    @delete("/{follow_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Stop following")
    async def unfollow(
        self,
        follow_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        followers: NamedDependency[FollowerService],
    ) -> None:
        await followers.unfollow(current_user, follow_id)

    @get("/reminders", summary="Reminders of sessions about to start, newest first")
    async def reminders(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        followers: NamedDependency[FollowerService],
        limit: Limit = 50,
    ) -> list[ReminderRead]:
        return reminder_read(await followers.reminders_of(current_user, limit=limit))

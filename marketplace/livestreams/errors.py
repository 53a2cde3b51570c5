"""Errors a client of the livestreams domain can branch on, each with a stable code."""

from __future__ import annotations

from marketplace.errors import Conflict, NotAuthenticated, NotFound, PermissionDenied


class SessionNotFound(NotFound):
    """Also the answer for another host's session: a host cannot learn which ids exist."""

    code = "session_not_found"
    title = "No such livestream session"


class ItemNotFound(NotFound):
    code = "item_not_found"
    title = "No such item in this session"


class VariantNotFound(NotFound):
    code = "variant_not_found"
    title = "No such product variant"


class VerificationNotFound(NotFound):
    code = "verification_not_found"
    title = "No such host verification"


class ComplaintNotFound(NotFound):
    code = "complaint_not_found"
    title = "No such complaint"


class QueueEntryNotFound(NotFound):
    code = "queue_entry_not_found"
    title = "No such entry in the live queue"


class FollowNotFound(NotFound):
    code = "follow_not_found"
    title = "You do not follow this seller"


class SellerNotFound(NotFound):
    code = "seller_not_found"
    title = "No such household or cooperative"


class SessionNotDraft(Conflict):
    code = "session_not_draft"
    title = "Only a draft session can be scheduled"


class SessionNotScheduled(Conflict):
    code = "session_not_scheduled"
    title = "Only a scheduled session can go live"


class SessionNotLive(Conflict):
    code = "session_not_live"
    title = "The session is not live"


class SessionNotEditable(Conflict):
    code = "session_not_editable"
    title = "Only a draft or scheduled session can be changed"


class SessionNotCancellable(Conflict):
    code = "session_not_cancellable"
    title = "Only a draft or scheduled session can be cancelled"


class SessionClosed(Conflict):
    code = "session_closed"
    title = "The session has ended or was cancelled"


class SessionOver(Conflict):
    code = "session_over"
    title = "The session's scheduled end has passed"


class HostNotVerified(PermissionDenied):
    """The 2025 Law on E-commerce: a platform verifies a host's identity before the host
    may stream, so an unverified host cannot schedule or start a session."""

    code = "host_not_verified"
    title = "Your identity as a host has not been verified yet"


class VerificationPending(Conflict):
    code = "verification_pending"
    title = "A verification is already waiting for review"


class AlreadyVerified(Conflict):
    code = "host_already_verified"
    title = "This host is already verified"


class VerificationAlreadyReviewed(Conflict):
    code = "verification_already_reviewed"
    title = "This verification has already been reviewed"


class ComplaintsNotOpen(Conflict):
    code = "complaints_not_open"
    title = "Complaints are taken during and after a session, not before"


class ComplaintClosed(Conflict):
    code = "complaint_closed"
    title = "This complaint is closed"


class ItemCodeTaken(Conflict):
    code = "item_code_taken"
    title = "Another item of this session already has this code"


class InsufficientStock(Conflict):
    code = "insufficient_stock"
    title = "The variant does not have this much stock available"


class VariantNotSellable(Conflict):
    code = "variant_not_sellable"
    title = "The variant is inactive, its product is not listed, or it belongs to another seller"


class ItemUnpinned(Conflict):
    code = "item_unpinned"
    title = "The item is no longer pinned"


class FlashDealRunning(Conflict):
    code = "flash_deal_running"
    title = "The item already has a flash deal counting down or running"


class SoldOut(Conflict):
    code = "sold_out"
    title = "Sold out"


class LimitReached(Conflict):
    code = "limit_reached"
    title = "The per-buyer limit for this item is reached"


class QueueEntryNotActionable(Conflict):
    code = "queue_entry_not_actionable"
    title = "This entry of the live queue cannot take that action in its current state"


class OrdersUnavailable(Conflict):
    """Comment orders go through the orders domain; until it can place them, a comment's
    outcome stays `accepted_pending_orders`."""

    code = "orders_unavailable"
    title = "Order placement is not available yet"


class InvalidConnectorToken(NotAuthenticated):
    code = "invalid_connector_token"
    title = "The connector token is missing or not valid for this session"


class CommentInOtherSession(Conflict):
    code = "comment_in_other_session"
    title = "A comment with this platform id was already received for another session"

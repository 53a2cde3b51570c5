"""Errors a client of the accounts domain can branch on."""

from __future__ import annotations

from marketplace.errors import Conflict, NotAuthenticated, NotFound


class InvalidCredentials(NotAuthenticated):
    """One answer for an unknown login, a wrong password and a deactivated account, so the
    response never tells which accounts exist."""

    code = "invalid_credentials"
    title = "Login or password is wrong"


class InvalidToken(NotAuthenticated):
    """Expired, revoked, malformed, or belonging to a deactivated account: the client must
    log in again, whichever it was."""

    code = "invalid_token"
    title = "The bearer token is not valid"


class LoginTaken(Conflict):
    code = "login_taken"
    title = "An account with this login already exists"


class UserNotFound(NotFound):
    code = "user_not_found"
    title = "No such user"


class CannotDeactivateSelf(Conflict):
    """An admin deactivating their own account could leave nobody able to administer."""

    code = "cannot_deactivate_self"
    title = "You cannot deactivate your own account"

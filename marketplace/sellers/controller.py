"""HTTP endpoints for households, their reviews and consents, and cooperatives.

Role guards say which roles may call a route at all; object-level rules (which household,
which jurisdiction, which cooperative) are the services' and answer 403 or 404.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from marketplace.accounts.controller import BEARER
from marketplace.accounts.guards import allow, public
from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.resources import Resources
from marketplace.sellers.consents import ConsentService
from marketplace.sellers.cooperatives import CooperativeService
from marketplace.sellers.models import PovertyStatus
from marketplace.sellers.schemas import (
    ConsentCreate,
    ConsentRead,
    CooperativeCreate,
    CooperativeRead,
    HelperActionRead,
    HouseholdCreate,
    HouseholdPage,
    HouseholdRead,
    HouseholdSummary,
    HouseholdUpdate,
    ManagerCreate,
    ManagerRead,
    MemberCreate,
    MemberLeave,
    MemberRead,
    ReviewCreate,
    StatusEntryRead,
    StatusOnRead,
)
from marketplace.sellers.service import MAX_PAGE, SellersService
from marketplace.unit_of_work import UnitOfWork

HOUSEHOLD_READERS = (
    Role.ADMIN,
    Role.OFFICIAL,
    Role.FARMER,
    Role.HELPER,
    Role.COOPERATIVE_MANAGER,
)
"""Roles that may read some household; which ones is decided per household."""
CONSENT_KEEPERS = (Role.ADMIN, Role.OFFICIAL, Role.FARMER)

OnQuery = Annotated[
    date | None,
    QueryParameter(description="The day (Vietnam calendar); today when left out."),
]
PageLimit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)]
# Administrative codes are digits; anything else (a NUL byte among them) is bad input, not a
# string for PostgreSQL to choke on.
AdminCode = QueryParameter(max_length=10, pattern=r"^[0-9]{1,10}$")


async def provide_sellers(
    uow: NamedDependency[UnitOfWork], resources: NamedDependency[Resources]
) -> SellersService:
    return SellersService(uow, resources.settings, resources.clock)


async def provide_consents(
    uow: NamedDependency[UnitOfWork], resources: NamedDependency[Resources]
) -> ConsentService:
    return ConsentService(uow, resources.settings, resources.clock)


async def provide_cooperatives(
    uow: NamedDependency[UnitOfWork], resources: NamedDependency[Resources]
) -> CooperativeService:
    return CooperativeService(uow, resources.settings, resources.clock)


class HouseholdController(Controller):
    path = "/api/households"
    tags = ["households"]
    security = BEARER
    dependencies = {
        "sellers": Provide(provide_sellers),
        "consents": Provide(provide_consents),
    }

    @post("/", guards=[allow(Role.ADMIN, Role.OFFICIAL)], summary="Register a household")
    async def register(
        self,
        data: JSONBody[HouseholdCreate],
        current_user: NamedDependency[AuthenticatedUser],
        sellers: NamedDependency[SellersService],
    ) -> HouseholdRead:
        return await sellers.register_household(current_user, data)

    @get(
        "/",
        guards=[allow(Role.ADMIN, Role.OFFICIAL)],
        summary="Households of your jurisdiction (all for admins), by registration",
    )
    async def list_households(
        self,
        *,
        current_user: NamedDependency[AuthenticatedUser],
        sellers: NamedDependency[SellersService],
        on: OnQuery = None,
        status: FromQuery[PovertyStatus | None] = None,
        commune_code: Annotated[str | None, AdminCode] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: PageLimit = 50,
    ) -> HouseholdPage:
        return await sellers.list_households(
            current_user,
            on=on,
            status=status,
            commune_code=commune_code,
            cursor=cursor,
            limit=limit,
        )

    @get(
        "/mine",
        guards=[allow(Role.FARMER, Role.HELPER)],
        summary="Your own household, or those you help under consent",
    )
    async def mine(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        sellers: NamedDependency[SellersService],
    ) -> list[HouseholdSummary]:
        return await sellers.my_households(current_user)

    @get("/{household_id:uuid}", guards=[allow(*HOUSEHOLD_READERS)], summary="One household")
    async def get_household(
        self,
        household_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        sellers: NamedDependency[SellersService],
    ) -> HouseholdRead:
        return await sellers.get_household(current_user, household_id)

    @patch(
        "/{household_id:uuid}",
        guards=[allow(Role.ADMIN, Role.OFFICIAL, Role.FARMER, Role.HELPER)],
        summary="Change a household's profile",
    )
    async def update_household(
        self,
        household_id: FromPath[uuid.UUID],
        data: JSONBody[HouseholdUpdate],
        current_user: NamedDependency[AuthenticatedUser],
        sellers: NamedDependency[SellersService],
    ) -> HouseholdRead:
        return await sellers.update_household(current_user, household_id, data)

    @post(
        "/{household_id:uuid}/reviews",
        guards=[allow(Role.OFFICIAL)],
        summary="Record a poverty review decision",
    )
    async def record_review(
        self,
        household_id: FromPath[uuid.UUID],
        data: JSONBody[ReviewCreate],
        current_user: NamedDependency[AuthenticatedUser],
        sellers: NamedDependency[SellersService],
    ) -> StatusEntryRead:
        return await sellers.record_review(current_user, household_id, data)

    @get(
        "/{household_id:uuid}/status",
        guards=[allow(*HOUSEHOLD_READERS)],
        summary="Poverty status on a day",
    )
    async def status_on(
        self,
        household_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        sellers: NamedDependency[SellersService],
        on: OnQuery = None,
    ) -> StatusOnRead:
        return await sellers.status_of(current_user, household_id, on)

    @get(
        "/{household_id:uuid}/status-history",
        guards=[allow(*HOUSEHOLD_READERS)],
        summary="Every review, oldest first",
    )
    async def status_history(
        self,
        household_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        sellers: NamedDependency[SellersService],
    ) -> list[StatusEntryRead]:
        return await sellers.status_history(current_user, household_id)

    @post(
        "/{household_id:uuid}/consents",
        guards=[allow(*CONSENT_KEEPERS)],
        summary="Record the household's consent for a helper",
    )
    async def record_consent(
        self,
        household_id: FromPath[uuid.UUID],
        data: JSONBody[ConsentCreate],
        current_user: NamedDependency[AuthenticatedUser],
        consents: NamedDependency[ConsentService],
    ) -> ConsentRead:
        return await consents.record_consent(current_user, household_id, data)

    @get(
        "/{household_id:uuid}/consents",
        guards=[allow(*CONSENT_KEEPERS, Role.HELPER)],
        summary="The household's consents (a helper sees its own)",
    )
    async def list_consents(
        self,
        household_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        consents: NamedDependency[ConsentService],
    ) -> list[ConsentRead]:
        return await consents.list_consents(current_user, household_id)

    @post(
        "/{household_id:uuid}/consents/{consent_id:uuid}/revoke",
        status_code=HTTP_200_OK,
        guards=[allow(*CONSENT_KEEPERS, Role.HELPER)],
        summary="Revoke a consent",
    )
    async def revoke_consent(
        self,
        household_id: FromPath[uuid.UUID],
        consent_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        consents: NamedDependency[ConsentService],
    ) -> ConsentRead:
        return await consents.revoke_consent(current_user, household_id, consent_id)

    @get(
        "/{household_id:uuid}/helper-actions",
        guards=[allow(*CONSENT_KEEPERS)],
        summary="What helpers did on the household's behalf, newest first",
    )
    async def helper_actions(
        self,
        household_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        consents: NamedDependency[ConsentService],
        limit: PageLimit = 100,
    ) -> list[HelperActionRead]:
        return await consents.helper_actions(current_user, household_id, limit)


class CooperativeController(Controller):
    path = "/api/cooperatives"
    tags = ["cooperatives"]
    dependencies = {"cooperatives": Provide(provide_cooperatives)}

    @post(
        "/",
        guards=[allow(Role.ADMIN, Role.OFFICIAL)],
        security=BEARER,
        summary="Register a cooperative",
    )
    async def create(
        self,
        data: JSONBody[CooperativeCreate],
        current_user: NamedDependency[AuthenticatedUser],
        cooperatives: NamedDependency[CooperativeService],
    ) -> CooperativeRead:
        return await cooperatives.create_cooperative(current_user, data)

    @get("/", opt=public(), summary="Cooperatives, by name")
    async def list_cooperatives(
        self,
        cooperatives: NamedDependency[CooperativeService],
        province_code: Annotated[str | None, AdminCode] = None,
        commune_code: Annotated[str | None, AdminCode] = None,
        limit: PageLimit = 50,
    ) -> list[CooperativeRead]:
        return await cooperatives.list_cooperatives(
            province_code=province_code, commune_code=commune_code, limit=limit
        )

    @get(
        "/mine",
        guards=[allow(Role.COOPERATIVE_MANAGER)],
        security=BEARER,
        summary="Cooperatives you manage",
    )
    async def mine(
        self,
        current_user: NamedDependency[AuthenticatedUser],
        cooperatives: NamedDependency[CooperativeService],
    ) -> list[CooperativeRead]:
        return await cooperatives.my_cooperatives(current_user)

    @get("/{cooperative_id:uuid}", opt=public(), summary="One cooperative")
    async def get_cooperative(
        self,
        cooperative_id: FromPath[uuid.UUID],
        cooperatives: NamedDependency[CooperativeService],
    ) -> CooperativeRead:
        return await cooperatives.get_cooperative(cooperative_id)

    @post(
        "/{cooperative_id:uuid}/managers",
        guards=[allow(Role.ADMIN)],
        security=BEARER,
        summary="Make a cooperative-manager account a manager of this cooperative",
    )
    async def add_manager(
        self,
        cooperative_id: FromPath[uuid.UUID],
        data: JSONBody[ManagerCreate],
        cooperatives: NamedDependency[CooperativeService],
    ) -> ManagerRead:
        return await cooperatives.add_manager(cooperative_id, data.user_id)

    @get(
        "/{cooperative_id:uuid}/managers",
        guards=[allow(Role.ADMIN)],
        security=BEARER,
        summary="Managers of this cooperative",
    )
    async def list_managers(
        self,
        cooperative_id: FromPath[uuid.UUID],
        cooperatives: NamedDependency[CooperativeService],
    ) -> list[ManagerRead]:
        return await cooperatives.list_managers(cooperative_id)

    @delete(
        "/{cooperative_id:uuid}/managers/{user_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        guards=[allow(Role.ADMIN)],
        security=BEARER,
        summary="Remove a manager",
    )
    async def remove_manager(
        self,
        cooperative_id: FromPath[uuid.UUID],
        user_id: FromPath[uuid.UUID],
        cooperatives: NamedDependency[CooperativeService],
    ) -> None:
        await cooperatives.remove_manager(cooperative_id, user_id)

    @post(
        "/{cooperative_id:uuid}/members",
        guards=[allow(Role.ADMIN, Role.COOPERATIVE_MANAGER)],
        security=BEARER,
        summary="Add a member household",
    )
    async def add_member(
        self,
        cooperative_id: FromPath[uuid.UUID],
        data: JSONBody[MemberCreate],
        current_user: NamedDependency[AuthenticatedUser],
        cooperatives: NamedDependency[CooperativeService],
    ) -> MemberRead:
        return await cooperatives.add_member(current_user, cooperative_id, data)

    @post(
        "/{cooperative_id:uuid}/members/{member_id:uuid}/leave",
        status_code=HTTP_200_OK,
        guards=[allow(Role.ADMIN, Role.COOPERATIVE_MANAGER)],
        security=BEARER,
        summary="Record the day a member household left",
    )
    async def end_membership(
        self,
        cooperative_id: FromPath[uuid.UUID],
        member_id: FromPath[uuid.UUID],
        data: JSONBody[MemberLeave],
        current_user: NamedDependency[AuthenticatedUser],
        cooperatives: NamedDependency[CooperativeService],
    ) -> MemberRead:
        return await cooperatives.end_membership(
            current_user, cooperative_id, member_id, data.left_on
        )

    @get(
        "/{cooperative_id:uuid}/members",
        guards=[allow(Role.ADMIN, Role.COOPERATIVE_MANAGER, Role.OFFICIAL)],
        security=BEARER,
        summary="Members on a day, or every membership ever",
    )
    async def list_members(
        self,
        cooperative_id: FromPath[uuid.UUID],
        current_user: NamedDependency[AuthenticatedUser],
        cooperatives: NamedDependency[CooperativeService],
        on: Annotated[
            date | None,
            QueryParameter(description="Members on this day; every membership when left out."),
        ] = None,
    ) -> list[MemberRead]:
        return await cooperatives.list_members(current_user, cooperative_id, on)

"""Who may change a product, decided by the sellers domain's ownership rules.

A household's products are managed by its own farmer account, a helper holding its
`manage_products` consent (each act recorded on the household's behalf) and admins; a
cooperative's products by its managers and admins.

Refusals follow one rule: a product on public sale answers 403 to a caller who may not
change it (its existence is public anyway); any other product answers 404, as if it did not
exist, so drafts of other sellers cannot be probed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.catalog.errors import NotYourProduct, NotYourSeller, ProductNotFound, UnknownSeller
from marketplace.catalog.models import Product, ProductStatus, SellerKind
from marketplace.catalog.repository import ProductRepository
from marketplace.errors import PermissionDenied
from marketplace.resources import Clock
from marketplace.sellers.errors import CooperativeNotFound, HouseholdNotFound
from marketplace.sellers.service import ActingFor, SellersService
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class Seller:
    """The seller a product is created for, with the place the product is listed under."""

    kind: SellerKind
    household_id: uuid.UUID | None
    cooperative_id: uuid.UUID | None
    commune_code: str
    province_code: str
    admin_version: str
    acting: ActingFor | None
    """Set for a household seller: who acts, and under which consent when a helper does."""


@dataclass(frozen=True, slots=True)
class EditableProduct:
    product: Product
    acting: ActingFor | None


class ProductAccess:
    def __init__(self, uow: UnitOfWork, settings: Settings, clock: Clock) -> None:
        self._products = ProductRepository(uow.session)
        self.sellers = SellersService(uow, settings, clock)

    async def seller_for_new_product(
        self,
        user: AuthenticatedUser,
        kind: SellerKind,
        household_id: uuid.UUID | None,
        cooperative_id: uuid.UUID | None,
    ) -> Seller:
        """The seller named by a request body: unknown ids are the body's bad field (422),
        a seller the caller does not manage is 403."""
        if kind is SellerKind.HOUSEHOLD:
            if household_id is None or cooperative_id is not None:
                raise UnknownSeller(
                    "household_id", "a household product names household_id and no cooperative"
                )
            try:
                acting = await self.sellers.require_household_manager(user, household_id)
                household = await self.sellers.household_ref(household_id)
            except HouseholdNotFound:
                raise UnknownSeller("household_id", "no such household") from None
            except PermissionDenied:
                raise NotYourSeller("you may not sell for this household") from None
            return Seller(
                kind=kind,
                household_id=household.id,
                cooperative_id=None,
                commune_code=household.commune_code,
                province_code=household.province_code,
                admin_version=household.admin_version,
                acting=acting,
            )
        if cooperative_id is None or household_id is not None:
            raise UnknownSeller(
                "cooperative_id", "a cooperative product names cooperative_id and no household"
            )
        try:
            cooperative = await self.sellers.require_cooperative_manager(user, cooperative_id)
        except CooperativeNotFound:
            raise UnknownSeller("cooperative_id", "no such cooperative") from None
        except PermissionDenied:
            raise NotYourSeller("you do not manage this cooperative") from None
        return Seller(
            kind=kind,
            household_id=None,
            cooperative_id=cooperative.id,
            commune_code=cooperative.commune_code,
            province_code=cooperative.province_code,
            admin_version=cooperative.admin_version,
            acting=None,
        )

    async def product_for_edit(
        self, user: AuthenticatedUser, product_id: uuid.UUID
    ) -> EditableProduct:
        """The product, locked for this transaction, if the caller may change it."""
        product = await self._products.get_for_update(product_id)
        if product is None:
            raise ProductNotFound()
        try:
            if product.household_id is not None:
                acting = await self.sellers.require_household_manager(user, product.household_id)
                return EditableProduct(product, acting)
            if product.cooperative_id is not None:
                await self.sellers.require_cooperative_manager(user, product.cooperative_id)
                return EditableProduct(product, None)
        except PermissionDenied:
            raise refusal(product) from None
        raise ProductNotFound()

    async def household_for_edit(
        self, user: AuthenticatedUser, household_id: uuid.UUID, field: str
    ) -> ActingFor:
        try:
            return await self.sellers.require_household_manager(user, household_id)
        except HouseholdNotFound:
            raise UnknownSeller(field, "no such household") from None
        except PermissionDenied:
            raise NotYourSeller("you may not act for this household") from None

    async def seller_for_reading(
        self,
        user: AuthenticatedUser,
        household_id: uuid.UUID | None,
        cooperative_id: uuid.UUID | None,
    ) -> tuple[uuid.UUID | None, uuid.UUID | None]:
        """The seller whose own lists (products, notices) the caller asks for. Without ids,
        a farmer means their own household."""
        if household_id is None and cooperative_id is None:
            own = await self.sellers.household_of_farmer(user.id)
            if own is None:
                raise UnknownSeller("household_id", "give household_id or cooperative_id")
            household_id = own.id
        if household_id is not None:
            if cooperative_id is not None:
                raise UnknownSeller("cooperative_id", "give household_id or cooperative_id")
            await self.household_for_edit(user, household_id, "household_id")
            return household_id, None
        assert cooperative_id is not None  # noqa: S101 - narrowed by the branches above
        try:
            await self.sellers.require_cooperative_manager(user, cooperative_id)
        except CooperativeNotFound:
            raise UnknownSeller("cooperative_id", "no such cooperative") from None
        except PermissionDenied:
            raise NotYourSeller("you do not manage this cooperative") from None
        return None, cooperative_id

    async def record(
        self, acting: ActingFor | None, action: str, target_id: uuid.UUID | None
    ) -> None:
        """A helper's act is recorded as taken on the household's behalf."""
        if acting is not None:
            await self.sellers.record_action(acting, action, target_id)


def refusal(product: Product) -> Exception:
    if product.status == ProductStatus.LISTED:
        return NotYourProduct()
    return ProductNotFound()

"""Demo households and a cooperative for the default run, through the services' own rules.

Households of Phường Hương Trà (TP. Huế: cam, bưởi da xanh, thanh trà, quýt) and of Xã
Phong Điền and Xã Thới Lai (TP. Cần Thơ: fruit orchards and rice), with review histories
under the 07/2021 standard: some poor, some near-poor, one that left poverty in 2024 and is
"newly escaped", one never poor. The demo farmer account is linked to the 2024 escapee, the
demo helper holds its consent, and "HTX Nông nghiệp Hương Trà" has the Hương Trà households
as members. Reviews are recorded by the demo officials of each place, so every rule a real
official meets (jurisdiction, no future dates, the standard in force) holds for the demo.

Idempotent: a household already registered (found by its national ID's keyed hash), the
cooperative (by name), a manager, a membership or an active consent are left as they are.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import date

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import JurisdictionLevel, Role
from marketplace.sellers.consents import ConsentService
from marketplace.sellers.cooperatives import CooperativeService
from marketplace.sellers.errors import ActiveConsentExists, AlreadyMember
from marketplace.sellers.models import ConsentScope, PovertyStatus
from marketplace.sellers.schemas import (
    ConsentCreate,
    CooperativeCreate,
    HouseholdCreate,
    MemberCreate,
    ReviewCreate,
)
from marketplace.sellers.service import SellersService
from marketplace.settings import Settings
from marketplace.text import fold
from marketplace.unit_of_work import UnitOfWork

HUONG_TRA = "19996"  # Phường Hương Trà, TP. Huế
HUE = "46"
PHONG_DIEN = "31299"  # Xã Phong Điền, TP. Cần Thơ
THOI_LAI = "31258"  # Xã Thới Lai, TP. Cần Thơ
CAN_THO = "92"

ADMIN_LOGIN = "admin@demo.vn"
FARMER_LOGIN = "nongdan@demo.vn"
HELPER_LOGIN = "hotro@demo.vn"
MANAGER_LOGIN = "htx@demo.vn"
COMMUNE_OFFICIAL_LOGIN = "canbo.xa@demo.vn"
PROVINCE_OFFICIAL_LOGIN = "canbo.tinh@demo.vn"

COOPERATIVE_NAME = "HTX Nông nghiệp Hương Trà"
MEMBERS_JOINED_ON = date(2023, 3, 1)

AUTHORITY = {
    HUONG_TRA: "UBND Phường Hương Trà",
    PHONG_DIEN: "UBND Xã Phong Điền",
    THOI_LAI: "UBND Xã Thới Lai",
}


@dataclass(frozen=True)
class DemoReview:
    status: PovertyStatus
    review_date: date
    decision_number: str
    income: int
    deprived: int


@dataclass(frozen=True)
class DemoHousehold:
    key: str
    head_name: str
    members_count: int
    commune_code: str
    village: str
    phone: str
    national_id: str
    grows: str
    reviews: tuple[DemoReview, ...]
    bank_account_number: str | None = None
    cooperative_member: bool = False
    left_cooperative_on: date | None = None


def _r(status: PovertyStatus, day: date, number: str, income: int, deprived: int) -> DemoReview:
    return DemoReview(status, day, number, income, deprived)


P = PovertyStatus
DEMO_HOUSEHOLDS: tuple[DemoHousehold, ...] = (
    DemoHousehold(
        key="escaped_2024",
        head_name="Nguyễn Văn Hùng",
        members_count=5,
        commune_code=HUONG_TRA,
        village="Tổ dân phố Xuân Tháp",
        phone="0905123401",
        national_id="046072001234",
        grows="cam, bưởi da xanh",
        reviews=(
            _r(P.POOR, date(2022, 12, 15), "2145/QĐ-UBND", 1_450_000, 3),
            _r(P.NEAR_POOR, date(2023, 12, 15), "2380/QĐ-UBND", 1_800_000, 2),
            _r(P.NOT_POOR, date(2024, 12, 16), "2511/QĐ-UBND", 2_600_000, 1),
        ),
        bank_account_number="3901205123401",
        cooperative_member=True,
    ),
    DemoHousehold(
        key="near_poor_huong_tra",
        head_name="Trần Thị Hoa",
        members_count=4,
        commune_code=HUONG_TRA,
        village="Tổ dân phố Long Khê",
        phone="0935221402",
        national_id="046180004512",
        grows="thanh trà",
        reviews=(
            _r(P.POOR, date(2023, 12, 15), "2380/QĐ-UBND", 1_500_000, 4),
            _r(P.NEAR_POOR, date(2024, 12, 16), "2511/QĐ-UBND", 1_850_000, 2),
            _r(P.NEAR_POOR, date(2025, 12, 15), "2690/QĐ-UBND", 1_950_000, 1),
        ),
        bank_account_number="3901205221402",
        cooperative_member=True,
    ),
    DemoHousehold(
        key="poor_huong_tra",
        head_name="Lê Văn Phước",
        members_count=6,
        commune_code=HUONG_TRA,
        village="Tổ dân phố Bồn Phổ",
        phone="0914330403",
        national_id="046068007788",
        grows="quýt, bưởi da xanh",
        reviews=(
            _r(P.POOR, date(2022, 12, 15), "2145/QĐ-UBND", 1_200_000, 4),
            _r(P.POOR, date(2023, 12, 15), "2380/QĐ-UBND", 1_350_000, 4),
            _r(P.POOR, date(2025, 12, 15), "2690/QĐ-UBND", 1_600_000, 3),
        ),
        cooperative_member=True,
    ),
    DemoHousehold(
        key="never_poor_huong_tra",
        head_name="Hoàng Thị Sen",
        members_count=3,
        commune_code=HUONG_TRA,
        village="Tổ dân phố Xuân Tháp",
        phone="0389440404",
        national_id="046175002233",
        grows="cam",
        reviews=(
            _r(P.AVERAGE_LIVING_STANDARD, date(2023, 12, 15), "2380/QĐ-UBND", 2_700_000, 1),
            _r(P.NOT_POOR, date(2025, 12, 15), "2690/QĐ-UBND", 3_400_000, 0),
        ),
        cooperative_member=True,
        left_cooperative_on=date(2025, 1, 1),
    ),
    DemoHousehold(
        key="poor_phong_dien",
        head_name="Phạm Văn Tâm",
        members_count=5,
        commune_code=PHONG_DIEN,
        village="Ấp Nhơn Lộc 1",
        phone="0939550405",
        national_id="092070003456",
        grows="sầu riêng, vú sữa",
        reviews=(
            _r(P.POOR, date(2023, 12, 15), "3120/QĐ-UBND", 1_300_000, 4),
            _r(P.NEAR_POOR, date(2024, 12, 16), "3355/QĐ-UBND", 1_450_000, 2),
        ),
        bank_account_number="7100205550405",
    ),
    DemoHousehold(
        key="near_poor_thoi_lai",
        head_name="Huỳnh Thị Lệ",
        members_count=4,
        commune_code=THOI_LAI,
        village="Ấp Thới Phong",
        phone="0976660406",
        national_id="092182006789",
        grows="lúa",
        reviews=(_r(P.NEAR_POOR, date(2024, 12, 16), "1877/QĐ-UBND", 1_400_000, 1),),
    ),
    DemoHousehold(
        key="escaped_2023_thoi_lai",
        head_name="Võ Văn Tư",
        members_count=4,
        commune_code=THOI_LAI,
        village="Ấp Thới Hòa",
        phone="0988770407",
        national_id="092065001122",
        grows="lúa, cá",
        reviews=(
            _r(P.NEAR_POOR, date(2022, 12, 15), "1502/QĐ-UBND", 1_450_000, 2),
            _r(P.NOT_POOR, date(2023, 12, 15), "1699/QĐ-UBND", 2_100_000, 1),
        ),
    ),
)


@dataclass
class DemoSellersReport:
    households: dict[str, uuid.UUID] = field(default_factory=dict)
    """Demo household key -> id (created now or found)."""
    households_created: int = 0
    cooperative_id: uuid.UUID | None = None
    cooperative_created: bool = False


def _acting(
    accounts: dict[str, uuid.UUID],
    login: str,
    role: Role,
    level: JurisdictionLevel | None = None,
    code: str | None = None,
) -> AuthenticatedUser:
    """The demo account as the services see a caller (no token: nothing is served)."""
    return AuthenticatedUser(
        id=accounts[login],
        role=role,
        display_name=login,
        jurisdiction_level=level,
        jurisdiction_code=code,
        token_id=uuid.UUID(int=0),
    )


async def load_demo_sellers(
    uow: UnitOfWork, settings: Settings, accounts: dict[str, uuid.UUID]
) -> DemoSellersReport:
    """`accounts` maps the demo logins (marketplace.demo.DEMO_ACCOUNTS) to their user ids.
    The caller commits."""
    sellers = SellersService(uow, settings)
    consents = ConsentService(uow, settings)
    cooperatives = CooperativeService(uow, settings)
    admin = _acting(accounts, ADMIN_LOGIN, Role.ADMIN)
    officials = {
        HUE: _acting(
            accounts,
            COMMUNE_OFFICIAL_LOGIN,
            Role.OFFICIAL,
            JurisdictionLevel.COMMUNE,
            HUONG_TRA,
        ),
        CAN_THO: _acting(
            accounts,
            PROVINCE_OFFICIAL_LOGIN,
            Role.OFFICIAL,
            JurisdictionLevel.PROVINCE,
            CAN_THO,
        ),
    }
    report = DemoSellersReport()

    for demo in DEMO_HOUSEHOLDS:
        found = await sellers.find_household_by_national_id(demo.national_id)
        if found is not None:
            report.households[demo.key] = found.id
            continue
        official = officials[HUE if demo.commune_code == HUONG_TRA else CAN_THO]
        created = await sellers.register_household(
            official,
            HouseholdCreate(
                head_name=demo.head_name,
                members_count=demo.members_count,
                commune_code=demo.commune_code,
                village=demo.village,
                phone=demo.phone,
                national_id=demo.national_id,
                bank_bin="970405" if demo.bank_account_number else None,
                bank_account_number=demo.bank_account_number,
                bank_account_name=_account_name(demo.head_name)
                if demo.bank_account_number
                else None,
                farmer_user_id=accounts.get(FARMER_LOGIN) if demo.key == "escaped_2024" else None,
            ),
        )
        for item in demo.reviews:
            await sellers.record_review(
                official,
                created.id,
                ReviewCreate(
                    status=item.status,
                    review_date=item.review_date,
                    decision_number=item.decision_number,
                    deciding_authority=AUTHORITY[demo.commune_code],
                    income_per_person_month=item.income,
                    deprived_indicators=item.deprived,
                ),
            )
        report.households[demo.key] = created.id
        report.households_created += 1

    if HELPER_LOGIN in accounts:
        with contextlib.suppress(ActiveConsentExists):
            await consents.record_consent(
                officials[HUE],
                report.households["escaped_2024"],
                ConsentCreate(
                    helper_user_id=accounts[HELPER_LOGIN],
                    scopes=[ConsentScope.MANAGE_PRODUCTS, ConsentScope.MANAGE_ORDERS],
                    evidence="Biên bản đồng ý số 07/BB-UBND, ký tại UBND Phường Hương Trà",
                ),
            )

    cooperative = await cooperatives.find_by_name(COOPERATIVE_NAME)
    if cooperative is None:
        cooperative = await cooperatives.create_cooperative(
            admin,
            CooperativeCreate(
                name=COOPERATIVE_NAME,
                commune_code=HUONG_TRA,
                registration_number="3301234567",
                description=(
                    "Hợp tác xã của các hộ trồng cam, bưởi da xanh, thanh trà và quýt ở "
                    "Hương Trà, sản xuất theo VietGAP."
                ),
            ),
        )
        report.cooperative_created = True
    report.cooperative_id = cooperative.id
    if MANAGER_LOGIN in accounts:
        await cooperatives.add_manager(cooperative.id, accounts[MANAGER_LOGIN])
    for demo in DEMO_HOUSEHOLDS:
        if not demo.cooperative_member:
            continue
        with contextlib.suppress(AlreadyMember):
            await cooperatives.add_member(
                admin,
                cooperative.id,
                MemberCreate(
                    household_id=report.households[demo.key],
                    joined_on=MEMBERS_JOINED_ON,
                    left_on=demo.left_cooperative_on,
                ),
            )
    return report


def _account_name(head_name: str) -> str:
    """Banks hold account names in capitals without diacritics."""
    return fold(head_name).upper()

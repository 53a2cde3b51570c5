"""The multidimensional poverty standards, as data: the one source for code and database.

`classify_household` reads `STANDARDS` directly, and migration 0004 loads the same tuple into
`poverty_standards` / `poverty_indicators`, so the lines the code applies and the lines an
official sees in the database cannot disagree. A new or amended standard is a change here plus
a migration that writes it.

Amounts are whole đồng per person per month. A household is below a line when its income is
less than or equal to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Area(StrEnum):
    """A commune's type decides the line: xã is rural, phường urban, đặc khu per zone."""

    RURAL = "rural"
    URBAN = "urban"


@dataclass(frozen=True, slots=True)
class PovertyIndicator:
    """One deprivation indicator; `code` and `dimension_code` are stable identifiers that
    review records refer to, the names are for people."""

    code: str
    dimension_code: str
    dimension_name_vi: str
    dimension_name_en: str
    name_vi: str
    name_en: str


@dataclass(frozen=True, slots=True)
class PovertyStandard:
    """A poverty standard in force from `valid_from` to `valid_to`, both days included.

    The average-living-standard lines are the upper bounds of mức sống trung bình (income above
    the poverty line and at most this); None where the decree's figure is not known to us.
    `indicators_confirmed` is False while the indicator list is provisional.
    """

    code: str
    name: str
    valid_from: date
    valid_to: date
    rural_line: int
    urban_line: int
    deprivation_threshold: int
    rural_average_living_line: int | None
    urban_average_living_line: int | None
    indicators_confirmed: bool
    indicators: tuple[PovertyIndicator, ...]

    def line(self, area: Area | str) -> int:
        return self.urban_line if Area(area) is Area.URBAN else self.rural_line

    def average_living_line(self, area: Area | str) -> int | None:
        if Area(area) is Area.URBAN:
            return self.urban_average_living_line
        return self.rural_average_living_line

    def in_force_on(self, on: date) -> bool:
        return self.valid_from <= on <= self.valid_to


_EMPLOYMENT = ("employment", "Việc làm", "Employment")
_HEALTH = ("health", "Y tế", "Health")
_EDUCATION = ("education", "Giáo dục", "Education")
_HOUSING = ("housing", "Nhà ở", "Housing")
_WATER = ("water_sanitation", "Nước sinh hoạt và vệ sinh", "Water and sanitation")
_INFORMATION = ("information", "Thông tin", "Information")


def _indicator(dimension: tuple[str, str, str], code: str, vi: str, en: str) -> PovertyIndicator:
    return PovertyIndicator(
        code=code,
        dimension_code=dimension[0],
        dimension_name_vi=dimension[1],
        dimension_name_en=dimension[2],
        name_vi=vi,
        name_en=en,
    )


_SHARED_INDICATORS = (
    _indicator(_EMPLOYMENT, "employment", "Việc làm", "Employment"),
    _indicator(_EMPLOYMENT, "dependants", "Người phụ thuộc trong hộ gia đình", "Dependants"),
    _indicator(_HEALTH, "nutrition", "Dinh dưỡng", "Nutrition"),
    _indicator(_HEALTH, "health_insurance", "Bảo hiểm y tế", "Health insurance"),
    _indicator(_EDUCATION, "adult_education", "Trình độ giáo dục của người lớn", "Adult education"),
    _indicator(
        _EDUCATION,
        "child_school_attendance",
        "Tình trạng đi học của trẻ em",
        "Children's school attendance",
    ),
    _indicator(_HOUSING, "housing_quality", "Chất lượng nhà ở", "Housing quality"),
    _indicator(
        _HOUSING,
        "floor_area_per_person",
        "Diện tích nhà ở bình quân đầu người",
        "Floor area per person",
    ),
    _indicator(_WATER, "water_source", "Nguồn nước sinh hoạt", "Water source"),
    _indicator(_WATER, "hygienic_toilet", "Nhà tiêu hợp vệ sinh", "Hygienic toilet"),
    _indicator(_INFORMATION, "telecom_use", "Sử dụng dịch vụ viễn thông", "Telecom use"),
)

_INFORMATION_ACCESS = _indicator(
    _INFORMATION,
    "information_access_means",
    "Phương tiện phục vụ tiếp cận thông tin",
    "Means of access to information",
)

DECREE_07_2021 = PovertyStandard(
    code="07/2021/ND-CP",
    name="Nghị định 07/2021/NĐ-CP: chuẩn nghèo đa chiều 2021-2025, kéo dài đến hết 2026",
    valid_from=date(2022, 1, 1),
    valid_to=date(2026, 12, 31),
    rural_line=1_500_000,
    urban_line=2_000_000,
    deprivation_threshold=3,
    rural_average_living_line=2_250_000,
    urban_average_living_line=3_000_000,
    indicators_confirmed=True,
    indicators=(*_SHARED_INDICATORS, _INFORMATION_ACCESS),
)

# The 2027-2030 indicator list is not confirmed: it drops the means of access to information
# and adds digital-service use, internet access and household waste handling. The dimensions
# given to the three additions are our reading, provisional with the rest of the list.
DECREE_351_2025 = PovertyStandard(
    code="351/2025/ND-CP",
    name="Nghị định 351/2025/NĐ-CP: chuẩn nghèo đa chiều",
    valid_from=date(2027, 1, 1),
    valid_to=date(2030, 12, 31),
    rural_line=2_200_000,
    urban_line=2_800_000,
    deprivation_threshold=3,
    rural_average_living_line=None,
    urban_average_living_line=None,
    indicators_confirmed=False,
    indicators=(
        *_SHARED_INDICATORS,
        _indicator(
            _INFORMATION, "digital_service_use", "Sử dụng dịch vụ số", "Digital-service use"
        ),
        _indicator(_INFORMATION, "internet_access", "Tiếp cận internet", "Internet access"),
        _indicator(
            _WATER,
            "household_waste_handling",
            "Xử lý rác thải sinh hoạt của hộ gia đình",
            "Household waste handling",
        ),
    ),
)

STANDARDS: tuple[PovertyStandard, ...] = (DECREE_07_2021, DECREE_351_2025)
"""Every known standard, oldest first; their periods do not overlap."""

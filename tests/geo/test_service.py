"""The geo service on the migrated database: the package's units, searchable without marks,
and the answers other domains rely on (which commune, which province, rural or urban)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from vietnam_provinces import Province as PackageProvince
from vietnam_provinces import Ward

from marketplace.geo.errors import (
    CommuneNotFound,
    NotASpecialZone,
    ProvinceNotFound,
    UnknownCommune,
)
from marketplace.geo.models import Area, Commune, CommuneUnitType, Province, ProvinceUnitType
from marketplace.geo.service import GeoService, load_admin_units
from marketplace.geo.source import commune_rows, province_rows
from marketplace.text import fold
from marketplace.unit_of_work import UnitOfWork

CAN_THO = "92"
NINH_KIEU = "31135"  # Phường Ninh Kiều, Cần Thơ
THOI_LAI = "31258"  # Xã Thới Lai, Cần Thơ
PHU_QUOC = "31078"  # Đặc khu Phú Quốc, An Giang


@pytest.fixture
def geo(uow: UnitOfWork) -> GeoService:
    return GeoService(uow)


async def test_the_migration_loaded_34_provinces_and_3321_communes(session: AsyncSession) -> None:
    provinces = await session.scalar(select(func.count()).select_from(Province))
    communes = await session.scalar(select(func.count()).select_from(Commune))
    assert (provinces, communes) == (34, 3321)


async def test_stored_units_are_exactly_the_package_rows(session: AsyncSession) -> None:
    stored_provinces = {
        (p.code, p.name, p.unit_type, p.name_folded, p.admin_version, p.id)
        for p in await session.scalars(select(Province))
    }
    assert stored_provinces == {
        (r.code, r.name, r.unit_type, r.name_folded, r.admin_version, r.id) for r in province_rows()
    }
    stored_communes = {
        (c.code, c.name, c.unit_type, c.area, c.province_code, c.name_folded, c.admin_version, c.id)
        for c in await session.scalars(select(Commune))
    }
    assert stored_communes == {
        (r.code, r.name, r.unit_type, r.area, r.province_code, r.name_folded, r.admin_version, r.id)
        for r in commune_rows()
    }


async def test_a_random_sample_of_stored_communes_matches_the_package_lookup(
    session: AsyncSession,
) -> None:
    sample = (await session.scalars(select(Commune).order_by(func.random()).limit(60))).all()
    assert len(sample) == 60
    for commune in sample:
        ward = Ward.from_code(int(commune.code))  # type: ignore[arg-type]
        province = PackageProvince.from_code(ward.province_code)
        assert commune.name == ward.name, commune.code
        assert commune.province_code == f"{int(province.code):02d}", commune.code
        assert (
            commune.unit_type.value
            == {"xã": "xa", "phường": "phuong", "đặc khu": "dac_khu"}[ward.division_type.value]
        )


async def test_every_stored_code_carries_the_2025_07_version(session: AsyncSession) -> None:
    versions = await session.execute(
        text("SELECT admin_version FROM provinces UNION SELECT admin_version FROM communes")
    )
    assert versions.scalars().all() == ["2025-07"]


async def test_provinces_list_all_34_with_their_commune_counts(geo: GeoService) -> None:
    provinces = await geo.list_provinces()
    assert len(provinces) == 34
    assert sum(p.commune_count for p in provinces) == 3321
    can_tho = next(p for p in provinces if p.code == CAN_THO)
    assert (can_tho.name, can_tho.unit_type, can_tho.commune_count) == (
        "Thành phố Cần Thơ",
        ProvinceUnitType.MUNICIPALITY,
        103,
    )


async def test_can_tho_has_103_communes(geo: GeoService) -> None:
    communes = await geo.list_communes(CAN_THO)
    assert len(communes) == 103
    assert {c.province_name for c in communes} == {"Thành phố Cần Thơ"}
    assert Counter(c.unit_type for c in communes) == {
        CommuneUnitType.XA: 72,
        CommuneUnitType.PHUONG: 31,
    }


async def test_unit_type_counts_over_all_provinces(geo: GeoService) -> None:
    counts: Counter[CommuneUnitType] = Counter()
    for province in await geo.list_provinces():
        counts.update(c.unit_type for c in await geo.list_communes(province.code))
    assert counts == {
        CommuneUnitType.XA: 2621,
        CommuneUnitType.PHUONG: 687,
        CommuneUnitType.DAC_KHU: 13,
    }


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("can tho", id="no-marks"),
        pytest.param("Cần Thơ", id="with-marks"),
        pytest.param("CAN  THO", id="upper-case-extra-space"),
        pytest.param("cần thơ", id="lower-with-marks"),
    ],
)
async def test_provinces_are_found_without_diacritics_or_case(geo: GeoService, query: str) -> None:
    found = await geo.list_provinces(query)
    assert [p.code for p in found] == [CAN_THO]


async def test_province_search_matches_any_part_of_the_name(geo: GeoService) -> None:
    found = {p.name for p in await geo.list_provinces("thanh pho")}
    assert found == {p.name for p in PackageProvince.iter_all() if p.name.startswith("Thành phố")}
    assert len(found) == 6


async def test_an_empty_search_lists_everything(geo: GeoService) -> None:
    assert len(await geo.list_provinces("   ")) == 34


async def test_like_wildcards_in_a_search_are_taken_literally(geo: GeoService) -> None:
    assert await geo.list_provinces("%") == []
    assert await geo.list_provinces("_") == []


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("ninh kieu", id="no-marks"),
        pytest.param("Ninh Kiều", id="with-marks"),
        pytest.param("NINH KIEU", id="upper-case"),
    ],
)
async def test_communes_are_found_without_diacritics_or_case(geo: GeoService, query: str) -> None:
    found = await geo.list_communes(CAN_THO, query)
    assert [(c.code, c.name) for c in found] == [(NINH_KIEU, "Phường Ninh Kiều")]


async def test_commune_search_stays_inside_the_province(geo: GeoService) -> None:
    found = await geo.list_communes(CAN_THO, "thoi")
    assert found
    assert all(c.province_code == CAN_THO and "thoi" in fold(c.name) for c in found)
    assert len(found) == sum(
        1 for r in commune_rows() if r.province_code == CAN_THO and "thoi" in r.name_folded
    )


async def test_communes_filter_by_unit_type(geo: GeoService) -> None:
    phuong = await geo.list_communes(CAN_THO, unit_type=CommuneUnitType.PHUONG)
    assert len(phuong) == 31
    assert all(c.area is Area.URBAN for c in phuong)


async def test_province_codes_are_accepted_without_the_leading_zero(geo: GeoService) -> None:
    assert (await geo.get_province("1")).name == "Thành phố Hà Nội"
    assert (await geo.get_commune("70")).code == "00070"


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("03", id="code-retired-in-2025"),
        pytest.param("99", id="never-used"),
        pytest.param("ha-noi", id="not-a-code"),
    ],
)
async def test_an_unknown_province_is_not_found(geo: GeoService, code: str) -> None:
    with pytest.raises(ProvinceNotFound):
        await geo.get_province(code)
    with pytest.raises(ProvinceNotFound):
        await geo.list_communes(code)


async def test_a_commune_knows_its_province_and_area(geo: GeoService) -> None:
    commune = await geo.get_commune(NINH_KIEU)
    assert (commune.name, commune.province_code, commune.province_name, commune.area) == (
        "Phường Ninh Kiều",
        CAN_THO,
        "Thành phố Cần Thơ",
        Area.URBAN,
    )


@pytest.mark.parametrize(
    ("code", "area"),
    [
        pytest.param(NINH_KIEU, Area.URBAN, id="phuong-urban"),
        pytest.param(THOI_LAI, Area.RURAL, id="xa-rural"),
        pytest.param(PHU_QUOC, Area.RURAL, id="special-zone-default-rural"),
    ],
)
async def test_area_of_a_commune_decides_the_poverty_line(
    geo: GeoService, code: str, area: Area
) -> None:
    assert await geo.area_of(code) is area


async def test_province_of_a_commune(geo: GeoService) -> None:
    province = await geo.province_of(PHU_QUOC)
    assert (province.code, province.name) == ("91", "An Giang")


async def test_require_commune_names_the_callers_field(geo: GeoService) -> None:
    with pytest.raises(UnknownCommune) as caught:
        await geo.require_commune("99999", field="household.commune_code")
    error = caught.value
    assert error.status_code == 422
    assert error.code == "unknown_commune"
    assert [e.field for e in error.errors] == ["household.commune_code"]
    assert "99999" in error.errors[0].message


async def test_require_commune_defaults_the_field_to_commune_code(geo: GeoService) -> None:
    with pytest.raises(UnknownCommune) as caught:
        await geo.require_commune("nowhere")
    assert [e.field for e in caught.value.errors] == ["commune_code"]
    assert (await geo.require_commune(THOI_LAI)).name == "Xã Thới Lai"


async def test_get_commune_of_an_unknown_code_is_not_found(geo: GeoService) -> None:
    with pytest.raises(CommuneNotFound):
        await geo.get_commune("99999")
    with pytest.raises(CommuneNotFound):
        await geo.area_of("99999")


async def test_a_special_zone_area_can_be_set_per_zone(geo: GeoService, uow: UnitOfWork) -> None:
    updated = await geo.set_special_zone_area(PHU_QUOC, Area.URBAN)
    assert updated.area is Area.URBAN
    await uow.commit()
    assert await GeoService(uow).area_of(PHU_QUOC) is Area.URBAN
    assert await geo.area_of("31108") is Area.RURAL  # Kiên Hải keeps its own setting


@pytest.mark.parametrize(
    "code", [pytest.param(NINH_KIEU, id="phuong"), pytest.param(THOI_LAI, id="xa")]
)
async def test_only_a_special_zone_area_can_be_set(geo: GeoService, code: str) -> None:
    before = await geo.area_of(code)
    with pytest.raises(NotASpecialZone):
        await geo.set_special_zone_area(code, Area.URBAN if before is Area.RURAL else Area.RURAL)
    assert await geo.area_of(code) is before


async def test_the_database_refuses_an_area_that_contradicts_the_type(
    session: AsyncSession,
) -> None:
    with pytest.raises(IntegrityError, match="ck_communes_area_follows_unit_type"):
        await session.execute(
            update(Commune).where(Commune.code == THOI_LAI).values(area=Area.URBAN)
        )


async def test_loading_again_changes_nothing(session: AsyncSession) -> None:
    report = await load_admin_units(session)
    assert (report.provinces.inserted, report.provinces.updated) == (0, 0)
    assert (report.communes.inserted, report.communes.updated) == (0, 0)
    assert await session.scalar(select(func.count()).select_from(Commune)) == 3321


async def test_loading_restores_package_names_and_keeps_special_zone_settings(
    session: AsyncSession,
) -> None:
    await session.execute(
        update(Commune).where(Commune.code == NINH_KIEU).values(name="typo", name_folded="typo")
    )
    await session.execute(update(Commune).where(Commune.code == PHU_QUOC).values(area=Area.URBAN))
    await session.execute(delete(Commune).where(Commune.code == THOI_LAI))
    report = await load_admin_units(session)
    assert (report.communes.inserted, report.communes.updated) == (1, 1)
    rows = {
        c.code: c
        for c in await session.scalars(
            select(Commune)
            .where(Commune.code.in_([NINH_KIEU, PHU_QUOC, THOI_LAI]))
            .execution_options(populate_existing=True)
        )
    }
    assert (rows[NINH_KIEU].name, rows[NINH_KIEU].name_folded) == (
        "Phường Ninh Kiều",
        "phuong ninh kieu",
    )
    assert rows[PHU_QUOC].area is Area.URBAN
    assert rows[THOI_LAI].name == "Xã Thới Lai"

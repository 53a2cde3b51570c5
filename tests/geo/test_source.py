"""Rows built from the vietnam-provinces package: the 2025-07 set, nothing hand-written."""

from __future__ import annotations

from collections import Counter

import pytest
from vietnam_provinces import Province, Ward

from marketplace.geo.models import Area, CommuneUnitType, ProvinceUnitType
from marketplace.geo.source import (
    SourceDataMismatch,
    area_for,
    commune_code,
    commune_rows,
    province_code,
    province_rows,
    unit_id,
)


def test_the_package_holds_34_provinces_and_3321_communes() -> None:
    assert len(province_rows()) == 34
    assert len(commune_rows()) == 3321


def test_commune_unit_types_are_2621_xa_687_phuong_13_special_zones() -> None:
    counts = Counter(row.unit_type for row in commune_rows())
    assert counts == {
        CommuneUnitType.XA: 2621,
        CommuneUnitType.PHUONG: 687,
        CommuneUnitType.DAC_KHU: 13,
    }


def test_six_provinces_are_centrally_run_municipalities() -> None:
    counts = Counter(row.unit_type for row in province_rows())
    assert counts == {ProvinceUnitType.PROVINCE: 28, ProvinceUnitType.MUNICIPALITY: 6}


def test_codes_are_zero_padded_like_the_official_lists() -> None:
    codes = {row.code: row for row in province_rows()}
    assert codes["01"].name == Province.from_code(1).name  # type: ignore[arg-type]
    assert codes["92"].name == "Thành phố Cần Thơ"
    assert province_code(1) == "01"
    assert commune_code(70) == "00070"
    assert all(len(row.code) == 5 for row in commune_rows())


@pytest.mark.parametrize(
    ("unit_type", "area"),
    [
        pytest.param(CommuneUnitType.XA, Area.RURAL, id="xa-is-rural"),
        pytest.param(CommuneUnitType.PHUONG, Area.URBAN, id="phuong-is-urban"),
        pytest.param(CommuneUnitType.DAC_KHU, Area.RURAL, id="special-zone-starts-rural"),
    ],
)
def test_area_follows_the_commune_type(unit_type: CommuneUnitType, area: Area) -> None:
    assert area_for(unit_type) is area


def test_every_commune_row_matches_the_package_lookup() -> None:
    for row in commune_rows():
        ward = Ward.from_code(int(row.code))  # type: ignore[arg-type]
        assert (row.name, row.province_code) == (ward.name, province_code(int(ward.province_code)))


def test_ids_are_the_same_in_every_database() -> None:
    first = {row.code: row.id for row in commune_rows()}
    assert first == {row.code: row.id for row in commune_rows()}
    assert first["31135"] == unit_id("commune", "2025-07", "31135")
    assert unit_id("commune", "2025-07", "00070") != unit_id("commune", "2026-01", "00070")


def test_a_package_with_a_different_set_is_refused() -> None:
    from marketplace.geo.source import _check_total  # noqa: PLC0415

    with pytest.raises(SourceDataMismatch, match="3300 communes"):
        _check_total("communes", 3300, 3321)

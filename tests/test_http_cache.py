"""If-None-Match parsing: a client's cached copy is recognised however it quotes the tag."""

from __future__ import annotations

import pytest

from marketplace.http_cache import body_etag, etag_matches

ETAG = body_etag(b'[{"code":"92"}]')


@pytest.mark.parametrize(
    ("if_none_match", "matches"),
    [
        pytest.param(None, False, id="no-header"),
        pytest.param("", False, id="empty-header"),
        pytest.param(ETAG, True, id="same-tag"),
        pytest.param(f"W/{ETAG}", True, id="weak-form-of-same-tag"),
        pytest.param(f'"other", {ETAG}', True, id="one-of-a-list"),
        pytest.param("*", True, id="any"),
        pytest.param('"other"', False, id="different-tag"),
        pytest.param(ETAG.strip('"'), False, id="unquoted-is-not-a-tag"),
    ],
)
def test_if_none_match_is_compared_weakly_against_the_body_tag(
    if_none_match: str | None, matches: bool
) -> None:
    assert etag_matches(if_none_match, ETAG) is matches


def test_different_bodies_get_different_tags() -> None:
    assert body_etag(b"[]") != body_etag(b"[ ]")
    assert body_etag(b"[]") == body_etag(b"[]")

"""Certificate validity: how long VietGAP and OCOP certificates run and when they count.

A certificate is valid from `valid_from` up to the day before `valid_to`: on the expiry day
it is no longer shown as valid. Days are Vietnamese calendar days (UTC+7), since that is the
date printed on the certificate and the day a buyer in Vietnam is living in.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from marketplace.catalog.models import CertificationKind

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass(frozen=True, slots=True)
class CertificationPolicy:
    """Validity periods. VietGAP's 2 years is what most certifiers issue, not a law, hence
    a setting; OCOP's 36 months for 3-5 stars is the programme's rule."""

    vietgap_validity_months: int = 24
    ocop_validity_months: int = 36
    ocop_min_stars_with_default_validity: int = 3
    warn_days_before_expiry: int = 30


def vietnam_today(now: datetime) -> date:
    return now.astimezone(VIETNAM).date()


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's end (29 Feb + 12 -> 28 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def default_valid_to(
    kind: CertificationKind, stars: int | None, valid_from: date, policy: CertificationPolicy
) -> date | None:
    """None when no default applies (a 1-2 star OCOP): the seller must give the date."""
    if kind is CertificationKind.VIETGAP:
        return add_months(valid_from, policy.vietgap_validity_months)
    if stars is not None and stars >= policy.ocop_min_stars_with_default_validity:
        return add_months(valid_from, policy.ocop_validity_months)
    return None


def is_valid_on(valid_from: date, valid_to: date, day: date) -> bool:
    return valid_from <= day < valid_to


def warning_horizon(today: date, policy: CertificationPolicy) -> date:
    """Certificates expiring on or before this day are due a warning."""
    return today + timedelta(days=policy.warn_days_before_expiry)

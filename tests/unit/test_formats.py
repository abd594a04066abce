"""The formats the CRDs enforce agree with the parsers the operator uses."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given
from hypothesis import strategies as st

from notebook_operator.api.formats import (
    CRON_PATTERN,
    DURATION_PATTERN,
    iana_time_zones,
    is_cron,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("1.5h", timedelta(minutes=90)),
        ("8h", timedelta(hours=8)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "8", "8 hours", "1d", "h", "-5m", "1h 30m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    "expr",
    [
        "0 20 * * 1-5",
        "*/15 * * * *",
        "0 8-18/2 * * MON-FRI",
        "30 6 1,15 * *",
        "0 0 * JAN,JUL sun",
        "@daily",
        "5 4 * * 7",
    ],
)
def test_cron_accepts(expr: str) -> None:
    assert is_cron(expr)
    assert croniter.is_valid(expr)


@pytest.mark.parametrize(
    "expr",
    ["0 25 * * *", "60 * * * *", "* * 32 * *", "* * * 13 *", "* * * * 8", "0 20 * *", "every day", "@often"],
)
def test_cron_rejects(expr: str) -> None:
    assert not is_cron(expr)


_field = st.one_of(st.just("*"), st.integers(0, 59).map(str))


@given(
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    dom=st.integers(1, 31),
    month=st.integers(1, 12),
    dow=st.integers(0, 7),
    step=st.integers(1, 30),
)
def test_cron_pattern_agrees_with_croniter(minute: int, hour: int, dom: int, month: int, dow: int, step: int) -> None:
    for expr in (
        f"{minute} {hour} {dom} {month} {dow}",
        f"*/{step} {hour} * * {dow}",
        f"{minute} */{step} * * *",
    ):
        assert re.fullmatch(CRON_PATTERN, expr)
        assert croniter.is_valid(expr)


def test_duration_pattern_is_anchored() -> None:
    assert re.fullmatch(DURATION_PATTERN, "8h")
    assert not re.search(DURATION_PATTERN, "x8h")


def test_time_zones_are_loadable() -> None:
    zones = iana_time_zones()
    assert "Asia/Shanghai" in zones and "Europe/Berlin" in zones and "UTC" in zones
    assert len(zones) > 400
    for zone in zones[::25]:
        assert datetime(2026, 1, 1, tzinfo=ZoneInfo(zone)).utcoffset() is not None

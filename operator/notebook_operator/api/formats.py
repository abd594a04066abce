"""Formats the CRDs enforce (durations, cron, IANA time zones) and their Python parsers.

The API server checks the same patterns the operator parses with, so anything admitted
into the cluster can be interpreted without surprises at reconcile time.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cache
from importlib import resources

# Go-style duration as kubectl users write it: 90m, 1h30m, 45s, 1.5h.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(h|m|s))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> timedelta:
    """Parse a duration admitted by DURATION_PATTERN."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"invalid duration {text!r}: use e.g. 90m, 1h30m, 45s")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def _cron_field(value: str) -> str:
    element = rf"(\*|{value}(-{value})?)(/0*[1-9][0-9]*)?"  # a step of at least 1 (croniter refuses */0)
    return rf"{element}(,{element})*"


_MINUTE = r"([0-5]?[0-9])"
_HOUR = r"([01]?[0-9]|2[0-3])"
_DOM = r"(0?[1-9]|[12][0-9]|3[01])"
_MONTH = r"(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))"
_DOW = r"([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat))"
_MACROS = r"@(yearly|annually|monthly|weekly|daily|hourly)"

# Standard five-field cron (minute hour day-of-month month day-of-week) or a macro.
CRON_PATTERN = (
    rf"^({_MACROS}|{_cron_field(_MINUTE)} +{_cron_field(_HOUR)} +{_cron_field(_DOM)}"
    rf" +{_cron_field(_MONTH)} +{_cron_field(_DOW)})$"
)
_CRON_RE = re.compile(CRON_PATTERN)


def is_cron(text: str) -> bool:
    return bool(_CRON_RE.fullmatch(text.strip()))


@cache
def iana_time_zones() -> tuple[str, ...]:
    """Every zone name of the pinned `tzdata` package, so generated CRDs match on every machine."""
    listing = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return tuple(sorted(line.strip() for line in listing.splitlines() if line.strip()))


def time_zone_rule() -> str:
    """CEL rule admitting only IANA time zone names."""
    quoted = ",".join(f"'{zone}'" for zone in iana_time_zones())
    return f"self in [{quoted}]"

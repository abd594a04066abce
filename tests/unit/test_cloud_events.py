"""When the cloud's events of a notebook are worth a call: a new failure, or a transition that takes too long."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notebook_operator.cloud_events import STUCK_AFTER, worth_reading
from notebook_operator.providers.types import CloudInstance
from notebook_operator.times import rfc3339

NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


def cloud(phase: str) -> CloudInstance:
    return CloudInstance(provider="pai-dsw", id="dsw-1", name="nb", phase=phase, cloud_status=phase)  # type: ignore[arg-type]


def reconciling_for(age: timedelta) -> dict[str, Any]:
    return {"conditions": [{"type": "Reconciling", "status": "True", "lastTransitionTime": rfc3339(NOW - age)}]}


@pytest.mark.parametrize(
    ("phase", "status", "new_reason", "last_read", "worth"),
    [
        ("Failed", {}, True, None, True),  # a new failure: read once
        ("Failed", {}, False, None, False),  # the same failure, polled again
        ("Running", {}, True, None, False),  # a reason on a healthy instance is in status and an Event already
        ("Stopped", reconciling_for(timedelta(hours=1)), False, None, False),
        ("Starting", reconciling_for(STUCK_AFTER - timedelta(seconds=1)), False, None, False),  # not stuck yet
        ("Starting", reconciling_for(STUCK_AFTER), False, None, True),  # stuck
        ("Starting", reconciling_for(timedelta(hours=1)), False, NOW - timedelta(minutes=3), False),  # read lately
        ("Starting", reconciling_for(timedelta(hours=1)), False, NOW - STUCK_AFTER, True),  # read again
        ("Starting", {}, False, None, False),  # no Reconciling condition: nothing says how long
    ],
)
def test_worth_reading(
    phase: str, status: dict[str, Any], new_reason: bool, last_read: datetime | None, worth: bool
) -> None:
    assert worth_reading(cloud(phase), status, new_reason, last_read, NOW) is worth

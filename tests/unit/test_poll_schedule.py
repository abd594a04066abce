"""When an account's next poll pass starts: every interval, sooner for a shutdown that falls due, but never
sooner than half an interval after the last one began."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notebook_operator.handlers.providerconfig import _until_next_cycle

NOW = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)


def test_without_a_timer_a_pass_starts_every_interval() -> None:
    assert _until_next_cycle(30, 4, None, NOW) == 26
    assert _until_next_cycle(30, 45, None, NOW) == 0.1  # a long pass: the next one at once


def test_a_timer_due_within_the_interval_starts_the_pass_when_it_is_due() -> None:
    assert _until_next_cycle(30, 16, NOW + timedelta(seconds=5), NOW) == 5


def test_a_timer_due_very_soon_waits_for_half_an_interval_after_the_last_pass_began() -> None:
    assert _until_next_cycle(30, 4, NOW + timedelta(seconds=1), NOW) == 11


def test_a_timer_after_the_interval_changes_nothing() -> None:
    assert _until_next_cycle(30, 4, NOW + timedelta(seconds=60), NOW) == 26

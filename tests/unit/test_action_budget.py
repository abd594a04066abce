"""The calls one poll pass may spend on actions, and the order a queue drains in."""

from __future__ import annotations

from notebook_operator.action_budget import ActionBudget, Waiting, capacity


def test_capacity_is_the_interval_s_calls_less_the_listing_and_never_zero() -> None:
    assert capacity(10 * 30, 51) == 249
    assert capacity(10 * 10, 51) == 49
    assert capacity(1 * 5, 80) == 1  # a slow account still drains, one call a pass


def test_new_actions_are_admitted_until_the_calls_are_spent() -> None:
    budget = ActionBudget(3)
    assert [budget.admit(uid, 1) for uid in "abcde"] == [True, True, True, False, False]
    assert budget.queued == {"d", "e"}
    assert budget.spent == 3


def test_batched_stops_cost_their_share_of_one_call() -> None:
    budget = ActionBudget(2)
    admitted = [budget.admit(f"n{k}", 1 / 50) for k in range(120)]
    assert sum(admitted) == 100  # two StopInstances calls of 50
    assert not any(admitted[100:])


def test_what_waited_longest_goes_first_whatever_order_it_is_listed_in() -> None:
    waiting = [Waiting("new", "2026-12-02T20:00:05Z", 1), Waiting("old", "2026-12-02T20:00:00Z", 1)]
    budget = ActionBudget(1, waiting)
    assert budget.admit("fresh", 1) is False  # listed first, but the old one holds the only call
    assert budget.admit("new", 1) is False
    assert budget.admit("old", 1) is True
    assert budget.queued == {"fresh", "new"}


def test_a_reservation_not_used_is_released_for_others() -> None:
    budget = ActionBudget(1, [Waiting("old", "2026-12-02T20:00:00Z", 1)])
    assert budget.admit("fresh", 1) is False
    budget.release("old")  # its pass ended without an action: stopped meanwhile by someone else
    assert budget.admit("later", 1) is True


def test_the_namespaces_of_a_shared_account_take_turns_in_the_queue() -> None:
    """Team A's wave queued first cannot hold back team B's due stop queued a moment later."""
    wave = [Waiting(f"a{k}", f"2026-12-02T20:00:0{k}Z", 1, "team-a") for k in range(5)]
    budget = ActionBudget(2, [*wave, Waiting("b0", "2026-12-02T20:00:03Z", 1, "team-b")])
    assert budget.admit("b0", 1) and budget.admit("a0", 1)
    assert not budget.admit("a1", 1)

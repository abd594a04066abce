"""Warnings before stops and snoozes (reconcile/pending.py, the timer and cull gates): tables, no cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notebook_operator.notify.formats import Notice, body, dingtalk_signed_url, feishu_signed_body
from notebook_operator.providers.types import CloudInstance, Utilization
from notebook_operator.reconcile.culling import evaluate
from notebook_operator.reconcile.pending import (
    TIMER,
    Upcoming,
    announce,
    may_stop,
    read_snooze,
    snooze_status,
)
from notebook_operator.reconcile.plan import plan
from notebook_operator.reconcile.policies import Policy
from notebook_operator.times import rfc3339
from tests.specs import spec_of

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
KEY = "cloudnotebooks.io/keep-running-until"
WARN = timedelta(minutes=10)


def up(minutes: float, by: str = TIMER) -> Upcoming:
    return Upcoming(NOW + timedelta(minutes=minutes), "why", by, WARN)


def test_a_stop_entering_its_window_is_announced_once() -> None:
    assert announce(None, up(30), NOW, "").pending is None  # not yet in the window
    first = announce(None, up(10), NOW, "")
    assert first.pending == {"at": rfc3339(NOW + WARN), "reason": "why", "by": TIMER, "warnedAt": rfc3339(NOW)}
    assert first.event is not None and first.event[0] == "StopWarning"
    again = announce(first.pending, up(10), NOW + timedelta(minutes=1), "")
    assert again.event is None and again.pending == first.pending  # a restart finds it recorded: no second one


def test_a_stop_first_seen_due_still_gets_its_full_warning() -> None:
    late = announce(None, up(-5), NOW, "")
    assert late.pending is not None and late.pending["at"] == rfc3339(NOW + WARN)
    assert not may_stop(TIMER, 10, late.pending, NOW + timedelta(minutes=9))
    assert may_stop(TIMER, 10, late.pending, NOW + WARN)
    assert may_stop(TIMER, None, None, NOW)  # no warning wanted
    assert not may_stop(TIMER, 10, {**late.pending, "by": "IdleCullerPolicy x"}, NOW + WARN)  # another stop's


def test_withdrawn_when_the_stop_is_off() -> None:
    pending = announce(None, up(5, "IdleCullerPolicy p"), NOW, "").pending
    off = announce(pending, None, NOW, "the notebook is busy again")
    assert off.pending is None and off.event is not None
    assert off.event[0] == "StopWarningWithdrawn" and "busy again" in off.event[1]
    assert announce(None, None, NOW, "x").event is None  # nothing announced, nothing withdrawn


@pytest.mark.parametrize(("value", "ok"), [
    ("2026-12-02T14:00:00Z", True), ("2026-12-02T22:00:00+08:00", True), ("2026-12-02", False),
    ("tomorrow", False), ("2026-12-02T14:00:00", False), ("", False),
])  # fmt: skip
def test_snooze_values(value: str, ok: bool) -> None:
    snooze = read_snooze({KEY: value}, None, NOW)
    assert (snooze.requested is not None) is ok and (snooze.error is None) is ok
    if not ok:
        assert KEY in str(snooze.error)


def test_snooze_is_bounded_from_when_it_was_first_seen() -> None:
    asked = rfc3339(NOW + timedelta(hours=24))
    snooze = read_snooze({KEY: asked}, None, NOW)
    assert snooze.until(8) == NOW + timedelta(hours=8) and snooze.until(48) == NOW + timedelta(hours=24)
    status = snooze_status(snooze, {TIMER: 8, "IdleCullerPolicy p": 12}, NOW)
    assert (
        status is not None and status["until"] == rfc3339(NOW + timedelta(hours=8)) and "clamped" in status["message"]
    )
    later = read_snooze({KEY: asked}, status, NOW + timedelta(hours=3))
    assert later.seen_at == NOW  # the bound does not slide
    assert read_snooze({KEY: rfc3339(NOW)}, status, NOW).seen_at == NOW  # a new value starts again


def cloud(started: datetime) -> CloudInstance:
    return CloudInstance(id="dsw-1", name="nb", provider="pai-dsw", phase="Running", cloud_status="Running",
                         started_at=started)  # fmt: skip


def test_a_timer_stop_waits_for_its_warning_and_a_snooze() -> None:
    spec = spec_of({"instanceId": "dsw-1", "shutdown": {"at": rfc3339(NOW), "warnMinutes": 10}})
    running = cloud(NOW - timedelta(hours=1))
    held = plan(spec, {}, running, 1, NOW, spec_pass=False)
    assert held.order is None and held.held
    pending = {"at": rfc3339(NOW), "by": TIMER}
    assert plan(spec, {"pendingStop": pending}, running, 1, NOW, spec_pass=False).order is not None
    snoozed = plan(spec, {"pendingStop": pending}, running, 1, NOW, False, NOW + timedelta(hours=1))
    assert snoozed.order is None and snoozed.held is None  # not due any more


def test_a_cull_waits_for_its_warning_and_a_snooze_but_a_running_cap_does_not() -> None:
    started = NOW - timedelta(hours=3)
    idle = Policy("p", {}, cpu_percent=10, idle_minutes=30, window_minutes=5, warn_minutes=10)
    clock = {
        "since": rfc3339(NOW - timedelta(hours=1)),
        "policy": "p",
        "clocks": [{"policy": "p", "since": rfc3339(NOW - timedelta(hours=1))}],
        "sampledAt": rfc3339(NOW - timedelta(minutes=1)),
    }
    sample = Utilization(cpu_max=1.0, gpu_max=None, samples=5, window=timedelta(minutes=5), sampled_at=NOW)
    quiet = evaluate([idle], clock, cloud(started), sample, NOW)
    assert quiet.stop is None and quiet.upcoming is not None and quiet.upcoming.by == "IdleCullerPolicy p"
    pending = {"at": rfc3339(NOW), "by": "IdleCullerPolicy p"}
    assert evaluate([idle], clock, cloud(started), sample, NOW, pending=pending).stop is not None
    snoozed = evaluate([idle], clock, cloud(started), sample, NOW, snoozed={"p": NOW + timedelta(hours=1)},
                       pending=pending)  # fmt: skip
    assert snoozed.stop is None and snoozed.upcoming is not None and snoozed.upcoming.at == NOW + timedelta(hours=1)
    cap = Policy("cap", {}, max_running_hours=2)
    capped = evaluate([cap], {}, cloud(started), None, NOW, snoozed={"cap": NOW + timedelta(hours=1)})
    assert capped.stop is not None  # maxRunningHours is never snoozed


NOTICE = Notice("StopWarning", "team-a", "alice-gpu", "alice", "idle 50 min", NOW, "pai-dsw", "dsw-1",
                "Asia/Shanghai")  # fmt: skip


def test_each_format_has_its_bots_shape_and_the_snooze_command() -> None:
    shapes = {
        "dingtalk": lambda b: b["msgtype"] == "markdown" and b["markdown"]["text"],
        "feishu": lambda b: b["msg_type"] == "text" and b["content"]["text"],
        "wecom": lambda b: b["msgtype"] == "markdown" and b["markdown"]["content"],
        "slack": lambda b: b["text"],
        "generic": lambda b: b["text"],
    }
    for fmt, text_of in shapes.items():
        text = text_of(body(fmt, NOTICE))
        assert "team-a/alice-gpu" in text and "alice" in text and "idle 50 min" in text
        assert "kubectl notebook snooze alice-gpu 2h -n team-a" in text
        assert "Asia/Shanghai 2026-12-02 20:00:00" in text


def test_signatures_follow_the_documented_examples() -> None:
    # DingTalk's own example secret/timestamp pair gives this sign (HmacSHA256(secret, "ts\nsecret"), base64,
    # URL-encoded); Feishu's signs an empty message with "ts\nsecret" as the key.
    url = dingtalk_signed_url("https://oapi.dingtalk.com/robot/send?access_token=x", "this is secret", 1552920546388)
    assert url.startswith("https://oapi.dingtalk.com/robot/send?access_token=x&timestamp=1552920546388&sign=")
    assert "%2B" in url or "%2F" in url or "%3D" in url  # base64 is URL-encoded
    signed = feishu_signed_body({"msg_type": "text"}, "secret", 1599360473)
    assert signed["timestamp"] == "1599360473" and signed["msg_type"] == "text" and len(signed["sign"]) == 44


def test_cost_counts_running_time_and_is_not_written_on_every_pass() -> None:
    from notebook_operator.api.providerconfig import Pricing
    from notebook_operator.providers.types import HourlyPrice
    from notebook_operator.reconcile.cost import COST_REFRESH, cost_status, price_of

    listed = {"ecs.gn6i": HourlyPrice(12.0, "CNY")}
    assert price_of("ecs.gn6i", None, listed) is not None
    override = price_of("ecs.gn6i", Pricing(currency="USD", per_hour={"ecs.gn6i": 1.5}), listed)
    assert override is not None and (override.per_hour, override.currency) == (1.5, "USD")  # negotiated wins
    assert price_of("modelarts.vm.gpu.t4", None, listed) is None
    price = price_of("ecs.gn6i", None, listed)
    running = CloudInstance(id="dsw-1", name="nb", provider="pai-dsw", phase="Running", cloud_status="Running",
                            started_at=NOW - timedelta(hours=5), instance_type="ecs.gn6i")  # fmt: skip
    first = cost_status(None, price, running, NOW)
    assert first is not None and first["accumulated"] == 0 and first["countedAt"] == rfc3339(NOW)  # from adoption
    assert cost_status(first, price, running, NOW + timedelta(minutes=5)) is None  # not worth a write yet
    assert cost_status(first, price, running, NOW + COST_REFRESH - timedelta(minutes=1)) is None
    later = cost_status(first, price, running, NOW + timedelta(minutes=30))
    assert later is not None and later["accumulated"] == 6.0  # 30 min at 12/h
    stopped = CloudInstance(id="dsw-1", name="nb", provider="pai-dsw", phase="Stopped", cloud_status="Stopped",
                            instance_type="ecs.gn6i")  # fmt: skip
    end = cost_status(later, price, stopped, NOW + timedelta(hours=1))
    assert end is not None and end["accumulated"] == 12.0 and "countedAt" not in end
    assert cost_status(end, price, stopped, NOW + timedelta(hours=9)) is None  # stopped: nothing more
    missing = cost_status(None, None, running, NOW)
    assert missing is not None and "spec.pricing" in missing["source"]

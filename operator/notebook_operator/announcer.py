"""The people's side of a reconcile pass: the snooze as applied (status.snooze), the warning before a stop
(status.pendingStop, StopWarning / StopWarningWithdrawn) and the notices sent to a chat webhook.

The decisions are pure (reconcile/pending.py); this module reads the pass's inputs, says what to write and,
once the status write succeeded, what to announce: a warning is recorded before anyone hears of it, so a
restart between the two never sends it twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from notebook_operator.api.notify import NotifySpec
from notebook_operator.executor import EventSink
from notebook_operator.notify.formats import Notice
from notebook_operator.notify.sender import Notifier
from notebook_operator.providers.types import CloudInstance
from notebook_operator.reconcile.notebook import Notebook
from notebook_operator.reconcile.pending import (
    TIMER,
    Snooze,
    Upcoming,
    announce,
    earliest_warned,
    policy_by,
    snooze_status,
)
from notebook_operator.reconcile.policies import Policy, selecting
from notebook_operator.reconcile.shutdown import next_timer_stop
from notebook_operator.registry import AccountState, Policies
from notebook_operator.times import parse_rfc3339


@dataclass
class Step:
    patch: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message), after the write
    notices: list[tuple[NotifySpec, Notice]] = field(default_factory=list)  # after the write


class Announcer:
    def __init__(
        self,
        emit: EventSink,
        policies: Policies | None = None,
        account: AccountState | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.emit = emit
        self.policies = policies
        self.account = account
        self.notifier = notifier

    def chosen(self, notebook: Notebook) -> list[Policy]:
        """The IdleCullerPolicies that select this notebook (none when it is exempt)."""
        if self.policies is None:
            return []
        return selecting(self.policies.of(notebook.namespace), notebook.labels, notebook.annotations)

    def step(
        self,
        notebook: Notebook,
        status: Mapping[str, Any],
        observed: CloudInstance | None,
        now: datetime,
        snooze: Snooze,
        cull: Upcoming | bool | None,
        stopped: bool,
    ) -> Step:
        """`cull` is the earliest cull with a warning lead this pass assessed, or False when the pass did not
        assess idleness (a spec pass): an announced cull then stands as it is."""
        step = Step()
        chosen = self.chosen(notebook)
        shutdown = notebook.spec.shutdown
        bounds = {policy_by(p.name): p.max_snooze_hours for p in chosen}
        if shutdown is not None:
            bounds[TIMER] = shutdown.max_snooze_hours
        snoozed = snooze_status(snooze, bounds, now)
        if snoozed != status.get("snooze"):
            step.patch["snooze"] = snoozed
            if snooze.error and (status.get("snooze") or {}).get("message") != snooze.error:
                step.events.append(("Warning", "InvalidSnooze", snooze.error))
        current = status.get("pendingStop")
        if stopped or observed is None or observed.phase != "Running" or observed.started_at is None:
            if current:
                step.patch["pendingStop"] = None
            return step
        timer = None
        if shutdown is not None and shutdown.warn_minutes:
            due = next_timer_stop(shutdown, observed.started_at, now, snooze.until(shutdown.max_snooze_hours))
            if due is not None:
                timer = Upcoming(due.at, f"shutdown {due.reason}", TIMER, timedelta(minutes=shutdown.warn_minutes))
        if cull is False:
            if current and current.get("by") != TIMER:
                return step  # a cull announced by a poll pass: only a poll pass can call it off
            cull = None
        assert not isinstance(cull, bool)
        upcoming = earliest_warned([timer, cull])
        until = parse_rfc3339((snoozed or {}).get("until"))
        if until is not None and until > now:
            why = f"snoozed until {snoozed and snoozed.get('until')}"
        elif current and current.get("by") not in {TIMER, *(policy_by(p.name) for p in chosen)}:
            why = f"{current.get('by')} no longer applies to it"
        elif current and current.get("by") != TIMER:
            why = "the notebook is busy again"
        else:
            why = "the shutdown no longer falls in the warning window"
        announcement = announce(current, upcoming, now, why)
        if announcement.pending != current:
            step.patch["pendingStop"] = announcement.pending
        if announcement.event is not None:
            reason, message = announcement.event
            step.events.append(("Normal", reason, message))
            pending = announcement.pending
            if reason == "StopWarning" and pending is not None:
                notice = self._notice(notebook, "StopWarning", pending["reason"], parse_rfc3339(pending["at"]) or now)
                self._queue(step, notebook, chosen, str(pending["by"]), notice, observed)
        return step

    def stop_notice(
        self,
        notebook: Notebook,
        event: str,
        reason: str,
        now: datetime,
        observed: CloudInstance | None,
        by: str,
    ) -> None:
        """Culled, Stopped (a timer) or StopFailed: sent at once (the executor already recorded the action)."""
        step = Step()
        self._queue(step, notebook, self.chosen(notebook), by, self._notice(notebook, event, reason, now), observed)
        self.publish(notebook, step)

    def publish(self, notebook: Notebook, step: Step) -> None:
        for type_, reason, message in step.events:
            self.emit(notebook.ref, type_, reason, message)
        if self.notifier is not None:
            for spec, notice in step.notices:
                self.notifier.submit(spec, notice, notebook.ref)

    def _queue(
        self,
        step: Step,
        notebook: Notebook,
        chosen: Sequence[Policy],
        by: str,
        notice: Notice,
        observed: CloudInstance | None,
    ) -> None:
        spec = self._notify_spec(chosen, by)
        if spec is None:
            return
        owner = notebook.owner(spec.owner_label)
        provider, instance_id = (observed.provider, observed.id) if observed else (None, notebook.instance_id)
        step.notices.append((spec, replace(notice, owner=owner, provider=provider, instance_id=instance_id)))

    def _notify_spec(self, chosen: Sequence[Policy], by: str) -> NotifySpec | None:
        """The deciding policy's notify; for a timer stop, the first selecting policy's; else the account's."""
        deciding = next((p for p in chosen if policy_by(p.name) == by and p.notify is not None), None)
        if deciding is None and by == TIMER:
            deciding = next((p for p in chosen if p.notify is not None), None)
        if deciding is not None:
            return deciding.notify
        return self.account.notify if self.account is not None else None

    @staticmethod
    def _notice(notebook: Notebook, event: str, reason: str, at: datetime) -> Notice:
        zone = notebook.spec.shutdown.time_zone if notebook.spec.shutdown else None
        return Notice(event, notebook.namespace, notebook.name, None, reason, at, time_zone=zone)

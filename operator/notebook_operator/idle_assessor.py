"""Idleness inside a poll pass: for each running notebook some IdleCullerPolicy selects, keep the
cloud's own culler/timer in line with Native policies, fetch utilization for what the operator
enforces itself (bounded concurrency; the account's token bucket paces the calls) and hand back the
pure decision (reconcile/culling.py): the new status.idle, Events, and a stop for the executor."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from notebook_operator import metrics
from notebook_operator.providers import priority
from notebook_operator.providers.base import Provider
from notebook_operator.providers.errors import PermissionDenied, ProviderError
from notebook_operator.providers.priority import CallClass
from notebook_operator.providers.types import Capability, CloudInstance, Utilization
from notebook_operator.reconcile.culling import Stop, at_rest, close_savings, describe_levels, evaluate, sample_window
from notebook_operator.reconcile.notebook import Notebook
from notebook_operator.reconcile.pending import Snooze, Upcoming
from notebook_operator.reconcile.policies import (
    TIMER_TOLERANCE,
    NativePlan,
    Policy,
    native_plan,
    selecting,
)
from notebook_operator.reconcile.shutdown import next_shutdown
from notebook_operator.registry import Policies
from notebook_operator.times import parse_rfc3339, rfc3339

logger = logging.getLogger(__name__)
UTILIZATION_CONCURRENCY = 8
# Metrics have one point a minute: sampling an instance more often adds calls, not evidence. The idle
# clock bridges the time between samples (each fetch covers the span since the previous one).
SAMPLE_INTERVAL = timedelta(seconds=60)


@dataclass
class Assessment:
    idle: dict[str, Any] | None  # the new status.idle (None: no idle status at all)
    stop: Stop | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    upcoming: Upcoming | None = None  # the earliest cull with a warning lead
    policies: tuple[Policy, ...] = ()  # the policies that select this notebook


class IdleAssessor:
    def __init__(self, provider: Provider, policies: Policies, calls_per_cycle: int = 1000) -> None:
        self.provider = provider
        self.policies = policies
        # Metrics reads may use part of the account's request budget per cycle, never all of it: listing
        # and stops come first. What does not fit is read in a later cycle; an instance read in the last
        # minute waits its turn, so every one gets read.
        self.calls_per_cycle = max(2, calls_per_cycle)
        self._calls_left = self.calls_per_cycle
        self._sampled: dict[str, datetime] = {}
        self._fetching = asyncio.Semaphore(UTILIZATION_CONCURRENCY)
        # Utilization reads the cloud refused for lack of permission, by operation (the account's condition
        # says so); a read that succeeds again clears them.
        self.refused: dict[str, str] = {}

    def begin_cycle(self, running: int) -> None:
        self._calls_left = self.calls_per_cycle
        if len(self._sampled) > 2 * running + 100:  # forget instances gone from the account
            self._sampled.clear()

    def chosen(self, notebook: Notebook) -> list[Policy]:
        """The policies that select this notebook (none when it is exempt)."""
        return selecting(self.policies.of(notebook.namespace), notebook.labels, notebook.annotations)

    async def assess(
        self,
        notebook: Notebook,
        status: Mapping[str, Any],
        instance: CloudInstance,
        now: datetime,
        snooze: Snooze | None = None,
    ) -> Assessment | None:
        """None when nothing about idleness applies to this notebook or changed. `status` is the notebook's
        status as this pass has it so far."""
        namespace = notebook.namespace
        idle: dict[str, Any] = dict(status.get("idle") or {})
        chosen = self.chosen(notebook)
        snooze = snooze or Snooze()
        snoozed = {p.name: until for p in chosen if (until := snooze.until(p.max_snooze_hours)) and until > now}
        for policy in chosen:
            self.policies.evaluated[(namespace, policy.name)] = now
        if not chosen and not idle:
            return None
        if instance.phase != "Running":
            return Assessment(at_rest(idle) or None)
        idle = close_savings(idle, instance)
        result = Assessment(None, policies=tuple(chosen))
        plan = native_plan(
            chosen,
            self.provider.native,
            instance.is_gpu,
            instance.started_at,
            now,
            instance.shutdown_at,
            snoozed=bool(snoozed),
        )
        # The cloud's own rules: after the account's stops and actions, with the reads - not housekeeping's last turn,
        # since this notebook's own cull decision follows in the same pass.
        with priority.calls(CallClass.READ):
            idle = await self._sync_native(plan, idle, instance, result)
        idle["enforcement"] = plan.enforcement if chosen else None
        warned_native = [p.name for p in chosen if p.warn and plan.idle_rule is not None and p.enforcement == "Native"]
        idle["warning"] = (
            f"no warning before an idle stop by the cloud's own culler ({', '.join(warned_native)}: Native): "
            "the cloud decides when the notebook is idle and stops it without notice"
            if warned_native
            else None
        )
        operator_policies = list(plan.operator_policies)
        sample = None
        culls_idle = any(p.culls_idle for p in operator_policies)
        if culls_idle and Capability.UTILIZATION not in self.provider.capabilities:
            # No data, no stop: say so rather than pretend the rule is enforced.
            idle["enforcement"] = f"{plan.enforcement} (no utilization metrics from {instance.provider}: idle rules"
            idle["enforcement"] += " cannot apply)"
        elif culls_idle and self._due_for_sample(instance, now):
            sample = await self._sample(instance, sample_window(operator_policies, idle, now))
        planned = next_shutdown(notebook.spec.shutdown, instance.started_at, now)
        decision = evaluate(
            operator_policies,
            idle,
            instance,
            sample,
            now,
            planned.at if planned else None,
            snoozed,
            status.get("pendingStop"),
        )
        result.idle, result.stop, result.upcoming = decision.idle or None, decision.stop, decision.upcoming
        if decision.idle_started:
            message = f"idle under IdleCullerPolicy {decision.idle_started}{describe_levels(sample)}"
            result.events.append(("Normal", "IdleDetected", message))
        if decision.report:
            metrics.CULLS.labels(namespace, str(decision.idle.get("reported")), "dry_run").inc()
            result.events.append(("Normal", "WouldCull", f"would stop {notebook.name}: {decision.report}"))
            logger.info("dry run: would stop %s/%s: %s", namespace, notebook.name, decision.report)
        return result

    def _due_for_sample(self, instance: CloudInstance, now: datetime) -> bool:
        last = self._sampled.get(instance.id)
        cost = 2 if instance.is_gpu else 1  # CPU and GPU are separate metric reads
        if (last is not None and now - last < SAMPLE_INTERVAL) or self._calls_left < cost:
            return False
        self._calls_left -= cost
        self._sampled[instance.id] = now
        return True

    async def _sample(self, instance: CloudInstance, window: timedelta) -> Utilization | None:
        async with self._fetching:
            try:
                sample = await self.provider.get_utilization(instance, window)
            except PermissionDenied as e:  # no data, no stop; the account's condition names the missing permission
                metrics.UTILIZATION_SAMPLES.labels(self.provider.name, "failed").inc()
                self.refused[e.operation or "get_utilization"] = str(e)
                return None
            except ProviderError as e:  # no data, no stop: the next good sample bridges the gap
                metrics.UTILIZATION_SAMPLES.labels(self.provider.name, "failed").inc()
                logger.debug("utilization of %s: %s", instance.id, e)
                return None
        metrics.UTILIZATION_SAMPLES.labels(self.provider.name, "ok" if sample.samples else "empty").inc()
        self.refused.clear()
        return sample

    async def _sync_native(
        self, plan: NativePlan, idle: dict[str, Any], instance: CloudInstance, result: Assessment
    ) -> dict[str, Any]:
        """Make the cloud's culler and timer say what the Native policies say; restore them when changed
        out of band; remove only what the operator itself put there."""
        try:
            if plan.idle_rule is not None and instance.idle_rule != plan.idle_rule:
                await self.provider.put_idle_rule(instance.id, plan.idle_rule)
                idle["nativeRule"] = True
                result.events.append(("Normal", "NativeCullerSet", f"cloud idle culler set: {_rule(plan)}"))
            elif plan.idle_rule is None and idle.get("nativeRule"):
                if instance.idle_rule is not None:
                    await self.provider.delete_idle_rule(instance.id)
                    result.events.append(("Normal", "NativeCullerRemoved", "no Native policy applies any more"))
                idle.pop("nativeRule", None)
            owned_due = parse_rfc3339(idle.get("nativeShutdownAt"))
            if plan.shutdown_at is not None:
                current = instance.shutdown_at
                if current is None or abs(current - plan.shutdown_at) > TIMER_TOLERANCE:
                    await self.provider.put_shutdown_timer(instance.id, plan.shutdown_at)
                    result.events.append(
                        ("Normal", "NativeTimerSet", f"cloud shutdown timer set for {rfc3339(plan.shutdown_at)}")
                    )
                idle["nativeShutdownAt"] = rfc3339(plan.shutdown_at)
            elif owned_due is not None:
                if instance.shutdown_at is not None:
                    await self.provider.delete_shutdown_timer(instance.id)
                idle.pop("nativeShutdownAt", None)
        except ProviderError as e:
            # Reported once per distinct failure, not on every cycle it persists.
            if idle.get("nativeError") != str(e)[:256]:
                result.events.append(("Warning", "NativeSyncFailed", str(e)))
            idle["nativeError"] = str(e)[:256]
            return idle
        idle.pop("nativeError", None)
        return idle


def _rule(plan: NativePlan) -> str:
    rule = plan.idle_rule
    assert rule is not None
    parts = [f"{rule.max_idle_minutes} min idle"]
    parts += [f"{m} < {v}%" for m, v in (("cpu", rule.cpu_percent), ("gpu", rule.gpu_percent)) if v is not None]
    return ", ".join(parts)

"""IdleCullerPolicy: keep the policy registry the poll loops cull by, and the policy's status.

The culling itself runs inside each ProviderConfig's poll cycle (culler.py), where the listing
already says which instances run; this module only tells it which policies exist.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
from pydantic import ValidationError

from notebook_operator import metrics
from notebook_operator.api.idlecullerpolicy import IdleCullerPolicySpec
from notebook_operator.api.meta import GROUP, VERSION
from notebook_operator.reconcile.conditions import kstatus, same_conditions
from notebook_operator.reconcile.policies import Policy
from notebook_operator.reconcile.policy_status import Selected, summarize
from notebook_operator.state import operator_state
from notebook_operator.times import age, rfc3339

logger = logging.getLogger(__name__)
RESOURCE = (GROUP, VERSION, "idlecullerpolicies")
STATUS_INTERVAL_S = 10.0
EVALUATION_TIME_REFRESH = timedelta(minutes=5)  # lastEvaluationTime alone is not worth a write per tick


@kopf.on.event(*RESOURCE)
async def track_policy(
    event: kopf.RawEvent, namespace: str | None, name: str, spec: kopf.Spec, memo: object, **_: Any
) -> None:
    assert namespace is not None
    policies = operator_state(memo).policies
    if event.get("type") == "DELETED":
        policies.remove(namespace, name)
        for gauge in (metrics.IDLE_INSTANCES, metrics.HOURS_SAVED):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name)
        for labels in [s.labels for m in metrics.SAVINGS.collect() for s in m.samples]:
            if labels.get("namespace") == namespace and labels.get("policy") == name:
                metrics.SAVINGS.remove(namespace, name, labels["currency"])
        return
    try:
        policy = _policy(name, spec)
    except kopf.PermanentError as e:
        logger.error("IdleCullerPolicy %s/%s ignored: %s", namespace, name, e)
        policies.remove(namespace, name)
        return
    if policies.by_namespace.get(namespace, {}).get(name) != policy:
        logger.info("IdleCullerPolicy %s/%s: %s", namespace, name, _describe(policy))
    policies.put(namespace, policy)


def _policy(name: str, spec: kopf.Spec) -> Policy:
    try:
        return Policy.from_spec(name, IdleCullerPolicySpec.model_validate(dict(spec)))
    except ValidationError as e:  # the CRD schema admits only valid specs: a CRD older than this operator?
        raise kopf.PermanentError(f"spec does not parse: {e}") from e


def _describe(policy: Policy) -> str:
    parts = [f"{m} < {v}%" for m, v in (("cpu", policy.cpu_percent), ("gpu", policy.gpu_percent)) if v is not None]
    if policy.idle_minutes:
        parts.append(f"for {policy.idle_minutes} min")
    if policy.max_running_hours:
        parts.append(f"at most {policy.max_running_hours:g} h running")
    return f"{', '.join(parts)}; {policy.action}, {policy.enforcement}" + (", dry run" if policy.dry_run else "")


@kopf.timer(*RESOURCE, interval=STATUS_INTERVAL_S, initial_delay=2)
async def policy_status(
    namespace: str | None, name: str, meta: kopf.Meta, status: kopf.Status, spec: kopf.Spec, memo: object, **_: Any
) -> None:
    """Counts, hours saved and conditions; written only when they change."""
    assert namespace is not None
    state = operator_state(memo)
    now = datetime.now(UTC)
    policy = _policy(name, spec)
    selected = [
        Selected(item.labels, item.annotations, item.status) for item in state.notebooks.in_namespace(namespace)
    ]
    summary = summarize(policy, selected, now)
    metrics.IDLE_INSTANCES.labels(namespace, name).set(summary["idle"])
    metrics.HOURS_SAVED.labels(namespace, name).set(summary["estimatedHoursSaved"])
    for currency, amount in (summary["estimatedSavings"] or {}).items():
        metrics.SAVINGS.labels(namespace, name, currency).set(amount)
    current = dict(status)
    update: dict[str, Any] = {k: v for k, v in summary.items() if current.get(k) != v}
    evaluated = state.policies.evaluated.get((namespace, name))
    last = current.get("lastEvaluationTime")
    since = age(last, now)
    stale = since is None or since >= EVALUATION_TIME_REFRESH.total_seconds()
    if evaluated is not None and (update or stale):
        update["lastEvaluationTime"] = rfc3339(evaluated)
    message = (
        f"{summary['matched']} matched, {summary['running']} running, {summary['idle']} idle, "
        f"{summary['stopped']} stopped by this policy" + (" (dry run)" if policy.dry_run else "")
    )
    ready = evaluated is not None or summary["matched"] == 0
    conditions = kstatus(
        current.get("conditions"),
        ready=ready,
        reconciling=not ready,
        stalled=False,
        reason="Evaluated" if evaluated else ("NoMatches" if ready else "Waiting"),
        message=message if ready else "waiting for the first poll cycle of the matched instances",
        now=now,
        generation=meta.get("generation"),
    )
    if not same_conditions(current.get("conditions"), conditions):
        update["conditions"] = conditions
    if update or current.get("observedGeneration") != meta.get("generation"):
        update["observedGeneration"] = meta.get("generation")
        await state.kube.patch_status("IdleCullerPolicy", namespace, name, update)

"""ProviderConfig and ClusterProviderConfig: one daemon per account - connect (account_connection.py), then a
poll pass every pollIntervalSeconds (account_reconciler.py), and the account's status and Events. A
ClusterProviderConfig serves the NotebookInstances of the namespaces its namespaceSelector admits, all in one
listing; the others are told ProviderConfigNotAllowed and nothing is sent to the cloud for them."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
from pydantic import ValidationError

from notebook_operator import metrics
from notebook_operator.account_connection import ACCOUNT_ERRORS, account_problem, connect_account
from notebook_operator.account_reconciler import AccountReconciler
from notebook_operator.announcer import Announcer
from notebook_operator.api.meta import GROUP, VERSION
from notebook_operator.api.providerconfig import AccountSpec, ClusterProviderConfigSpec, ProviderConfigSpec
from notebook_operator.handlers.events import emit
from notebook_operator.kube import Kube
from notebook_operator.reconcile.conditions import kstatus, same_conditions
from notebook_operator.reconcile.notebook import Notebook
from notebook_operator.registry import Notebooks
from notebook_operator.state import operator_state
from notebook_operator.times import age, rfc3339

logger = logging.getLogger(__name__)
NOT_ALLOWED = "ProviderConfigNotAllowed"
LIST_TIME_REFRESH = timedelta(minutes=5)  # lastSuccessfulListTime alone is not worth a write every cycle


async def _settle(
    registry: Notebooks,
    namespace: str | None,
    kube: Kube,
    stopped: kopf.DaemonStopped,
    quiet: float = 0.5,
    cap: float = 60.0,
) -> None:
    """At startup, let kopf's initial listing fill the registry before the first cycle: until it holds as
    many NotebookInstances of the namespace as the API server counts and has been quiet for `quiet` s (at
    most `cap` s). At 20,000 objects kopf's listing takes seconds before its first event, and a cycle
    started early would mirror a fraction and leave the rest for later cycles. What arrives after the
    first cycle started is caught up by a second cycle right away."""
    deadline = time.monotonic() + cap
    expected = 0  # a ClusterProviderConfig's notebooks are anywhere: the quiet rule only
    try:
        if namespace is not None:
            expected = await kube.count("NotebookInstance", namespace)
    except Exception as e:  # only an optimisation: fall back to the quiet rule
        logger.debug("could not count NotebookInstances in %s: %s", namespace, e)
    while not stopped and time.monotonic() < deadline:
        seen = registry.count_in(namespace) if namespace is not None else expected
        if seen >= expected and time.monotonic() - registry.changed_at >= quiet:
            return
        await stopped.wait(quiet / 4)


@kopf.daemon(GROUP, VERSION, "providerconfigs", cancellation_timeout=10)
async def poll_account(
    stopped: kopf.DaemonStopped,
    namespace: str | None,
    name: str,
    uid: str,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: object,
    **_: Any,
) -> None:
    assert namespace is not None  # ProviderConfig is namespaced
    await _poll(stopped, namespace, name, uid, spec, meta, status, memo)


@kopf.daemon(GROUP, VERSION, "clusterproviderconfigs", cancellation_timeout=10)
async def poll_cluster_account(
    stopped: kopf.DaemonStopped,
    name: str,
    uid: str,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: object,
    **_: Any,
) -> None:
    await _poll(stopped, None, name, uid, spec, meta, status, memo)


@kopf.on.event("", "v1", "namespaces")
async def track_namespace(event: kopf.RawEvent, name: str, labels: kopf.Labels, memo: object, **_: Any) -> None:
    """Namespace labels, for the ClusterProviderConfigs' namespaceSelectors."""
    namespaces = operator_state(memo).namespaces
    if event.get("type") == "DELETED":
        namespaces.remove(name)
    else:
        namespaces.put(name, dict(labels))


async def _refuse(kube: Kube, notebooks: list[Notebook], account: str, now: datetime) -> None:
    """Say once on each notebook of a namespace the ClusterProviderConfig does not admit why nothing happens."""
    for notebook in notebooks:
        conditions_now: list[dict[str, Any]] = notebook.status.get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("reason") == NOT_ALLOWED for c in conditions_now):
            continue
        message = (
            f"ClusterProviderConfig {account} does not admit namespace {notebook.namespace} (its namespaceSelector)"
        )
        conditions = kstatus(
            notebook.status.get("conditions"),
            ready=False,
            reconciling=False,
            stalled=True,
            reason=NOT_ALLOWED,
            message=message,
            now=now,
            generation=notebook.generation,
        )
        await kube.patch_status("NotebookInstance", notebook.namespace, notebook.name, {"conditions": conditions})
        emit(notebook.ref, "Warning", NOT_ALLOWED, message)


def _until_next_cycle(interval: float, elapsed: float, next_due: datetime | None, now: datetime) -> float:
    """Seconds to wait: the rest of the interval, or less when a shutdown falls due before it ends - but never
    less than half an interval after this cycle began, so timers cost at most one more listing per interval."""
    wait = interval - elapsed
    if next_due is not None:
        wait = min(wait, max(interval / 2 - elapsed, (next_due - now).total_seconds()))
    return max(0.1, wait)


async def _poll(
    stopped: kopf.DaemonStopped,
    namespace: str | None,
    name: str,
    uid: str,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: object,
) -> None:
    """One account's daemon; `namespace` None for a ClusterProviderConfig."""
    operator = operator_state(memo)
    kube = operator.kube
    key = (namespace or "", name)
    state = operator.accounts.get(*key)
    kind = "ProviderConfig" if namespace is not None else "ClusterProviderConfig"
    model = ProviderConfigSpec if namespace is not None else ClusterProviderConfigSpec
    metadata = {"namespace": namespace, "name": name, "uid": uid} if namespace else {"name": name, "uid": uid}
    ref = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": metadata}
    current: dict[str, Any] = dict(status)
    readiness = metrics.Readiness(namespace or "", name)
    poller: AccountReconciler | None = None
    errors: dict[str, int] = dict(current.get("apiErrorCounts") or {})
    refused_before: set[str] = set()
    refusals = ""
    first = True
    while not stopped:
        taken_at = time.monotonic()
        catch_up = False  # only a first cycle that succeeded may skip the wait; errors always wait
        try:
            snapshot: AccountSpec = model.model_validate(dict(spec))
        except ValidationError as e:  # the CRD schema admits only valid specs: a CRD older than this operator?
            raise kopf.PermanentError(f"spec does not parse: {e}") from e
        generation = meta.get("generation")
        interval = float(snapshot.poll_interval_seconds)
        now = datetime.now(UTC)
        update: dict[str, Any] = {}
        next_due: datetime | None = None
        state.notify, state.pricing = snapshot.notify, snapshot.pricing
        state.default_tags, state.cluster_id = dict(snapshot.default_tags or {}), operator.cluster_id
        if isinstance(snapshot, ClusterProviderConfigSpec):
            state.namespace_selector = snapshot.namespace_selector
        try:
            await connect_account(state, namespace, snapshot, kube, operator.tenancy)
            assert state.provider is not None
            if poller is None or poller.provider is not state.provider:
                # Half the account's requests of one interval may go to metrics reads for idle culling.
                budget = int(snapshot.rate_limit * snapshot.poll_interval_seconds / 2)
                announcer = Announcer(emit, operator.policies, state, operator.notifier)
                account = f"{namespace}/{name}" if namespace else name
                poller = AccountReconciler(
                    state.provider,
                    kube,
                    emit,
                    account,
                    operator.policies,
                    budget,
                    announcer,
                    state,
                    batch_size=snapshot.batch_size,
                    snapshots=operator.snapshots,
                )
            started = asyncio.get_running_loop().time()
            if first:
                await _settle(operator.notebooks, namespace, kube, stopped)
            taken_at = time.monotonic()
            tracked = operator.notebooks.of(*key)
            if isinstance(snapshot, ClusterProviderConfigSpec):
                selector = snapshot.namespace_selector
                refused = [n for n in tracked if not operator.namespaces.admits(selector, n.namespace)]
                tracked = [n for n in tracked if operator.namespaces.admits(selector, n.namespace)]
                await _refuse(kube, refused, name, now)
            result = await poller.cycle(tracked, now, snapshot.rate_limit * interval, interval)
            next_due = result.next_due
            catch_up = first and operator.notebooks.changed_at > taken_at
            first = False
            metrics.POLL_SECONDS.labels(snapshot.provider).observe(asyncio.get_running_loop().time() - started)
            ready, stalled, reason = True, False, "Polling"
            message = f"{result.listed} instances listed, {result.writes} statuses updated"
            if result.queued:
                message += f", {result.queued} due actions queued for the next pass"
            refusals = ""
            if result.refused:  # optional reads the credentials may not make: say which
                refusals = "refused (PermissionDenied): " + "; ".join(sorted(result.refused.values()))
                message += "; " + refusals
                for operation in sorted(set(result.refused) - refused_before):
                    emit(ref, "Warning", "PermissionDenied", result.refused[operation])
            refused_before = set(result.refused)
            if result.housekeeping:  # no count in the condition: it would cost a status write every cycle
                backlog = (
                    "tag writes wait for the calls stops and actions leave "
                    "(housekeeping: the cloud takes one instance's tags per call)"
                )
                message += f", {result.housekeeping} {backlog}"
                refusals = f"{refusals}; {backlog}" if refusals else backlog
            update["instanceCount"] = result.listed
            last = current.get("lastSuccessfulListTime")
            since = age(last, now)
            if since is None or since >= LIST_TIME_REFRESH.total_seconds():
                update["lastSuccessfulListTime"] = rfc3339(now)
        except ACCOUNT_ERRORS as e:
            problem = account_problem(e)
            ready, stalled, reason, message = False, problem.stalled, problem.reason, str(e)
        if reason != "Polling":
            errors[reason] = errors.get(reason, 0) + 1
            update["apiErrorCounts"] = dict(errors)
        if (state.ready, state.reason) != (ready, reason):
            emit(ref, "Normal" if ready else "Warning", reason, message)
            logger.info("%s %s%s: %s: %s", kind, f"{namespace}/" if namespace else "", name, reason, message)
        state.ready, state.reason, state.message = ready, reason, message
        readiness.set(snapshot.provider, reason, ready)
        # A Ready account's counts change every cycle: only refusals are worth a condition write.
        shown = message if not ready else refusals
        conditions = kstatus(
            current.get("conditions"),
            ready=ready,
            reconciling=not ready and not stalled,
            stalled=stalled,
            reason=reason,
            message=shown,
            now=now,
            generation=generation,
        )
        if not same_conditions(current.get("conditions"), conditions):
            update["conditions"] = conditions
        update = {k: v for k, v in update.items() if current.get(k) != v}
        if update:
            update["observedGeneration"] = generation
            await kube.patch_status(kind, namespace or "", name, update)
            current.update(update)
        if catch_up:
            continue  # objects kopf listed while the first cycle ran: mirror them now, not an interval later
        if ready:  # a fixed rate: a cycle starts every interval (at once after one longer than that)
            await stopped.wait(_until_next_cycle(interval, time.monotonic() - taken_at, next_due, datetime.now(UTC)))
        else:
            await stopped.wait(min(30.0, interval))
    metrics.ACCOUNT_GAUGES.drop(f"{namespace}/{name}" if namespace else name)
    readiness.clear()
    await operator.accounts.drop(*key)

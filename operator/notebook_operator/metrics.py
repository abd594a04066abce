"""Prometheus metrics of the operator, served on --metrics-port."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram, start_http_server

INSTANCES = Gauge(
    "notebook_operator_cloud_instances",
    "Cloud instances by provider, account and phase",
    ["provider", "account", "phase"],
)
ACTIONS = Counter(
    "notebook_operator_actions_total", "Actions taken on cloud instances", ["namespace", "action", "result"]
)
API_CALLS = Counter(
    "notebook_operator_cloud_api_calls_total", "Cloud API calls by outcome", ["provider", "operation", "outcome"]
)
API_LATENCY = Histogram(
    "notebook_operator_cloud_api_seconds",
    "Cloud API call latency",
    ["provider", "operation"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
POLL_SECONDS = Histogram("notebook_operator_poll_seconds", "Duration of one poll cycle", ["provider"])
STATUS_WRITES = Counter("notebook_operator_status_writes_total", "Status patches sent by the poller", ["provider"])

CULLS = Counter(
    "notebook_operator_culls_total", "Idle culling decisions by policy and result", ["namespace", "policy", "result"]
)
IDLE_INSTANCES = Gauge(
    "notebook_operator_idle_instances", "Running instances idle under a policy", ["namespace", "policy"]
)
HOURS_SAVED = Gauge(
    "notebook_operator_hours_saved", "Estimated instance-hours saved by a policy's stops", ["namespace", "policy"]
)
ACTIVE = Gauge(
    "notebook_operator_active",
    "1 on the replica that acts, 0 on a standby (kopf peering: one active replica per peering object)",
)
UTILIZATION_SAMPLES = Counter(
    "notebook_operator_utilization_samples_total", "Utilization fetches by result", ["provider", "result"]
)

NOTIFICATIONS = Counter(
    "notebook_operator_notifications_total",
    "Chat notifications by format, event and result",
    ["format", "event", "result"],
)
NOTIFICATIONS_DROPPED = Counter(
    "notebook_operator_notifications_dropped_total",
    "Notices dropped because their namespace's queue was full (its webhook down or slow for long)",
    ["namespace"],
)
COST_PER_HOUR = Gauge(
    "notebook_operator_cost_per_hour",
    "Price per hour of the running notebooks (the sum of their prices)",
    ["namespace", "provider", "currency"],
)
SAVINGS = Gauge(
    "notebook_operator_savings_total",
    "Estimated money a policy's stops saved (hours saved x price per hour), by currency",
    ["namespace", "policy", "currency"],
)
NOTEBOOKS = Gauge(
    "notebook_operator_notebooks",
    "NotebookInstances by namespace, provider and phase",
    ["namespace", "provider", "phase"],
)
OVER_CAP = Gauge(
    "notebook_operator_notebooks_over_cap",
    "Running notebooks past a policy's maxRunningHours (a stop that should have happened)",
    ["namespace"],
)
SNAPSHOTS = Gauge("notebook_operator_snapshots", "NotebookSnapshots by namespace and phase", ["namespace", "phase"])
PENDING_STOPS = Gauge("notebook_operator_pending_stops", "Notebooks with an announced stop", ["namespace"])
RECONCILE_ERRORS = Counter(
    "notebook_operator_reconcile_errors_total",
    "Unexpected errors in one object's pass (the object backs off alone; the others go on)",
    ["kind", "namespace"],
)
PASSES_ABANDONED = Counter(
    "notebook_operator_passes_abandoned_total",
    "Notebook passes cancelled after two poll intervals (their notebooks go back to the next cycle)",
    ["provider"],
)
ACTIONS_QUEUED = Gauge(
    "notebook_operator_actions_queued",
    "Due actions waiting for a later poll pass: the last pass spent its calls for actions",
    ["namespace", "provider"],
)
ACCOUNT_READY = Gauge(
    "notebook_operator_providerconfig_ready",
    '1 when the (Cluster)ProviderConfig\'s account is connected and polled, else 0 (namespace "": cluster-scoped)',
    ["namespace", "providerconfig", "provider", "reason"],
)
RECONCILE_SECONDS = Histogram(
    "notebook_operator_reconcile_seconds",
    "Duration of one NotebookInstance reconcile pass (poll or spec)",
    ["provider", "kind"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def observe_api_call(provider: str, operation: str, outcome: str, seconds: float) -> None:
    API_CALLS.labels(provider, operation, outcome).inc()
    API_LATENCY.labels(provider, operation).observe(seconds)


def serve(port: int) -> None:
    if port:
        start_http_server(port)


Share = dict[tuple[str, str], float]


class Readiness:
    """notebook_operator_providerconfig_ready of one ProviderConfig: one series, under its current reason."""

    def __init__(self, namespace: str, name: str) -> None:
        self.namespace, self.name = namespace, name
        self._labels: tuple[str, str] | None = None

    def set(self, provider: str, reason: str, ready: bool) -> None:
        if self._labels not in (None, (provider, reason)):
            self.clear()
        self._labels = (provider, reason)
        ACCOUNT_READY.labels(self.namespace, self.name, provider, reason).set(1 if ready else 0)

    def clear(self) -> None:
        if self._labels is not None:
            with contextlib.suppress(KeyError):
                ACCOUNT_READY.remove(self.namespace, self.name, *self._labels)
            self._labels = None


class AccountGauges:
    """Per-namespace gauges several accounts add to (two ProviderConfigs in one namespace): each account
    reports its share after its poll pass, and the gauges show the sums; a share that is gone drops to 0."""

    def __init__(self) -> None:
        self._shares: dict[str, tuple[str, Share, dict[str, int], Share, dict[str, int], dict[str, int]]] = {}
        self._seen: set[tuple[str, ...]] = set()

    def put(
        self,
        account: str,
        provider: str,
        phases: Mapping[tuple[str, str], float],
        over_cap: Mapping[str, int],
        cost: Mapping[tuple[str, str], float],
        pending: Mapping[str, int],
        queued: Mapping[str, int] | None = None,
    ) -> None:
        self._shares[account] = (provider, dict(phases), dict(over_cap), dict(cost), dict(pending), dict(queued or {}))
        self._publish()

    def drop(self, account: str) -> None:
        self._shares.pop(account, None)
        self._publish()

    def _publish(self) -> None:
        totals: dict[tuple[str, ...], float] = {}
        key: tuple[str, ...]
        for provider, phases, over_cap, cost, pending, queued in self._shares.values():
            for (namespace, phase), count in phases.items():
                key = ("notebooks", namespace, provider, phase)
                totals[key] = totals.get(key, 0) + count
            for namespace, count in over_cap.items():
                totals[("over_cap", namespace)] = totals.get(("over_cap", namespace), 0) + count
            for namespace, count in pending.items():
                totals[("pending", namespace)] = totals.get(("pending", namespace), 0) + count
            for namespace, count in queued.items():
                key = ("queued", namespace, provider)
                totals[key] = totals.get(key, 0) + count
            for (namespace, currency), amount in cost.items():
                key = ("cost", namespace, provider, currency)
                totals[key] = totals.get(key, 0) + amount
        for key in self._seen | set(totals):
            value = totals.get(key, 0)
            if key[0] == "notebooks":
                NOTEBOOKS.labels(*key[1:]).set(value)
            elif key[0] == "over_cap":
                OVER_CAP.labels(*key[1:]).set(value)
            elif key[0] == "pending":
                PENDING_STOPS.labels(*key[1:]).set(value)
            elif key[0] == "queued":
                ACTIONS_QUEUED.labels(*key[1:]).set(value)
            else:
                COST_PER_HOUR.labels(*key[1:]).set(round(value, 4))
        self._seen |= set(totals)


ACCOUNT_GAUGES = AccountGauges()

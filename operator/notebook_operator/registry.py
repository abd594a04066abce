"""What the operator knows between events, in memory: the connected cloud accounts, the NotebookInstances
each account's poll pass joins its listing with, and the IdleCullerPolicies. Filled from kopf's watch
events, shared through the operator state (kopf's memo)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from notebook_operator.api.meta import LabelSelector
from notebook_operator.api.notify import NotifySpec
from notebook_operator.api.providerconfig import Pricing
from notebook_operator.cloud_events import CloudEvents
from notebook_operator.providers.base import Provider
from notebook_operator.providers.types import CloudInstance
from notebook_operator.reconcile.notebook import Notebook
from notebook_operator.reconcile.policies import Policy, selects
from notebook_operator.start_times import StartTimes


class AccountNotReady(LookupError):
    """The ProviderConfig is not connected (yet): a spec pass waits for it."""


@dataclass
class AccountState:
    provider: Provider | None = None
    reason: str = "Connecting"
    message: str = "not polled yet"
    fingerprint: str = ""  # spec + Secret resourceVersion the provider was built from
    notify: NotifySpec | None = None  # the default chat webhook of the account's notebooks
    pricing: Pricing | None = None  # prices per hour that override or fill in the cloud's
    namespace_selector: LabelSelector | None = None  # a ClusterProviderConfig's: who may use it
    default_tags: dict[str, str] = field(default_factory=dict)  # spec.defaultTags: on every instance it manages
    cluster_id: str = ""  # this cluster, as ownership tags name it ("": no ownership tags, no ownership check)
    # What its notebooks' passes (poll and spec alike) read of the cloud once and remember.
    start_times: StartTimes = field(default_factory=StartTimes)
    cloud_events: CloudEvents = field(default_factory=CloudEvents)
    # Set while Ready (`ready`): spec passes that arrive before the first poll pass wait on it rather than retry.
    became_ready: asyncio.Event = field(default_factory=asyncio.Event)
    # The last complete listing, by instance id, and until when (monotonic) a spec pass may observe from it
    # instead of a GET: N notebooks applied at once cost no N GETs at the rate limit.
    listing: dict[str, CloudInstance] = field(default_factory=dict)
    listing_started: datetime | None = None  # wall clock, when the listing's first page was asked for
    listing_fresh_until: float = 0.0

    @property
    def ready(self) -> bool:
        return self.became_ready.is_set()

    @ready.setter
    def ready(self, value: bool) -> None:
        self.became_ready.set() if value else self.became_ready.clear()

    def listed(self, instance_id: str, acted_at: datetime | None) -> CloudInstance | None:
        """The instance as the last listing saw it, while that listing is younger than one poll interval and
        began after the notebook's last action (which it would not show yet)."""
        if time.monotonic() >= self.listing_fresh_until or self.listing_started is None:
            return None
        if acted_at is not None and acted_at + timedelta(seconds=1) > self.listing_started:  # status has seconds
            return None
        return self.listing.get(instance_id)


@dataclass
class Accounts:
    by_key: dict[tuple[str, str], AccountState] = field(default_factory=dict)

    def get(self, namespace: str, name: str) -> AccountState:
        return self.by_key.setdefault((namespace, name), AccountState())

    async def wait_ready(self, namespace: str, name: str) -> None:
        """Until the account is Ready; at once when it is, or when it is unknown."""
        state = self.by_key.get((namespace, name))
        if state is not None and not state.ready:
            await state.became_ready.wait()

    def ready_provider(self, namespace: str, name: str) -> Provider:
        """The connected provider, or AccountNotReady saying why not."""
        state = self.by_key.get((namespace, name))
        if state is None or state.provider is None or not state.ready:
            reason = f"{state.reason}: {state.message}" if state else "not found"
            which = f"ProviderConfig {namespace}/{name}" if namespace else f"ClusterProviderConfig {name}"
            raise AccountNotReady(f"{which} is not ready ({reason})")
        return state.provider

    async def drop(self, namespace: str, name: str) -> None:
        state = self.by_key.pop((namespace, name), None)
        if state and state.provider:
            await state.provider.aclose()

    async def close(self) -> None:
        for namespace, name in list(self.by_key):
            await self.drop(namespace, name)


@dataclass
class Notebooks:
    """NotebookInstances by (namespace, ProviderConfig), kept from kopf's watch events.

    A plain registry rather than a kopf index: kopf's index readiness toggles cost O(N^2) at start
    (every new object notifies every waiting worker), which took minutes at 5,000 objects.
    """

    by_account: dict[tuple[str, str], dict[str, Notebook]] = field(default_factory=dict)
    account_of: dict[str, tuple[str, str]] = field(default_factory=dict)
    per_namespace: Counter[str] = field(default_factory=Counter)
    changed_at: float = field(default_factory=time.monotonic)

    def put(self, notebook: Notebook) -> None:
        account = notebook.account
        previous = self.account_of.get(notebook.uid)
        if previous is not None and previous != account:
            self.by_account.get(previous, {}).pop(notebook.uid, None)
        if previous is None:
            self.changed_at = time.monotonic()
            self.per_namespace[notebook.namespace] += 1
        self.by_account.setdefault(account, {})[notebook.uid] = notebook
        self.account_of[notebook.uid] = account

    def remove(self, uid: str) -> None:
        account = self.account_of.pop(uid, None)
        if account is not None:
            gone = self.by_account.get(account, {}).pop(uid, None)
            if gone is not None:
                self.per_namespace[gone.namespace] -= 1
            self.changed_at = time.monotonic()

    def count_in(self, namespace: str) -> int:
        """The namespace's NotebookInstances, whichever account they use."""
        return self.per_namespace[namespace]

    def of(self, namespace: str, name: str) -> list[Notebook]:
        """A ProviderConfig's ("", name: a ClusterProviderConfig's, from any namespace)."""
        return list(self.by_account.get((namespace, name), {}).values())

    def in_namespace(self, namespace: str) -> list[Notebook]:
        return [
            item
            for (ns, _), items in list(self.by_account.items())
            if ns in (namespace, "")
            for item in list(items.values())
            if item.namespace == namespace
        ]


@dataclass
class Namespaces:
    """Namespace labels, kept from kopf's watch events: what a ClusterProviderConfig's namespaceSelector reads."""

    labels: dict[str, dict[str, str]] = field(default_factory=dict)

    def put(self, name: str, labels: dict[str, str]) -> None:
        self.labels[name] = labels

    def remove(self, name: str) -> None:
        self.labels.pop(name, None)

    def admits(self, selector: LabelSelector | None, namespace: str) -> bool:
        """absent selector: no namespace; {}: every namespace; an unknown namespace: no."""
        if selector is None or namespace not in self.labels:
            return False
        return selects(selector.to_wire(), self.labels[namespace])


@dataclass
class Policies:
    """IdleCullerPolicies by namespace, kept from kopf's watch events; when each was last evaluated."""

    by_namespace: dict[str, dict[str, Policy]] = field(default_factory=dict)
    evaluated: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def put(self, namespace: str, policy: Policy) -> None:
        self.by_namespace.setdefault(namespace, {})[policy.name] = policy

    def remove(self, namespace: str, name: str) -> None:
        self.by_namespace.get(namespace, {}).pop(name, None)
        self.evaluated.pop((namespace, name), None)

    def of(self, namespace: str) -> list[Policy]:
        return list(self.by_namespace.get(namespace, {}).values())


@dataclass
class Snapshots:
    """NotebookSnapshots' specs and statuses by (namespace, name), kept from kopf's watch events: what a notebook
    template's imageFrom.snapshotRef reads."""

    by_key: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def put(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        self.by_key[(namespace, name)] = body

    def remove(self, namespace: str, name: str) -> None:
        self.by_key.pop((namespace, name), None)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.by_key.get((namespace, name))

    def by_phase(self, namespace: str) -> dict[str, int]:
        """How many of the namespace's are in each phase (every phase named, 0 included)."""
        counts = dict.fromkeys(("Pending", "Saving", "Ready", "Failed"), 0)
        for (ns, _), body in self.by_key.items():
            phase = (body.get("status") or {}).get("phase") or "Pending"
            if ns == namespace and phase in counts:
                counts[phase] += 1
        return counts

"""The cloud accounts the operator is connected to: one Provider per ProviderConfig, shared by every
handler through kopf's memo (see kopf docs/memos.rst)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import kopf

from notebook_operator.polling import Tracked
from notebook_operator.providers.base import Provider


@dataclass
class AccountState:
    provider: Provider | None = None
    ready: bool = False
    reason: str = "Connecting"
    message: str = "not polled yet"
    fingerprint: str = ""  # spec + Secret resourceVersion the provider was built from


@dataclass
class Accounts:
    by_key: dict[tuple[str, str], AccountState] = field(default_factory=dict)

    def get(self, namespace: str, name: str) -> AccountState:
        return self.by_key.setdefault((namespace, name), AccountState())

    def ready_provider(self, namespace: str, name: str) -> Provider:
        """The connected provider, or a TemporaryError that says why not (the handler retries)."""
        state = self.by_key.get((namespace, name))
        if state is None or state.provider is None or not state.ready:
            reason = f"{state.reason}: {state.message}" if state else "not found"
            raise kopf.TemporaryError(f"ProviderConfig {namespace}/{name} is not ready ({reason})", delay=3)
        return state.provider

    async def drop(self, namespace: str, name: str) -> None:
        state = self.by_key.pop((namespace, name), None)
        if state and state.provider:
            await state.provider.aclose()


def accounts(memo: kopf.Memo) -> Accounts:
    registry: Accounts = memo["accounts"]
    return registry


@dataclass
class Notebooks:
    """NotebookInstances by (namespace, ProviderConfig), kept from kopf's watch events.

    A plain registry rather than a kopf index: kopf's index readiness toggles cost O(N^2) at start
    (every new object notifies every waiting worker), which took minutes at 5,000 objects.
    """

    by_account: dict[tuple[str, str], dict[str, Tracked]] = field(default_factory=dict)
    account_of: dict[str, tuple[str, str]] = field(default_factory=dict)
    changed_at: float = field(default_factory=time.monotonic)

    def put(self, account: tuple[str, str], item: Tracked) -> None:
        previous = self.account_of.get(item.uid)
        if previous is not None and previous != account:
            self.by_account.get(previous, {}).pop(item.uid, None)
        if previous is None:
            self.changed_at = time.monotonic()
        self.by_account.setdefault(account, {})[item.uid] = item
        self.account_of[item.uid] = account

    def remove(self, uid: str) -> None:
        account = self.account_of.pop(uid, None)
        if account is not None:
            self.by_account.get(account, {}).pop(uid, None)
            self.changed_at = time.monotonic()

    def count_in(self, namespace: str) -> int:
        return sum(len(items) for (ns, _), items in self.by_account.items() if ns == namespace)

    def of(self, namespace: str, name: str) -> list[Tracked]:
        return list(self.by_account.get((namespace, name), {}).values())


def notebooks(memo: kopf.Memo) -> Notebooks:
    registry: Notebooks = memo["notebooks"]
    return registry

"""The cloud accounts the operator is connected to: one Provider per ProviderConfig, shared by every
handler through kopf's memo (see kopf docs/memos.rst)."""

from __future__ import annotations

from dataclasses import dataclass, field

import kopf

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

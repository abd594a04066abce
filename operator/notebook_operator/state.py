"""The operator's state, one typed object passed to kopf as its memo (kopf docs/memos.rst): the registries
the watch events fill, the API client, the peering role and what the process was started with.

kopf gives each resource object a shallow copy of it, so the registries and clients are shared; they are
set up before kopf starts watching (`open`, from the startup handler)."""

from __future__ import annotations

from dataclasses import dataclass, field

from notebook_operator import metrics
from notebook_operator.account_connection import Tenancy
from notebook_operator.executor import EventSink
from notebook_operator.kube import Kube
from notebook_operator.notify.sender import Notifier
from notebook_operator.peering import PeeringSetup, Role
from notebook_operator.providers.egress import AllowList
from notebook_operator.reconcile.notebook import Notebook
from notebook_operator.registry import Accounts, Namespaces, Notebooks, Policies, Snapshots


@dataclass
class OperatorState:
    peering: PeeringSetup = field(default_factory=PeeringSetup.standalone)
    metrics_port: int = 0  # 0: no metrics endpoint
    accounts: Accounts = field(default_factory=Accounts)
    notebooks: Notebooks = field(default_factory=Notebooks)
    policies: Policies = field(default_factory=Policies)
    namespaces: Namespaces = field(default_factory=Namespaces)
    snapshots: Snapshots = field(default_factory=Snapshots)
    tenancy: Tenancy = field(default_factory=Tenancy)
    allowed_webhooks: AllowList = field(default_factory=lambda: AllowList(()))
    cluster_id: str = ""  # what ownership tags call this cluster ("": no ownership tags)
    _kube: Kube | None = None
    _role: Role | None = None
    _notifier: Notifier | None = None

    @property
    def kube(self) -> Kube:
        assert self._kube is not None, "OperatorState.open() runs at startup"
        return self._kube

    @property
    def notifier(self) -> Notifier:
        assert self._notifier is not None, "OperatorState.open() runs at startup"
        return self._notifier

    @property
    def role(self) -> Role:
        assert self._role is not None, "OperatorState.open() runs at startup"
        return self._role

    def admitted(self, notebook: Notebook) -> bool:
        """Whether the notebook may use its account: its namespace's own ProviderConfig always, a
        ClusterProviderConfig only where its namespaceSelector admits the notebook's namespace."""
        namespace, name = notebook.account
        selector = self.accounts.get(namespace, name).namespace_selector
        return namespace != "" or self.namespaces.admits(selector, notebook.namespace)

    async def open(self, emit: EventSink) -> None:
        self._kube = await Kube.connect()
        self._notifier = Notifier(self._kube, emit, allowed=self.allowed_webhooks)
        self._notifier.start()
        self._role = Role(self.peering)
        self._role.start(self._kube)
        metrics.serve(self.metrics_port)

    async def close(self) -> None:
        if self._role is not None:
            await self._role.stop()
        await self.accounts.close()
        if self._notifier is not None:
            await self._notifier.close()
        if self._kube is not None:
            await self._kube.close()


def operator_state(memo: object) -> OperatorState:
    """kopf's `memo` argument, typed."""
    assert isinstance(memo, OperatorState), f"kopf memo is {type(memo).__name__}, not OperatorState"
    return memo

"""NotebookSnapshot: thin glue. A pass runs when one is created (or the operator resumes) and again while the
cloud saves; the finalizer deletes the cloud snapshot (deletionPolicy Delete). The pass is snapshot_reconciler.py."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from pydantic import ValidationError

from notebook_operator import metrics
from notebook_operator.api.meta import GROUP, VERSION
from notebook_operator.api.notebooksnapshot import NotebookSnapshotSpec
from notebook_operator.handlers.events import emit
from notebook_operator.providers.base import Provider
from notebook_operator.providers.errors import ProviderError
from notebook_operator.reconcile.notebook import Notebook
from notebook_operator.registry import AccountNotReady
from notebook_operator.snapshot_reconciler import KIND, WAITING_POLL_S, Snapshot, SnapshotReconciler, waiting
from notebook_operator.state import OperatorState, operator_state
from notebook_operator.times import now

logger = logging.getLogger(__name__)
RESOURCE = (GROUP, VERSION, "notebooksnapshots")
ACCOUNT_WAIT_S = 15.0


def _snapshot(body: kopf.Body) -> Snapshot:
    meta = body.metadata
    assert meta.namespace is not None and meta.uid is not None
    try:
        spec = NotebookSnapshotSpec.model_validate(dict(body.spec))
    except ValidationError as e:
        raise kopf.PermanentError(f"spec does not parse: {e}") from e
    return Snapshot(meta.namespace, meta.name or "", meta.uid, meta.get("generation"), spec, dict(body.status))


@kopf.on.event(*RESOURCE)
async def track_snapshot(event: kopf.RawEvent, body: kopf.Body, memo: object, **_: Any) -> None:
    """Keep what a notebook template's imageFrom.snapshotRef reads."""
    state = operator_state(memo)
    namespace, name = body.metadata.namespace or "", body.metadata.name or ""
    if event.get("type") == "DELETED":
        state.snapshots.remove(namespace, name)
    else:
        state.snapshots.put(namespace, name, {"spec": dict(body.spec), "status": dict(body.status)})
    for phase, count in state.snapshots.by_phase(namespace).items():  # the dashboard's "Snapshots by phase"
        metrics.SNAPSHOTS.labels(namespace, phase).set(count)


def _notebook(state: OperatorState, snapshot: Snapshot) -> Notebook | None:
    wanted = snapshot.spec.notebook_ref.name
    return next((n for n in state.notebooks.in_namespace(snapshot.namespace) if n.name == wanted), None)


def _provider(state: OperatorState, notebook: Notebook) -> Provider:
    provider = state.accounts.ready_provider(*notebook.account)
    if not state.admitted(notebook):
        raise AccountNotReady(f"ClusterProviderConfig {notebook.account[1]} does not admit {notebook.namespace}")
    return provider


def unfinished(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") not in ("Ready", "Failed")


@kopf.on.resume(*RESOURCE, when=unfinished)
@kopf.on.create(*RESOURCE, when=unfinished)
@kopf.on.update(*RESOURCE, field="spec", when=unfinished)
async def reconcile_snapshot(body: kopf.Body, memo: object, **_: Any) -> None:
    state = operator_state(memo)
    snapshot = _snapshot(body)
    at = now()
    notebook = _notebook(state, snapshot)
    if notebook is None:
        message = f"NotebookInstance {snapshot.namespace}/{snapshot.spec.notebook_ref.name} not found"
        result = waiting(snapshot, "NotebookNotFound", message, at, WAITING_POLL_S)
    else:
        try:
            provider = _provider(state, notebook)
        except AccountNotReady as e:
            result = waiting(snapshot, "AccountNotReady", str(e), at, ACCOUNT_WAIT_S)
        else:
            result = await SnapshotReconciler(provider, emit).reconcile(snapshot, notebook, at)
    if result.patch:
        await state.kube.patch_status(KIND, snapshot.namespace, snapshot.name, result.patch)
    if result.retry_after is not None:
        raise kopf.TemporaryError(str(result.patch.get("reason") or "saving"), delay=result.retry_after)


def deletes_in_cloud(spec: kopf.Spec, **_: Any) -> bool:
    return bool(spec.get("deletionPolicy", "Delete") == "Delete")


@kopf.on.delete(*RESOURCE, when=deletes_in_cloud)
async def delete_snapshot(body: kopf.Body, memo: object, **_: Any) -> None:
    state = operator_state(memo)
    snapshot = _snapshot(body)
    if not snapshot.status.get("instanceId"):
        return  # nothing was asked of the cloud
    notebook = _notebook(state, snapshot)
    account = notebook.account if notebook else _account(snapshot)
    try:
        provider = state.accounts.ready_provider(*account)
        await SnapshotReconciler(provider, emit).delete(snapshot)
    except (AccountNotReady, ProviderError) as e:
        raise kopf.TemporaryError(f"delete: {e}", delay=ACCOUNT_WAIT_S) from e


def _account(snapshot: Snapshot) -> tuple[str, str]:
    """The account recorded when the snapshot was taken (its notebook may be gone by now)."""
    kind, _, name = str(snapshot.status.get("account") or "ProviderConfig/").partition("/")
    return ("" if kind == "ClusterProviderConfig" else snapshot.namespace), name

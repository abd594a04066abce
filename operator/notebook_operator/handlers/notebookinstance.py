"""NotebookInstance: keep the registry the poll passes join with, run a spec pass when the spec changes,
delete in the cloud through the finalizer. Thin: the pipeline is notebook_reconciler.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf
from pydantic import ValidationError

from notebook_operator.announcer import Announcer
from notebook_operator.api.meta import GROUP, VERSION
from notebook_operator.api.notebookinstance import NotebookInstanceSpec
from notebook_operator.handlers.events import emit
from notebook_operator.notebook_reconciler import NotebookReconciler
from notebook_operator.providers.errors import ProviderError, RateLimited
from notebook_operator.reconcile.decide import WAIT_S
from notebook_operator.reconcile.notebook import Notebook, deletion_policy
from notebook_operator.registry import AccountNotReady
from notebook_operator.state import OperatorState, operator_state
from notebook_operator.times import now, parse_rfc3339

logger = logging.getLogger(__name__)
RESOURCE = (GROUP, VERSION, "notebookinstances")
ACCOUNT_WAIT_S = 3.0
ACCOUNT_READY_WAIT_S = 60.0


def _notebook(body: kopf.Body) -> Notebook:
    meta = body.metadata
    assert meta.namespace is not None and meta.uid is not None  # NotebookInstance is namespaced
    try:
        return Notebook.from_object(meta.namespace, meta.name or "", meta.uid, meta, body.spec, body.status)
    except ValidationError as e:  # the CRD schema admits only valid specs: a CRD older than this operator?
        raise kopf.PermanentError(f"spec does not parse: {e}") from e


@kopf.on.event(*RESOURCE)
async def track_notebook(event: kopf.RawEvent, body: kopf.Body, uid: str, memo: object, **_: Any) -> None:
    """Keep the registry each poll pass joins the cloud listing with."""
    state = operator_state(memo)
    if event.get("type") == "DELETED":
        state.notebooks.remove(uid)
        return
    try:
        state.notebooks.put(_notebook(body))
    except kopf.PermanentError as e:
        logger.error("NotebookInstance %s/%s not tracked: %s", body.metadata.namespace, body.metadata.name, e)
        state.notebooks.remove(uid)


def needs_spec_pass(spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, **_: Any) -> bool:
    """Spec work only: a managed instance to create, or a spec generation not handled yet. Mirroring, timers
    and power drift of everything else are the poll passes', in one batch per account."""
    if spec.get("managementPolicy") != "Manage":  # defaulted by the CRD schema
        return False
    if spec.get("template") and not status.get("instanceId"):
        return True
    return bool(status.get("observedGeneration") != meta.get("generation"))


async def _reconciler(state: OperatorState, notebook: Notebook) -> NotebookReconciler:
    # Notebooks applied with their account, or at start-up: wait for its first poll pass here (a coroutine each)
    # rather than in kopf's retries, which cost an API write per notebook per retry.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(ACCOUNT_READY_WAIT_S):
            await state.accounts.wait_ready(*notebook.account)
    try:
        provider = state.accounts.ready_provider(*notebook.account)
    except AccountNotReady as e:
        raise kopf.TemporaryError(str(e), delay=ACCOUNT_WAIT_S) from e
    account = state.accounts.get(*notebook.account)
    if not state.admitted(notebook):
        # The ClusterProviderConfig's poll pass says so on the object (ProviderConfigNotAllowed); nothing is sent.
        raise kopf.PermanentError(
            f"ClusterProviderConfig {notebook.account[1]} does not admit namespace {notebook.namespace}"
        )
    announcer = Announcer(emit, state.policies, account, state.notifier)
    return NotebookReconciler(
        provider, state.kube, emit, announcer=announcer, account=account, snapshots=state.snapshots
    )


@kopf.on.resume(*RESOURCE, when=needs_spec_pass)
@kopf.on.create(*RESOURCE, when=needs_spec_pass)
@kopf.on.update(*RESOURCE, field="spec", when=needs_spec_pass)
async def reconcile_notebook(body: kopf.Body, memo: object, **_: Any) -> None:
    notebook = _notebook(body)
    logger.info("NotebookInstance %s/%s seen (generation %s)", notebook.namespace, notebook.name, notebook.generation)
    reconciler = await _reconciler(operator_state(memo), notebook)
    last = notebook.status.get("lastAction") or {}
    assert reconciler.account is not None  # _reconciler gives it the notebook's account
    listed = reconciler.account.listed(notebook.instance_id or "", parse_rfc3339(last.get("startedAt")))
    try:
        observed = listed or await reconciler.observe(notebook)
        result = await reconciler.reconcile(notebook, observed, now(), spec_pass=True)
    except RateLimited as e:  # no turn at the account's own rate limit: soon again, when the next listing may serve it
        raise kopf.TemporaryError(str(e), delay=ACCOUNT_WAIT_S) from e
    except ProviderError as e:
        raise kopf.TemporaryError(str(e), delay=30) from e
    if result.retry_after is not None:
        raise kopf.TemporaryError(result.retry_reason, delay=result.retry_after)


def deletes_in_cloud(spec: kopf.Spec, **_: Any) -> bool:
    """Only these get a finalizer: deleting the others changes nothing in the cloud."""
    try:
        return deletion_policy(NotebookInstanceSpec.model_validate(dict(spec))) == "Delete"
    except ValidationError:
        return False


@kopf.on.delete(*RESOURCE, when=deletes_in_cloud)
async def delete_notebook(body: kopf.Body, memo: object, **_: Any) -> None:
    notebook = _notebook(body)
    try:
        gone = await (await _reconciler(operator_state(memo), notebook)).finalize(notebook)
    except ProviderError as e:
        raise kopf.TemporaryError(f"delete: {e}", delay=30) from e
    if not gone:
        raise kopf.TemporaryError("waiting for the cloud instance to be deleted", delay=WAIT_S)

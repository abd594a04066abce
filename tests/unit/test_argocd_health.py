"""The Argo CD health check (deploy/argocd/health.lua) run by a Lua 5.1 interpreter (Argo CD's gopher-lua
speaks 5.1) on the statuses the operator itself writes (reconcile.mirror), not on hand-made ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import lupa.lua51 as lua
import pytest
import yaml

from notebook_operator.providers.types import CloudInstance
from notebook_operator.reconcile.conditions import kstatus
from notebook_operator.reconcile.mirror import mirror
from tests.kube import REPO
from tests.specs import spec_of

SCRIPT = (REPO / "deploy" / "argocd" / "health.lua").read_text()
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SPEC = {"providerConfigRef": {"name": "p"}, "instanceId": "dsw-1", "managementPolicy": "Manage"}


def health(obj: dict[str, Any], script: str = SCRIPT) -> tuple[str, str]:
    runtime = lua.LuaRuntime(unpack_returned_tuples=True)

    def table(value: Any) -> Any:
        if isinstance(value, dict):
            return runtime.table_from({k: table(v) for k, v in value.items()})
        if isinstance(value, list):
            return runtime.table_from([table(v) for v in value])
        return value

    runtime.globals().obj = table(obj)
    result = runtime.execute(script)
    return str(result["status"]), str(result["message"])


def instance(phase: str, status: str | None = None, reason: str | None = None) -> CloudInstance:
    return CloudInstance(provider="pai-dsw", id="dsw-1", name="nb", phase=phase, cloud_status=status or phase,  # type: ignore[arg-type]
                         started_at=NOW - timedelta(hours=1) if phase == "Running" else None,
                         reason=reason)  # fmt: skip


def notebook(spec: dict[str, Any], observed: CloudInstance | None, status: dict[str, Any] | None = None,
             generation: int = 1) -> dict[str, Any]:  # fmt: skip
    status = dict(status or {})
    status.update(mirror(spec_of(spec), status, observed, generation, NOW))
    status["observedGeneration"] = generation
    return {"metadata": {"name": "nb", "generation": generation}, "spec": spec, "status": status}


STOPPED_BY_CULLER = {"stoppedBy": "notebook-operator: IdleCullerPolicy ml: idle 31 min",
                     "lastAction": {"action": "stop", "state": "Succeeded", "generation": 1}}  # fmt: skip

CASES = [
    ("running", notebook({**SPEC, "desiredState": "Running"}, instance("Running")), "Healthy"),
    ("stopped as declared", notebook({**SPEC, "desiredState": "Stopped"}, instance("Stopped")), "Healthy"),
    ("stopped by the culler while desired Running",
     notebook({**SPEC, "desiredState": "Running"}, instance("Stopped"), STOPPED_BY_CULLER), "Healthy"),
    ("adopted, stopped, no desired state", notebook(SPEC, instance("Stopped")), "Healthy"),
    ("starting", notebook({**SPEC, "desiredState": "Running"}, instance("Starting")), "Progressing"),
    ("stopped but desired Running", notebook({**SPEC, "desiredState": "Running"}, instance("Stopped")), "Progressing"),
    ("cloud failure", notebook(SPEC, instance("Failed", "Failed", "quota exceeded")), "Degraded"),
    ("instance gone", notebook(SPEC, None, {"instanceId": "dsw-1"}), "Degraded"),
    ("no status yet", {"metadata": {"name": "nb", "generation": 1}, "spec": SPEC}, "Progressing"),
]  # fmt: skip


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_notebook_health(obj: dict[str, Any], expected: str) -> None:
    status, message = health(obj)
    assert status == expected
    assert message


def test_degraded_says_why() -> None:
    assert health(notebook(SPEC, instance("Failed", "Failed", "quota exceeded"))) == (
        "Degraded",
        "CloudFailed: quota exceeded",
    )


def test_a_new_generation_not_handled_yet_is_progressing() -> None:
    obj = notebook({**SPEC, "desiredState": "Running"}, instance("Running"))
    obj["metadata"]["generation"] = 2
    assert health(obj)[0] == "Progressing"


@pytest.mark.parametrize(("ready", "stalled", "reason", "expected"), [
    (True, False, "Polling", "Healthy"),
    (False, True, "CredentialsRefused", "Degraded"),
    (False, False, "EndpointUnreachable", "Progressing"),
])  # fmt: skip
def test_provider_config_and_policy_health(ready: bool, stalled: bool, reason: str, expected: str) -> None:
    conditions = kstatus(None, ready=ready, reconciling=not ready and not stalled, stalled=stalled, reason=reason,
                         message="m", now=NOW, generation=3)  # fmt: skip
    obj = {"metadata": {"generation": 3}, "status": {"observedGeneration": 3, "conditions": conditions}}
    assert health(obj)[0] == expected


def test_the_argocd_configmap_carries_the_script_for_every_kind() -> None:
    docs = yaml.safe_load((REPO / "deploy" / "argocd" / "argocd-cm-health.yaml").read_text())
    keys = {f"resource.customizations.health.cloudnotebooks.io_{kind}"
            for kind in ("ProviderConfig", "NotebookInstance", "IdleCullerPolicy")}  # fmt: skip
    assert set(docs["data"]) == keys
    assert all(docs["data"][key] == SCRIPT for key in keys)

"""The pydantic models accept every example and reject what the CRD schema rejects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from notebook_operator.api import ClusterProviderConfig, IdleCullerPolicy, NotebookInstance, ProviderConfig
from notebook_operator.api.notebooksnapshot import NotebookSnapshot
from tests.kube import REPO, load_manifests

MODELS: dict[str, Any] = {
    "ProviderConfig": ProviderConfig,
    "ClusterProviderConfig": ClusterProviderConfig,
    "NotebookInstance": NotebookInstance,
    "IdleCullerPolicy": IdleCullerPolicy,
    "NotebookSnapshot": NotebookSnapshot,
}


@pytest.mark.parametrize(
    "path", sorted((REPO / "examples").glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_examples_parse(path: Path) -> None:
    for doc in load_manifests(path):
        if doc["kind"] in MODELS:
            model = MODELS[doc["kind"]].model_validate(doc)
            wire = model.spec.to_wire()
            assert MODELS[doc["kind"]].model_validate({"spec": wire}).spec == model.spec
            for key in doc["spec"]:
                assert key in wire, f"{key} lost in the round trip"


def test_notebook_round_trip_camel_case() -> None:
    doc = load_manifests(REPO / "examples/pai-dsw/notebookinstance.yaml")[0]
    model = NotebookInstance.model_validate(doc)
    wire = model.spec.to_wire()
    assert wire["shutdown"]["afterRunning"] == "8h"
    assert wire["template"]["instanceType"] == "ecs.gn6i-c4g1.xlarge"
    assert model.spec.shutdown and model.spec.shutdown.time_zone == "Asia/Shanghai"


@pytest.mark.parametrize(
    "spec",
    [
        {"providerConfigRef": {"name": "p"}, "instanceId": "x", "shutdown": {"afterRunning": "8 hours"}},
        {"providerConfigRef": {"name": "p"}, "instanceId": "x", "desiredState": "Paused"},
        {"providerConfigRef": {"name": "p"}, "instanceId": "x", "colour": "blue"},
    ],
)
def test_notebook_model_rejects(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        NotebookInstance.model_validate({"spec": spec})


def test_status_tolerates_unknown_fields() -> None:
    model = NotebookInstance.model_validate(
        {
            "spec": {"providerConfigRef": {"name": "p"}, "instanceId": "x"},
            "status": {"phase": "Running", "new": 1},
        }
    )
    assert model.status and model.status.phase == "Running"

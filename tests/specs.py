"""Specs as users write them (camelCase manifests), parsed the way the operator parses them at its edge."""

from __future__ import annotations

from typing import Any

from notebook_operator.api.notebookinstance import NotebookInstanceSpec, ShutdownSpec


def spec_of(manifest: dict[str, Any]) -> NotebookInstanceSpec:
    return NotebookInstanceSpec.model_validate({"providerConfigRef": {"name": "p"}, **manifest})


def shutdown_of(manifest: dict[str, Any] | None) -> ShutdownSpec | None:
    return ShutdownSpec.model_validate(manifest) if manifest else None

"""NotebookInstance handlers."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from notebook_operator.api.meta import GROUP, VERSION

logger = logging.getLogger(__name__)


@kopf.on.resume(GROUP, VERSION, "notebookinstances")
@kopf.on.create(GROUP, VERSION, "notebookinstances")
def observe_notebookinstance(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> None:
    logger.info(
        "NotebookInstance %s/%s seen (providerConfig %s)",
        namespace,
        name,
        spec.get("providerConfigRef", {}).get("name"),
    )

"""Operator-wide settings, applied once at startup, and the health probe."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import kopf

from notebook_operator.api.meta import GROUP

logger = logging.getLogger(__name__)

STARTED_AT = dt.datetime.now(dt.UTC)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Handler progress and the last-handled spec live in annotations, so the structural
    # status schema (which prunes unknown fields) never loses kopf's own bookkeeping.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.peering.name = "notebook-operator"
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.batching.error_delays = [1, 2, 5, 10, 30, 60]
    logger.info("notebook-operator configured for API group %s", GROUP)


@kopf.on.probe(id="uptime")
def uptime(**_: Any) -> float:
    return (dt.datetime.now(dt.UTC) - STARTED_AT).total_seconds()

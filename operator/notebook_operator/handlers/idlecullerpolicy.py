"""IdleCullerPolicy handlers (the culling itself lands with the IdleCullerPolicy issue)."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from notebook_operator.api.meta import GROUP, VERSION

logger = logging.getLogger(__name__)


@kopf.on.resume(GROUP, VERSION, "idlecullerpolicies")
@kopf.on.create(GROUP, VERSION, "idlecullerpolicies")
async def observe_idlecullerpolicy(namespace: str | None, name: str, **_: Any) -> None:
    logger.info("IdleCullerPolicy %s/%s seen", namespace, name)

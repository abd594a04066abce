"""ProviderConfig handlers."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from notebook_operator.api.meta import GROUP, VERSION

logger = logging.getLogger(__name__)


@kopf.on.resume(GROUP, VERSION, "providerconfigs")
@kopf.on.create(GROUP, VERSION, "providerconfigs")
def observe_providerconfig(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> None:
    logger.info("ProviderConfig %s/%s seen (provider %s)", namespace, name, spec.get("provider"))

"""`notebook-operator run`: start kopf with this operator's handlers."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import kopf

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    namespaces: list[str] = field(default_factory=list)
    all_namespaces: bool = False
    standalone: bool = False
    peering_name: str | None = None
    priority: int = 0
    liveness_endpoint: str | None = "http://0.0.0.0:8080/healthz"
    kubeconfig: str | None = None
    metrics_port: int = 8081
    log_format: str = "full"
    verbose: bool = False
    debug: bool = False


def run(options: RunOptions) -> int:
    os.environ["NOTEBOOK_OPERATOR_METRICS_PORT"] = str(options.metrics_port)
    if options.kubeconfig:
        # kopf's default login reads KUBECONFIG through the kubernetes client.
        os.environ["KUBECONFIG"] = options.kubeconfig
    kopf.configure(
        verbose=options.verbose,
        debug=options.debug,
        log_format=kopf.LogFormat.JSON if options.log_format == "json" else kopf.LogFormat.FULL,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per cloud call is noise
    import notebook_operator.handlers  # noqa: F401  (registers the handlers)

    clusterwide = options.all_namespaces or not options.namespaces
    logger.info(
        "starting notebook-operator: %s, %s",
        "all namespaces" if clusterwide else "namespaces " + ",".join(options.namespaces),
        "standalone" if options.standalone else f"peering {options.peering_name or 'notebook-operator'}",
    )
    # kopf installs SIGINT/SIGTERM handlers itself and returns once every task has stopped.
    kopf.run(
        standalone=options.standalone,
        # An explicit --peering makes peering mandatory; by default kopf uses the "notebook-operator"
        # peering object set at startup when the KopfPeering CRDs are installed, and runs alone if not.
        peering_name=None if options.standalone else options.peering_name,
        priority=options.priority,
        clusterwide=clusterwide,
        namespaces=[] if clusterwide else options.namespaces,
        liveness_endpoint=options.liveness_endpoint or None,
    )
    return 0

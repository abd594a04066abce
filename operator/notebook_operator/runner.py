"""`notebook-operator run`: decide the peering setup, check it can work, and start kopf with our handlers."""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import secrets
import socket
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime

import kopf

from notebook_operator import startup_check
from notebook_operator.account_connection import DEFAULT_TENANT_SERVICE_ACCOUNT, Tenancy
from notebook_operator.kube import Kube
from notebook_operator.peering import PeeringSetup, missing_peering
from notebook_operator.providers.egress import AllowList, endpoint_allow_list
from notebook_operator.reconcile.peering import DEFAULT_LIFETIME_S, DEFAULT_NAME, auto_priority
from notebook_operator.state import OperatorState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    namespaces: list[str] = field(default_factory=list)
    all_namespaces: bool = False
    standalone: bool = False
    peering_name: str | None = None  # given: peering is mandatory under this name
    priority: int | None = None  # None: a distinct automatic priority (older process wins)
    peering_lifetime: int = DEFAULT_LIFETIME_S
    liveness_endpoint: str | None = "http://0.0.0.0:8080/healthz"
    kubeconfig: str | None = None
    metrics_port: int = 8081
    log_format: str = "full"
    verbose: bool = False
    debug: bool = False
    tenant_service_account: str = DEFAULT_TENANT_SERVICE_ACCOUNT
    namespaced_ambient_credentials: bool = False
    allowed_endpoints: list[str] = field(default_factory=list)
    allowed_webhooks: list[str] = field(default_factory=list)
    cluster_id: str = ""  # "": the kube-system namespace's uid


class _QuietBookkeeping(logging.Filter):
    """kopf logs "Handler 'track_notebook' succeeded." for every watch event of every NotebookInstance (two
    lines per object per status change, 40,000 at the first sync of 20,000): bookkeeping, not news."""

    QUIET = frozenset({"Handler 'track_notebook' succeeded.", "Handler 'track_namespace' succeeded."})

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in self.QUIET


def identity() -> str:
    """The keep-alive key in the peering object: the pod's name when the chart passes it (POD_NAME),
    plus the pid and a random part so a restarted container never inherits its predecessor's entry."""
    where = os.environ.get("POD_NAME") or f"{getpass.getuser()}@{socket.gethostname()}"
    return f"{where}/{os.getpid()}/{secrets.token_hex(2)}"


def peering_setup(options: RunOptions, clusterwide: bool) -> PeeringSetup:
    priority = options.priority if options.priority is not None else auto_priority(datetime.now(UTC))
    return PeeringSetup(
        name=None if options.standalone else (options.peering_name or DEFAULT_NAME),
        namespaces=[] if clusterwide else list(options.namespaces),
        identity=identity(),
        priority=priority,
        lifetime=options.peering_lifetime,
        mandatory=options.peering_name is not None,
    )


async def _preflight(setup: PeeringSetup) -> str | None:
    kube = await Kube.connect()
    try:
        return await missing_peering(kube, setup)
    finally:
        await kube.close()


def run(options: RunOptions) -> int:
    if options.kubeconfig:
        # kopf's default login reads KUBECONFIG through the kubernetes client.
        os.environ["KUBECONFIG"] = options.kubeconfig
    kopf.configure(
        verbose=options.verbose,
        debug=options.debug,
        log_format=kopf.LogFormat.JSON if options.log_format == "json" else kopf.LogFormat.FULL,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per cloud call is noise
    logging.getLogger("kopf.objects").addFilter(_QuietBookkeeping())
    import notebook_operator.handlers  # noqa: F401  (registers the handlers)

    clusterwide = options.all_namespaces or not options.namespaces
    try:
        cluster_id = asyncio.run(startup_check.check([] if clusterwide else options.namespaces, options.cluster_id))
    except startup_check.StartupProblem as e:
        print(f"notebook-operator: {e}", file=sys.stderr)
        return 1
    setup = peering_setup(options, clusterwide)
    if setup.mandatory:
        problem = asyncio.run(_preflight(setup))
        if problem:
            print(f"notebook-operator: {problem}", file=sys.stderr)
            return 1
    settings = kopf.OperatorSettings()
    # No cluster-wide scanning of namespaces and CRDs: the chart grants neither (kopf would retry the refused
    # lists for about a minute before it starts peering or handling anything, at every restart). The namespaces
    # are the ones given; the resources are what API discovery shows at start (install the CRDs first).
    settings.scanning.disabled = True
    settings.peering.lifetime = setup.lifetime
    if setup.name is not None:
        settings.peering.name = setup.name
    where = "all namespaces" if clusterwide else "namespaces " + ",".join(options.namespaces)
    peering = "standalone"
    if setup.name is not None:
        required = "required" if setup.mandatory else "if its CRDs exist"
        peering = f"peering {setup.name} ({required}, identity {setup.identity}, priority {setup.priority}, "
        peering += f"lifetime {setup.lifetime}s)"
    logger.info("starting notebook-operator: %s, %s, cluster id %s", where, peering, cluster_id)
    # kopf installs SIGINT/SIGTERM handlers itself and returns once every task has stopped.
    kopf.run(
        settings=settings,
        # Read by the startup handler (handlers/startup.py): what this process was started with.
        memo=OperatorState(
            peering=setup,
            metrics_port=options.metrics_port,
            tenancy=Tenancy(
                options.tenant_service_account,
                options.namespaced_ambient_credentials,
                endpoint_allow_list(options.allowed_endpoints),
            ),
            allowed_webhooks=AllowList.of(options.allowed_webhooks),
            cluster_id=cluster_id,
        ),
        identity=setup.identity,  # type: ignore[arg-type]
        standalone=options.standalone,
        # A name given makes peering mandatory (kopf waits for the object, checked above); without one,
        # kopf uses DEFAULT_NAME when the KopfPeering CRDs are installed and runs alone when not.
        peering_name=options.peering_name,
        priority=setup.priority,
        clusterwide=clusterwide,
        namespaces=[] if clusterwide else options.namespaces,
        liveness_endpoint=options.liveness_endpoint or None,
    )
    return 0

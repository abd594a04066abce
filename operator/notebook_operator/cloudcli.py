"""`notebook-operator cloud ...` and `notebook-operator adopt`: look at an account, bring instances under management."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import yaml

from notebook_operator.api.meta import API_VERSION
from notebook_operator.providers.base import Provider
from notebook_operator.providers.credentials import from_environment
from notebook_operator.providers.errors import ProviderError
from notebook_operator.providers.factory import Account, connect
from notebook_operator.providers.types import CloudInstance, ListFilter
from notebook_operator.reconcile.ownership import owner_of
from notebook_operator.times import rfc3339

HUAWEI_PROJECT_ENV = "HUAWEICLOUD_SDK_PROJECT_ID"


@dataclass(frozen=True)
class Target:
    provider: str
    region: str
    endpoint: str | None
    project_id: str | None


def account_from_environment(target: Target, environ: dict[str, str]) -> Account:
    cloud = "alibaba" if target.provider == "pai-dsw" else "huawei"
    project_id = target.project_id or environ.get(HUAWEI_PROJECT_ENV) or None
    return Account(target.provider, target.region, from_environment(cloud, environ), target.endpoint, project_id)


class Progress:
    """A count on stderr while a long listing runs: rewritten in place on a terminal, a line per 500 otherwise."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream, self.label, self.count = stream, label, 0
        self.tty = stream.isatty()

    def tick(self) -> None:
        self.count += 1
        if self.tty:
            self.stream.write(f"\r{self.label}: {self.count}")
            self.stream.flush()
        elif self.count % 500 == 0:
            self.stream.write(f"{self.label}: {self.count}\n")

    def done(self) -> None:
        end = "\r" if self.tty else ""
        self.stream.write(f"{end}{self.label}: {self.count} in all\n")


async def collect(provider: Provider, filter: ListFilter | None, progress: Progress | None) -> list[CloudInstance]:
    found = []
    async for instance in provider.list_instances(filter):
        found.append(instance)
        if progress:
            progress.tick()
    if progress:
        progress.done()
    return found


def summary(instance: CloudInstance) -> dict[str, Any]:
    data = instance.model_dump(mode="json", exclude_none=True)
    return {k: v for k, v in data.items() if v not in ({}, [])}


def render(instances: list[CloudInstance], output: str) -> str:
    if output == "json":
        return json.dumps([summary(i) for i in instances], indent=2)
    if output == "yaml":
        return yaml.safe_dump([summary(i) for i in instances], sort_keys=False)
    rows = [["ID", "NAME", "STATUS", "PHASE", "TYPE", "GPU", "CREATED", "OWNER"]]
    for i in instances:
        created = rfc3339(i.created_at) if i.created_at else ""
        owner = owner_of(i.labels) or ""  # cluster/namespace/name, from the ownership tags
        row = [i.id, i.name, i.cloud_status, i.phase, i.instance_type or "", str(i.resources.gpu or 0), created, owner]
        rows.append(row)
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


_NAME_BAD = re.compile(r"[^a-z0-9-]+")


def resource_name(instance: CloudInstance, taken: set[str]) -> str:
    """A DNS-1123 name from the cloud name, unique within one adopt run."""
    base = _NAME_BAD.sub("-", instance.name.lower()).strip("-")[:50] or "notebook"
    suffix = _NAME_BAD.sub("", instance.id.lower())[-6:]
    name = base if base not in taken else f"{base}-{suffix}"
    counter = 2
    while name in taken:
        name = f"{base}-{suffix}-{counter}"
        counter += 1
    taken.add(name)
    return name


def adoption_manifests(
    instances: list[CloudInstance], namespace: str | None, provider_config: str, kind: str = "ProviderConfig"
) -> str:
    taken: set[str] = set()
    docs = []
    for instance in instances:
        if instance.phase in ("Deleting", "Deleted"):
            continue
        metadata: dict[str, Any] = {
            "name": resource_name(instance, taken),
            "labels": {"cloudnotebooks.io/provider": instance.provider},
            "annotations": {"cloudnotebooks.io/cloud-name": instance.name},
        }
        if namespace:
            metadata["namespace"] = namespace
        docs.append(
            {
                "apiVersion": API_VERSION,
                "kind": "NotebookInstance",
                "metadata": metadata,
                "spec": {
                    "providerConfigRef": {"kind": kind, "name": provider_config},
                    "instanceId": instance.id,
                    "managementPolicy": "Observe",
                },
            }
        )
    return yaml.safe_dump_all(docs, sort_keys=False) if docs else ""


async def _with_provider(account: Account, action: Callable[[Provider], Any]) -> Any:
    provider = connect(account)
    try:
        return await action(provider)
    finally:
        await provider.aclose()


def run_cloud(command: str, target: Target, args: dict[str, Any], environ: dict[str, str]) -> int:
    """`cloud list|get|start|stop`: 0 on success, 1 on a cloud error (printed to stderr)."""
    try:
        account = account_from_environment(target, environ)

        async def act(provider: Provider) -> str:
            if command == "list":
                filter = ListFilter(status=args.get("status"), name=args.get("name"))
                return render(await collect(provider, filter, Progress(sys.stderr, "instances")), args["output"])
            instance_id = args["instance_id"]
            if command == "start":
                await provider.start_instance(instance_id)
            elif command == "stop":
                await provider.stop_instance(instance_id, save_image=bool(args.get("save_image")))
            return render([await provider.get_instance(instance_id)], args["output"])

        print(asyncio.run(_with_provider(account, act)))
        return 0
    except (ProviderError, ValueError) as e:
        print(f"notebook-operator cloud {command}: {e}", file=sys.stderr)
        return 1


def run_adopt(
    target: Target, namespace: str | None, provider_config: str, environ: dict[str, str], kind: str = "ProviderConfig"
) -> int:
    try:
        account = account_from_environment(target, environ)

        async def act(provider: Provider) -> list[CloudInstance]:
            return await collect(provider, None, Progress(sys.stderr, "instances listed"))

        instances = asyncio.run(_with_provider(account, act))
    except (ProviderError, ValueError) as e:
        print(f"notebook-operator adopt: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(adoption_manifests(instances, namespace, provider_config, kind))
    return 0

"""`kubectl notebook`: NotebookInstances for the people who use them. Installed as the console script
`kubectl-notebook`, which kubectl runs as a plugin (any `kubectl-*` executable on PATH).

  kubectl notebook list [-A]      phase, idle, next stop, pending stop, cost per hour
  kubectl notebook start NAME     spec.desiredState: Running
  kubectl notebook stop NAME      spec.desiredState: Stopped
  kubectl notebook snooze NAME 2h keep it running: the cloudnotebooks.io/keep-running-until annotation (off: remove)
  kubectl notebook open NAME      the JupyterLab URL
  kubectl notebook why NAME       conditions, the cloud's reason and events, last action, pending stop, idle clock
  kubectl notebook snapshot NAME  save its environment: a NotebookSnapshot (--image-url for PAI-DSW; --retain)

Standard flags: -n/--namespace, -A/--all-namespaces, --context, --kubeconfig.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from notebook_operator.api.formats import parse_duration
from notebook_operator.api.meta import GROUP, VERSION
from notebook_operator.api.notebookinstance import SNOOZE_ANNOTATION
from notebook_operator.times import now, parse_rfc3339, rfc3339

PLURAL = "notebookinstances"


def _api(args: argparse.Namespace) -> tuple[client.CustomObjectsApi, str]:
    config.load_kube_config(config_file=args.kubeconfig, context=args.context)  # type: ignore[no-untyped-call]
    contexts, active = config.list_kube_config_contexts(config_file=args.kubeconfig)  # type: ignore[no-untyped-call]
    if args.context:
        active = next((c for c in contexts if c["name"] == args.context), active)
    namespace = args.namespace or (active or {}).get("context", {}).get("namespace") or "default"
    return client.CustomObjectsApi(), namespace


def ago(moment: datetime | None, at: datetime) -> str:
    """How long ago `moment` was (`35m`, `1h59m`, `2d3h`), or `in ...` when it is ahead."""
    if moment is None:
        return "-"
    seconds = int((at - moment).total_seconds())
    ahead, seconds = seconds < 0, abs(seconds)
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    if days:
        text = f"{days}d{hours}h" if hours else f"{days}d"
    elif hours:
        text = f"{hours}h{minutes}m" if minutes else f"{hours}h"
    else:
        text = f"{minutes}m" if minutes else f"{seconds}s"
    return f"in {text}" if ahead else text


def row(item: Mapping[str, Any], at: datetime, with_namespace: bool) -> list[str]:
    status = item.get("status") or {}
    spec = item.get("spec") or {}
    idle = status.get("idle") or {}
    pending = status.get("pendingStop") or {}
    cost = status.get("cost") or {}
    cells = [
        item["metadata"]["name"],
        status.get("provider") or "-",
        status.get("phase") or "-",
        spec.get("desiredState") or "-",
        ago(parse_rfc3339(idle.get("since")), at) if idle.get("since") else "-",
        ago(parse_rfc3339(status.get("nextShutdownAt")), at) if status.get("nextShutdownAt") else "-",
        ago(parse_rfc3339(pending.get("at")), at) if pending.get("at") else "-",
        f"{cost['perHour']:g} {cost.get('currency', '')}".strip() if cost.get("perHour") is not None else "-",
    ]
    return [item["metadata"]["namespace"], *cells] if with_namespace else cells


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "   ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    )


def cmd_list(api: client.CustomObjectsApi, namespace: str, args: argparse.Namespace) -> int:
    if args.all_namespaces:
        found = cast(dict[str, Any], api.list_cluster_custom_object(GROUP, VERSION, PLURAL))
    else:
        found = cast(dict[str, Any], api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL))
    items = sorted(found.get("items") or [], key=lambda i: (i["metadata"]["namespace"], i["metadata"]["name"]))
    if not items:
        print("No NotebookInstances found" + ("." if args.all_namespaces else f" in namespace {namespace}."))
        return 0
    header = ["NAME", "PROVIDER", "PHASE", "DESIRED", "IDLE", "NEXT STOP", "PENDING STOP", "COST/H"]
    at = now()
    print(
        table(
            [row(i, at, args.all_namespaces) for i in items], ["NAMESPACE", *header] if args.all_namespaces else header
        )
    )
    return 0


def _get(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    return cast(dict[str, Any], api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))


def cmd_power(api: client.CustomObjectsApi, namespace: str, args: argparse.Namespace) -> int:
    wanted = "Running" if args.command == "start" else "Stopped"
    item = _get(api, namespace, args.name)
    if (item.get("spec") or {}).get("managementPolicy") == "Observe":
        print(
            f"error: notebookinstance/{args.name} is managementPolicy Observe: the operator does not start or stop it",
            file=sys.stderr,
        )
        return 1
    api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.name, {"spec": {"desiredState": wanted}})
    print(f"notebookinstance/{args.name} desiredState={wanted}")
    return 0


def cmd_open(api: client.CustomObjectsApi, namespace: str, args: argparse.Namespace) -> int:
    urls = ((_get(api, namespace, args.name).get("status") or {}).get("urls")) or {}
    url = urls.get("jupyterLab") or urls.get("webIDE") or urls.get("instance")
    if not url:
        print(f"error: notebookinstance/{args.name} has no URL yet (is it running?)", file=sys.stderr)
        return 1
    print(url)
    return 0


def cmd_snooze(api: client.CustomObjectsApi, namespace: str, args: argparse.Namespace) -> int:
    """Annotate keep-running-until = now + DURATION (`off` removes it); the operator clamps and reports."""
    if args.duration == "off":
        value: str | None = None
    else:
        try:
            value = rfc3339(now() + parse_duration(args.duration))
        except ValueError:
            print(f"error: {args.duration!r} is not a duration like 2h, 90m or 1h30m (or 'off')", file=sys.stderr)
            return 1
    patch = {"metadata": {"annotations": {SNOOZE_ANNOTATION: value}}}
    api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.name, patch)
    print(f"notebookinstance/{args.name} " + (f"kept running until {value}" if value else "snooze removed"))
    print("  (capped by maxSnoozeHours; `kubectl notebook why` shows what applies)" if value else "", end="")
    return 0


def explain(item: Mapping[str, Any], at: datetime, cloud_events: Sequence[str] = ()) -> list[str]:
    """What `why` prints: plain sentences from the status, and the cloud's own words (its reason and the
    notebook's recent CloudFailed / CloudEvent Events, oldest first)."""
    status = item.get("status") or {}
    name = item["metadata"]["name"]
    lines = [
        f"{name}: {status.get('phase') or 'no phase yet'}"
        + (f" (cloud status {status['cloudStatus']})" if status.get("cloudStatus") else "")
    ]
    ref = (item.get("spec") or {}).get("providerConfigRef") or {}
    if ref.get("kind") == "ClusterProviderConfig":
        lines.append(f"  account: ClusterProviderConfig {ref.get('name')} (the cluster admin's)")
    elif ref:
        lines.append(f"  account: ProviderConfig {ref.get('name')}")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready" or condition.get("status") == "True":
            lines.append(
                f"  {condition['type']}={condition.get('status')}: {condition.get('reason', '')}"
                + (f" - {condition['message']}" if condition.get("message") else "")
            )
    if status.get("cloudReason"):
        lines.append(f"  the cloud says: {status['cloudReason']}")
    for said in cloud_events:
        lines.append(f"    {said}")
    if status.get("phase") == "Running" and status.get("startedAt"):
        source = f", from {status['startedAtSource']}" if status.get("startedAtSource") else ""
        since = ago(parse_rfc3339(status["startedAt"]), at)
        lines.append(f"  running since {since} ago ({status['startedAt']}{source})")
    last = status.get("lastAction") or {}
    if last:
        when = ago(parse_rfc3339(last.get("startedAt")), at)
        lines.append(
            f"  last action: {last.get('action')} {last.get('state', '').lower()} {when} ago: "
            f"{last.get('reason', '')}" + (f" ({last['message']})" if last.get("message") else "")
        )
    if status.get("stoppedBy"):
        lines.append(f"  stopped by {status['stoppedBy']}")
    if status.get("nextShutdownAt"):
        due = parse_rfc3339(status["nextShutdownAt"])
        lines.append(f"  next stop {ago(due, at)} ({status['nextShutdownAt']}): {status.get('nextShutdownReason', '')}")
    pending = status.get("pendingStop") or {}
    if pending.get("at"):
        lines.append(
            f"  pending stop {ago(parse_rfc3339(pending['at']), at)} ({pending['at']}) by {pending.get('by', '?')}: "
            f"{pending.get('reason', '')}"
        )
    snooze = status.get("snooze") or {}
    if snooze.get("until"):
        lines.append(
            f"  snoozed until {snooze['until']}" + (f" ({snooze['message']})" if snooze.get("message") else "")
        )
    elif snooze.get("message"):
        lines.append(f"  snooze ignored: {snooze['message']}")

    idle = status.get("idle") or {}
    if idle.get("since"):
        levels = ", ".join(
            f"{k} {idle[v]:g}%" for k, v in (("cpu", "cpuPercent"), ("gpu", "gpuPercent")) if idle.get(v) is not None
        )
        lines.append(
            f"  idle for {ago(parse_rfc3339(idle['since']), at)} under IdleCullerPolicy "
            f"{idle.get('policy', '?')}" + (f" (last sample: {levels})" if levels else "")
        )
    elif idle.get("enforcement"):
        lines.append("  not idle")
    if idle.get("enforcement"):
        lines.append(f"  idle rules enforced by: {idle['enforcement']}")
    if idle.get("warning"):
        lines.append(f"  {idle['warning']}")
    return lines


CLOUD_EVENT_REASONS = ("CloudFailed", "CloudEvent")
RECENT_CLOUD_EVENTS = 5


def cmd_snapshot(api: client.CustomObjectsApi, namespace: str, args: argparse.Namespace) -> int:
    """Create a NotebookSnapshot of the notebook; the operator saves it in the cloud (`kubectl get nbsnap`)."""
    item = _get(api, namespace, args.name)
    provider = (item.get("status") or {}).get("provider")
    stamp = now().strftime("%Y%m%d-%H%M%S")
    spec: dict[str, Any] = {"notebookRef": {"name": args.name}, "deletionPolicy": "Retain" if args.retain else "Delete"}
    if args.image_url:
        spec["imageUrl"] = args.image_url
    elif provider == "modelarts" or args.image_name:
        spec["imageName"] = args.image_name or re.sub(r"[^a-z0-9._-]+", "-", args.name.lower()).strip("-._")[:128]
        spec["imageTag"] = args.image_tag or stamp
    else:
        print(
            f"error: notebookinstance/{args.name} is on {provider or 'a cloud not observed yet'}: PAI-DSW pushes a "
            "snapshot to a registry, give --image-url (ModelArts: --image-name/--image-tag, defaulted)",
            file=sys.stderr,
        )
        return 1
    name = args.snapshot_name or f"{args.name[:47]}-{stamp}"
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "NotebookSnapshot", "metadata": {"name": name}, "spec": spec}
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, "notebooksnapshots", body)
    print(f"notebooksnapshot/{name} created (kubectl get nbsnap {name} -w: Pending, Saving, Ready)")
    return 0


def _cloud_events(api: client.CustomObjectsApi, namespace: str, name: str) -> list[str]:
    """The notebook's recent Events that carry the cloud's words, oldest first."""
    found = client.CoreV1Api(api.api_client).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name},involvedObject.kind=NotebookInstance"
    )
    ours = [e for e in found.items if e.reason in CLOUD_EVENT_REASONS]
    ours.sort(key=lambda e: str(e.last_timestamp or e.event_time or e.metadata.creation_timestamp))
    return [f"{e.reason}: {e.message}" for e in ours[-RECENT_CLOUD_EVENTS:]]


def cmd_why(api: client.CustomObjectsApi, namespace: str, args: argparse.Namespace) -> int:
    print("\n".join(explain(_get(api, namespace, args.name), now(), _cloud_events(api, namespace, args.name))))
    return 0


COMMANDS = {
    "list": cmd_list,
    "start": cmd_power,
    "stop": cmd_power,
    "snooze": cmd_snooze,
    "open": cmd_open,
    "why": cmd_why,
    "snapshot": cmd_snapshot,
}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", help="the namespace (default: the context's)")
    common.add_argument("--context", help="the kubeconfig context to use")
    common.add_argument("--kubeconfig", help="path to the kubeconfig file")
    parser = argparse.ArgumentParser(
        prog="kubectl notebook",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", parents=[common], help="NotebookInstances with phase, idle time, next stop")
    listing.add_argument("-A", "--all-namespaces", action="store_true")
    for command, text in (
        ("start", "start it (desiredState Running)"),
        ("stop", "stop it (desiredState Stopped)"),
        ("open", "print its JupyterLab URL"),
        ("why", "why it is in the state it is"),
    ):
        sub.add_parser(command, parents=[common], help=text).add_argument("name")
    snapshot = sub.add_parser("snapshot", parents=[common], help="save its environment (a NotebookSnapshot)")
    snapshot.add_argument("name")
    snapshot.add_argument("--snapshot-name", help="the NotebookSnapshot's name (default: NAME-<time>)")
    snapshot.add_argument("--image-url", help="PAI-DSW: the registry URL the image is pushed to")
    snapshot.add_argument("--image-name", help="ModelArts: the image's name (default: NAME)")
    snapshot.add_argument("--image-tag", help="ModelArts: the image's tag (default: the time)")
    snapshot.add_argument("--retain", action="store_true", help="keep the cloud snapshot when the resource goes")
    snooze = sub.add_parser("snooze", parents=[common], help="keep it running for DURATION (e.g. 2h; off)")
    snooze.add_argument("name")
    snooze.add_argument("duration")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        api, namespace = _api(args)
        return COMMANDS[args.command](api, namespace, args)
    except ApiException as e:
        reason = "not found" if e.status == 404 else (e.reason or str(e.status))
        print(
            f"error: {reason}" + (f": notebookinstance/{args.name}" if getattr(args, "name", None) else ""),
            file=sys.stderr,
        )
        return 1
    except config.ConfigException as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""Command line: `notebook-operator run | crds | cloud | adopt`, plus the subcommands other installed
distributions register in the entry-point group `notebook_operator.commands` (the development tools
add `emulator` and `demo`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from notebook_operator.reconcile.peering import DEFAULT_LIFETIME_S, MIN_LIFETIME_S
from notebook_operator.reconcile.peering import DEFAULT_NAME as DEFAULT_PEERING


def _cmd_run(args: argparse.Namespace) -> int:
    from notebook_operator.runner import RunOptions, run

    return run(
        RunOptions(
            namespaces=args.namespace or [],
            all_namespaces=args.all_namespaces,
            standalone=args.standalone,
            peering_name=args.peering,
            priority=args.priority,
            peering_lifetime=args.peering_lifetime,
            liveness_endpoint=args.liveness or None,
            kubeconfig=args.kubeconfig,
            metrics_port=args.metrics_port,
            log_format=args.log_format,
            verbose=args.verbose,
            debug=args.debug,
            tenant_service_account=args.tenant_service_account,
            namespaced_ambient_credentials=args.namespaced_ambient_credentials,
            allowed_endpoints=args.allowed_endpoint or [],
            allowed_webhooks=args.allowed_webhook or [],
            cluster_id=args.cluster_id or "",
        )
    )


def _regex(text: str) -> str:
    import re

    try:
        re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"not a regular expression: {e}") from None
    return text


def _cluster_id(text: str) -> str:
    import re

    from notebook_operator.api.tags import TAG_VALUE_MAX, TAG_VALUE_PATTERN

    if not text or len(text) > TAG_VALUE_MAX or not re.fullmatch(TAG_VALUE_PATTERN, text):
        raise argparse.ArgumentTypeError(
            f"a tag value: 1 to {TAG_VALUE_MAX} letters, digits, spaces and _ . : / = + - @"
        )
    return text


def _lifetime(text: str) -> int:
    value = int(text)
    if value < MIN_LIFETIME_S:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_LIFETIME_S} seconds")
    return value


def _cmd_crds(args: argparse.Namespace) -> int:
    from notebook_operator.api.crdgen import write_all

    for path in write_all(Path(args.output)):
        print(path)
    return 0


def _target(args: argparse.Namespace) -> Any:
    from notebook_operator.cloudcli import Target

    return Target(args.provider, args.region, args.endpoint, args.project_id)


def _cmd_cloud(args: argparse.Namespace) -> int:
    import os

    from notebook_operator.cloudcli import run_cloud

    return run_cloud(args.cloud_command, _target(args), vars(args), dict(os.environ))


def _cmd_cloud_check(args: argparse.Namespace) -> int:
    import asyncio
    import os

    from notebook_operator.cloudcheck import check_account
    from notebook_operator.cloudcli import account_from_environment

    try:
        if args.source:
            from notebook_operator.account_from_cluster import account_from_cluster, parse_reference

            kind, name = parse_reference(args.source)
            account = asyncio.run(account_from_cluster(kind, name, args.namespace or "default"))
        elif args.provider and args.region:
            account = account_from_environment(_target(args), dict(os.environ))
        else:
            raise ValueError("give --provider and --region (credentials from the environment), or --from KIND/NAME")
    except ValueError as e:  # missing or incomplete credentials, or an object that cannot be used
        print(f"notebook-operator cloud check: {e}", file=sys.stderr)
        return 2
    return check_account(account, args.output)


def _cmd_adopt(args: argparse.Namespace) -> int:
    import os

    from notebook_operator.cloudcli import run_adopt

    if args.cluster_provider_config:
        return run_adopt(
            _target(args), args.namespace, args.cluster_provider_config, dict(os.environ), "ClusterProviderConfig"
        )
    provider_config = args.provider_config or f"{args.provider}-{args.region}"
    return run_adopt(_target(args), args.namespace, provider_config, dict(os.environ))


def _account_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--provider", required=True, choices=["pai-dsw", "modelarts", "modelarts-devenv", "roma-connect"]
    )
    parser.add_argument("--region", required=True, help="e.g. cn-hangzhou, cn-north-4")
    parser.add_argument("--endpoint", help="override the regional endpoint (e.g. the emulator)")
    parser.add_argument("--project-id", help="Huawei project id (default: $HUAWEICLOUD_SDK_PROJECT_ID)")


COMMANDS_GROUP = "notebook_operator.commands"


def _add_plugin_commands(sub: Any) -> None:
    """Each entry point is a function that adds its subparser (and sets `func`)."""
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        entry.load()(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="notebook-operator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator against the current kubeconfig or in-cluster config")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", help="watch this namespace (repeatable)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    peering = run.add_mutually_exclusive_group()
    peering.add_argument("--standalone", action="store_true", help="no peering: the only operator instance")
    peering.add_argument(
        "--peering",
        metavar="NAME",
        help="require the kopf peering object NAME (exit 1 if it is missing); without this flag peering uses "
        f"{DEFAULT_PEERING!r} when the kopf.dev CRDs exist and runs alone when not",
    )
    run.add_argument(
        "--priority",
        type=int,
        help="peering priority (highest acts; equal priorities make kopf pause all of them). Default: a distinct "
        "negative one per process, older processes first, so identical replicas elect one",
    )
    run.add_argument(
        "--peering-lifetime",
        type=_lifetime,
        default=DEFAULT_LIFETIME_S,
        metavar="SECONDS",
        help=f"keep-alive validity: a standby takes over this long after the active replica dies "
        f"(default {DEFAULT_LIFETIME_S}, at least {MIN_LIFETIME_S})",
    )
    run.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        metavar="URL",
        help="health endpoint to serve ('' to disable)",
    )
    run.add_argument("--metrics-port", type=int, default=8081, help="Prometheus metrics port (0 to disable)")
    run.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config or in-cluster)")
    tenancy = run.add_argument_group(
        "tenancy", "what a namespace's objects may make the operator use (README: Multi-tenancy)"
    )
    tenancy.add_argument(
        "--tenant-service-account",
        default="notebook-operator-identity",
        metavar="NAME",
        help="keyless ProviderConfigs get a token of the ServiceAccount NAME in their own namespace "
        "(default %(default)s)",
    )
    tenancy.add_argument(
        "--namespaced-ambient-credentials",
        action="store_true",
        help="let namespaced ProviderConfigs use the operator's own token instead (brings back the confused "
        "deputy: any namespace can name any role that trusts the operator)",
    )
    tenancy.add_argument(
        "--allowed-endpoint",
        action="append",
        type=_regex,
        metavar="REGEX",
        help="endpoints a ProviderConfig may name, matched against scheme://host:port (repeatable; default: https "
        "on the clouds' own domains)",
    )
    tenancy.add_argument(
        "--allowed-webhook",
        action="append",
        type=_regex,
        metavar="REGEX",
        help="webhooks allowed although not https to a public address, matched against scheme://host:port (repeatable)",
    )
    run.add_argument(
        "--cluster-id",
        type=_cluster_id,
        help="this cluster's name in the ownership tags of the instances it manages (default: the uid of the "
        "kube-system namespace)",
    )
    run.add_argument("--log-format", choices=["full", "json"], default="full")
    run.add_argument("-v", "--verbose", action="store_true")
    run.add_argument("--debug", action="store_true")
    run.set_defaults(func=_cmd_run)

    crds = sub.add_parser("crds", help="write the CRD YAML generated from the models")
    crds.add_argument("-o", "--output", default="crds", help="directory to write to (default crds/)")
    crds.set_defaults(func=_cmd_crds)

    cloud = sub.add_parser(
        "cloud",
        help="look at a cloud account",
        description="Credentials come from ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET"
        "[/ALIBABA_CLOUD_SECURITY_TOKEN] or HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK[/HUAWEICLOUD_SDK_PROJECT_ID].",
    )
    cloud_sub = cloud.add_subparsers(dest="cloud_command", required=True)
    for verb, text in (
        ("list", "list every instance"),
        ("get", "show one instance"),
        ("start", "start an instance"),
        ("stop", "stop an instance"),
    ):
        verb_parser = cloud_sub.add_parser(verb, help=text)
        _account_flags(verb_parser)
        verb_parser.add_argument("--output", "-o", choices=["table", "json", "yaml"], default="table")
        if verb == "list":
            verb_parser.add_argument("--status", help="only this cloud status")
            verb_parser.add_argument("--name", help="only names containing this")
        else:
            verb_parser.add_argument("instance_id")
        if verb == "stop":
            verb_parser.add_argument("--save-image", action="store_true", help="PAI-DSW: save an image first")
        verb_parser.set_defaults(func=_cmd_cloud)

    check = cloud_sub.add_parser(
        "check",
        help="read-only preflight: credentials and every read permission the operator needs",
        description="Exit 0 when every required check passes, 1 when one is refused, 2 on usage errors or missing "
        "credentials.",
    )
    check.add_argument("--provider", choices=["pai-dsw", "modelarts", "modelarts-devenv", "roma-connect"])
    check.add_argument("--region", help="e.g. cn-hangzhou, cn-north-4")
    check.add_argument("--endpoint", help="override the regional endpoint (e.g. the emulator)")
    check.add_argument("--project-id", help="Huawei project id (default: $HUAWEICLOUD_SDK_PROJECT_ID)")
    check.add_argument(
        "--from",
        dest="source",
        metavar="KIND/NAME",
        help="check the account of providerconfig/NAME (in --namespace) or clusterproviderconfig/NAME, with the "
        "credentials it names, read with your kubeconfig (a keyless one: its namespace's identity token)",
    )
    check.add_argument("--namespace", "-n", help="the ProviderConfig's namespace (default: default)")
    check.add_argument("--output", "-o", choices=["table", "json"], default="table")
    check.set_defaults(func=_cmd_cloud_check)

    adopt = sub.add_parser("adopt", help="print NotebookInstance manifests (Observe) for every instance of an account")
    _account_flags(adopt)
    adopt.add_argument("--namespace", "-n", help="namespace to put in the manifests")
    account = adopt.add_mutually_exclusive_group()
    account.add_argument("--provider-config", help="ProviderConfig name (default PROVIDER-REGION)")
    account.add_argument("--cluster-provider-config", metavar="NAME", help="refer to this ClusterProviderConfig")
    adopt.set_defaults(func=_cmd_adopt)

    _add_plugin_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())

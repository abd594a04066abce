"""Command line: `notebook-operator run | crds | emulator | demo | cloud | adopt`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _cmd_run(args: argparse.Namespace) -> int:
    from notebook_operator.runner import RunOptions, run

    return run(
        RunOptions(
            namespaces=args.namespace or [],
            all_namespaces=args.all_namespaces,
            standalone=args.standalone,
            peering_name=args.peering,
            priority=args.priority,
            liveness_endpoint=args.liveness or None,
            kubeconfig=args.kubeconfig,
            log_format=args.log_format,
            verbose=args.verbose,
            debug=args.debug,
        )
    )


def _cmd_crds(args: argparse.Namespace) -> int:
    from notebook_operator.api.crdgen import write_all

    for path in write_all(Path(args.output)):
        print(path)
    return 0


def _cmd_emulator(args: argparse.Namespace) -> int:
    import logging

    from notebook_operator.cloudsim.auth import Credential
    from notebook_operator.cloudsim.server import EmulatorOptions, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        credentials = [Credential.parse(text) for text in args.credential or []]
    except ValueError as e:
        print(f"notebook-operator emulator: --credential: {e}", file=sys.stderr)
        return 2
    options = EmulatorOptions(
        credentials=credentials,
        iam_tokens=args.iam_token or [],
        time_scale=args.time_scale,
        transition_delay=args.transition_delay,
        state_file=Path(args.state) if args.state else None,
    )
    serve(args.host, args.port, options)
    return 0


def _cmd_demo(_: argparse.Namespace) -> int:
    print("notebook-operator demo: not yet - the demo lands with the 'Ship it' issue.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="notebook-operator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator against the current kubeconfig or in-cluster config")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", help="watch this namespace (repeatable)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    peering = run.add_mutually_exclusive_group()
    peering.add_argument("--standalone", action="store_true", help="no peering: the only operator instance")
    peering.add_argument("--peering", metavar="NAME", help="kopf peering object name (default notebook-operator)")
    run.add_argument("--priority", type=int, default=0, help="peering priority")
    run.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        metavar="URL",
        help="health endpoint to serve ('' to disable)",
    )
    run.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config or in-cluster)")
    run.add_argument("--log-format", choices=["full", "json"], default="full")
    run.add_argument("-v", "--verbose", action="store_true")
    run.add_argument("--debug", action="store_true")
    run.set_defaults(func=_cmd_run)

    crds = sub.add_parser("crds", help="write the CRD YAML generated from the models")
    crds.add_argument("-o", "--output", default="crds", help="directory to write to (default crds/)")
    crds.set_defaults(func=_cmd_crds)

    emulator = sub.add_parser("emulator", help="serve the local PAI-DSW / ModelArts / ROMA Connect emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8765)
    emulator.add_argument(
        "--credential", action="append", metavar="AK:SK[:TOKEN]", help="an accepted access key pair (repeatable)"
    )
    emulator.add_argument("--iam-token", action="append", metavar="TOKEN", help="an accepted Huawei X-Auth-Token")
    emulator.add_argument(
        "--time-scale", type=float, default=1.0, help="emulated seconds per real second (60: a minute a second)"
    )
    emulator.add_argument(
        "--transition-delay", type=float, default=2.0, help="real seconds between two statuses (0: instant)"
    )
    emulator.add_argument("--state", metavar="FILE", help="keep state in this SQLite file across restarts")
    emulator.set_defaults(func=_cmd_emulator)

    demo = sub.add_parser("demo", help="run the local demo")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())

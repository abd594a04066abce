"""The `emulator` and `demo` subcommands of `notebook-operator`, registered through the entry-point
group `notebook_operator.commands` (see devtools/pyproject.toml)."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

SubParsers = Any  # argparse's _SubParsersAction is private


def add_emulator(sub: SubParsers) -> None:
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
    emulator.add_argument(
        "--oidc-jwks", metavar="FILE|URL", help="keyless credentials: the JWKS that signs accepted OIDC tokens"
    )
    emulator.add_argument("--oidc-issuer", help="accept OIDC tokens of this issuer only (default: any the JWKS signs)")
    emulator.add_argument("--oidc-client-id", help="the audience Huawei's identity provider expects")
    emulator.add_argument("--oidc-idp-id", help="the Huawei identity provider id (X-Idp-Id) accepted")
    emulator.add_argument(
        "--oidc-trust",
        action="append",
        default=[],
        metavar="PRINCIPAL=SUB",
        help="trust policy: the RAM role ARN or Huawei identity provider id PRINCIPAL accepts tokens whose sub matches "
        "SUB (exact or with *); repeatable. None given: every verified token is trusted",
    )
    emulator.set_defaults(func=run_emulator)


def run_emulator(args: argparse.Namespace) -> int:
    from notebook_devtools.cloudsim.auth import Credential
    from notebook_devtools.cloudsim.jwt import OidcOptions, trust_entries
    from notebook_devtools.cloudsim.server import EmulatorOptions, serve

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
        oidc=OidcOptions(
            args.oidc_jwks, args.oidc_issuer, args.oidc_client_id, args.oidc_idp_id, trust_entries(args.oidc_trust)
        ),
    )
    serve(args.host, args.port, options)
    return 0


def add_demo(sub: SubParsers) -> None:
    demo = sub.add_parser("demo", help="run the local demo (API server + emulator + operator + samples)")
    demo.add_argument("--bin-dir", default=".cluster/bin", help="where etcd and kube-apiserver are")
    demo.add_argument("--workdir", default=".cluster/demo")
    demo.add_argument("--keep", action="store_true", help="leave everything running and print how to reach it")
    demo.add_argument("--node", action="store_true", help="run a node too: the operator is the chart's pod on it")
    demo.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from notebook_devtools.demo import run

    workdir = Path(args.workdir).resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    return run(Path(args.bin_dir).resolve(), workdir, keep=args.keep, node=args.node)

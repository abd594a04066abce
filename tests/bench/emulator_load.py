"""Load on the emulator's list endpoints with wrk (Debian package `wrk`), printing requests/s.

Huawei SDK-HMAC signatures carry no nonce, so one signed ListNotebooks request can be replayed by
wrk for its 15-minute validity; PAI-DSW requests cannot (their nonce is single-use by design).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from notebook_operator.signing import sdk_hmac
from tests.emulator import HW_KEY, PROJECT, running_emulator


def run(instances: int, seconds: int, connections: int, page: int = 10) -> dict[str, float]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp, running_emulator(Path(tmp), "--transition-delay", "0") as emulator:
        emulator.seed_many(
            [{"cloud": "modelarts", "account": PROJECT, "name": f"nb-{n:05d}"} for n in range(instances)]
        )
        path, query = f"/v1/{PROJECT}/notebooks", [("limit", str(page)), ("offset", "0")]
        headers = {
            "Host": emulator.endpoint,
            "Content-Type": "application/json",
            "X-Project-Id": PROJECT,
            "X-Sdk-Date": datetime.now(UTC).strftime(sdk_hmac.DATE_FORMAT),
        }
        headers["Authorization"] = sdk_hmac.authorization(*HW_KEY, "GET", path, query, headers, b"")
        args = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
        for name, value in headers.items():
            if name != "Host":
                args += ["-H", f"{name}: {value}"]
        output = subprocess.run(
            [*args, f"{emulator.url}{path}?limit={page}&offset=0"], capture_output=True, text=True, check=True
        ).stdout
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
        p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
        assert rate and p99, output
        return {
            "instances": instances,
            "page_size": page,
            "requests_per_s": float(rate.group(1)),
            "p99_ms": float(p99.group(1)) * scale[p99.group(2)],
            "non_2xx": float(errors.group(1)) if errors else 0.0,
        }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--page", type=int, default=10, help="ListNotebooks limit (the API's default is 10)")
    args = parser.parse_args()
    result = run(args.instances, args.seconds, args.connections, args.page)
    print("| emulator figure | value |\n|---|---|")
    for key, value in result.items():
        print(f"| {key} | {value:g} |")
    return 0 if result["non_2xx"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

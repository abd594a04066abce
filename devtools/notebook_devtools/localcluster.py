"""A real kube-apiserver + etcd on loopback, for tests and the demo (what envtest does, in Python).

The binaries are built from the Go module in hack/kube (`make cluster-bins`). This module only
starts and stops them: etcd without fsync, the API server with RBAC authorization, a static
admin token, a service-account signing key (so TokenRequest works) and a kubeconfig.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

ADMIN_USER = "admin"

# What `notebook-operator run --allowed-endpoint` needs for namespaced ProviderConfigs to reach the local emulator.
EMULATOR_ENDPOINTS = r"^http://127\.0\.0\.1:[0-9]+$"


AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"""


class ClusterError(RuntimeError):
    pass


@dataclass
class LocalCluster:
    """A started cluster: where it listens and how to reach it."""

    workdir: Path
    api_port: int
    etcd_port: int
    token: str
    etcd_pid: int
    apiserver_pid: int

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "certs" / "apiserver.crt"

    def save(self) -> None:
        state = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        (self.workdir / "state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, workdir: Path) -> LocalCluster:
        data = json.loads((workdir / "state.json").read_text(encoding="utf-8"))
        data["workdir"] = Path(data["workdir"])
        return cls(**data)

    def is_ready(self) -> bool:
        return _readyz(self.url, self.token, self.ca_file)

    def stop(self, timeout: float = 15.0) -> None:
        for pid in (self.apiserver_pid, self.etcd_pid):
            _terminate(pid, timeout)
        state = self.workdir / "state.json"
        if state.exists():
            state.unlink()


# "LOW-HIGH": pick free ports only in this range. Parallel test workers each get a range of their own, below
# the kernel's ephemeral range, so a port one process has chosen but not yet bound is never handed to another
# worker nor taken by an outgoing connection.
PORT_RANGE_ENV = "NOTEBOOK_DEVTOOLS_PORT_RANGE"


def free_port() -> int:
    """A loopback port nothing listens on now (in $NOTEBOOK_DEVTOOLS_PORT_RANGE when it is set)."""
    spec = os.environ.get(PORT_RANGE_ENV)
    if not spec:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
            return port
    low, high = (int(part) for part in spec.split("-", 1))
    candidates = list(range(low, high + 1))
    random.SystemRandom().shuffle(candidates)  # two processes of one worker rarely try the same port at the same moment
    for candidate in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    raise ClusterError(f"no free port in {PORT_RANGE_ENV}={spec}")


def _terminate(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reaped, _ = os.waitpid(pid, os.WNOHANG)
            if reaped:
                return
        except ChildProcessError:  # not our child: poll for its disappearance instead
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _readyz(url: str, token: str, ca_file: Path) -> bool:
    if not ca_file.exists():
        return False
    context = ssl.create_default_context(cafile=str(ca_file))
    request = urllib.request.Request(f"{url}/readyz", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except (OSError, ssl.SSLError):
        return False


def _service_account_keys(workdir: Path) -> tuple[Path, Path]:
    key, pub = workdir / "sa.key", workdir / "sa.pub"
    if not key.exists():
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        subprocess.run(
            ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True
        )
    return key, pub


def _write_kubeconfig(cluster: LocalCluster) -> None:
    ca = cluster.ca_file.read_bytes()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": cluster.url,
                    "certificate-authority-data": base64.b64encode(ca).decode(),
                },
            }
        ],
        "users": [{"name": ADMIN_USER, "user": {"token": cluster.token}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": ADMIN_USER, "namespace": "default"}}],
        "current-context": "local",
    }
    cluster.kubeconfig.write_text(yaml.safe_dump(config), encoding="utf-8")
    cluster.kubeconfig.chmod(0o600)


def start(bin_dir: Path, workdir: Path, timeout: float = 90.0) -> LocalCluster:
    """Start etcd and kube-apiserver under workdir and wait until /readyz answers."""
    for binary in ("etcd", "kube-apiserver"):
        if not (bin_dir / binary).exists():
            raise ClusterError(f"{bin_dir / binary} is missing: run `make cluster-bins` first")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "certs").mkdir(exist_ok=True)
    token = secrets.token_hex(16)
    (workdir / "tokens.csv").write_text(f'{token},{ADMIN_USER},admin-uid,"system:masters"\n', encoding="utf-8")
    (workdir / "tokens.csv").chmod(0o600)
    sa_key, sa_pub = _service_account_keys(workdir)
    # Requests by service accounts are audited, so a test can see what an operator running as one did.
    (workdir / "audit-policy.yaml").write_text(AUDIT_POLICY, encoding="utf-8")
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()

    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    etcd = subprocess.Popen(
        [
            str(bin_dir / "etcd"),
            "--data-dir",
            str(workdir / "etcd-data"),
            "--listen-client-urls",
            f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer_port}",
            "--initial-cluster",
            f"default=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync",
            "--quota-backend-bytes",
            str(4 * 1024**3),
        ],
        stdout=(logs / "etcd.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    apiserver = subprocess.Popen(
        [
            str(bin_dir / "kube-apiserver"),
            "--etcd-servers",
            f"http://127.0.0.1:{etcd_port}",
            "--bind-address",
            "127.0.0.1",
            "--advertise-address",
            "127.0.0.1",
            "--secure-port",
            str(api_port),
            "--cert-dir",
            str(workdir / "certs"),
            "--service-cluster-ip-range",
            "10.96.0.0/16",
            "--authorization-mode",
            "RBAC",
            "--token-auth-file",
            str(workdir / "tokens.csv"),
            "--service-account-issuer",
            "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file",
            str(sa_pub),
            "--service-account-signing-key-file",
            str(sa_key),
            "--api-audiences",
            "https://kubernetes.default.svc.cluster.local",
            "--allow-privileged",
            "--enable-priority-and-fairness=false",
            "--audit-policy-file",
            str(workdir / "audit-policy.yaml"),
            "--audit-log-path",
            str(workdir / "logs" / "audit.log"),
            "--storage-media-type",
            "application/json",
            "--v",
            "1",
        ],
        stdout=(logs / "kube-apiserver.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    cluster = LocalCluster(workdir, api_port, etcd_port, token, etcd.pid, apiserver.pid)
    cluster.save()
    deadline = time.monotonic() + timeout
    while not cluster.is_ready():
        for proc, name in ((etcd, "etcd"), (apiserver, "kube-apiserver")):
            if proc.poll() is not None:
                cluster.stop()
                tail = (logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise ClusterError(f"{name} exited with {proc.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            cluster.stop()
            raise ClusterError(f"kube-apiserver not ready after {timeout:.0f}s; logs in {logs}")
        time.sleep(0.3)
    _write_kubeconfig(cluster)
    return cluster


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m notebook_devtools.localcluster")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--dir", default=".cluster", help="work directory (kubeconfig lands here)")
    parser.add_argument("--bin-dir", default=".cluster/bin", help="where etcd and kube-apiserver are")
    args = parser.parse_args(argv)
    workdir = Path(args.dir).resolve()
    existing = LocalCluster.load(workdir) if (workdir / "state.json").exists() else None
    if args.action == "down":
        if existing:
            existing.stop()
            print("local cluster stopped")
        return 0
    if existing and existing.is_ready():
        print(f"local cluster already running at {existing.url}; KUBECONFIG={existing.kubeconfig}")
        return 0
    if args.action == "status":
        print("local cluster not running")
        return 1
    if existing:
        existing.stop()
    cluster = start(Path(args.bin_dir).resolve(), workdir)
    print(f"local cluster ready at {cluster.url}\nexport KUBECONFIG={cluster.kubeconfig}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

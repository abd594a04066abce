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
import sys
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
    # Set when the API server serves a node (`node.start`): the machine's address, which pods reach it by.
    node_ip: str = ""

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def node_token(self) -> str:
        """The kubelet's credential: user system:node:<name>, group system:nodes (for the Node authorizer)."""
        return (self.workdir / "node-token").read_text(encoding="utf-8").strip()

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "certs" / "apiserver.crt"

    @property
    def kubelet_ca_file(self) -> Path:
        """The CA of the API server's client certificate: the kubelet trusts it (node=True only)."""
        return self.workdir / "certs" / "kubelet-ca.crt"

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
            terminate(pid, timeout)
        state = self.workdir / "state.json"
        if state.exists():
            state.unlink()


# "LOW-HIGH": pick free ports only in this range. Parallel test workers each get a range of their own, below
# the kernel's ephemeral range, so a port one process has chosen but not yet bound is never handed to another
# worker nor taken by an outgoing connection.
PORT_RANGE_ENV = "NOTEBOOK_DEVTOOLS_PORT_RANGE"


# Ports this process has handed out: one that was chosen but not yet bound (etcd's, then the API server's) is
# not handed out again.
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, on any address, and not handed out before by this process.

    In $NOTEBOOK_DEVTOOLS_PORT_RANGE when it is set. The check binds every address (0.0.0.0): a listener on the
    machine's own address (the node test's emulator, an API server a node's pods reach) also takes the port.
    """
    spec = os.environ.get(PORT_RANGE_ENV)
    if spec:
        low, high = (int(part) for part in spec.split("-", 1))
        candidates = list(range(low, high + 1))
        random.SystemRandom().shuffle(candidates)  # two processes of one worker rarely try one port at one moment
    else:
        candidates = [0] * 64  # the kernel picks
    for candidate in candidates:
        if candidate in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("0.0.0.0", candidate))  # noqa: S104 (only probes; closed at once)
            except OSError:
                continue
            port: int = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise ClusterError(f"no free port in {PORT_RANGE_ENV}={spec}" if spec else "no free port")


def alive(pid: int) -> bool:
    """Whether the process still runs (a child of ours that has exited is reaped here)."""
    with contextlib.suppress(ChildProcessError):  # not our child: its disappearance is all there is to see
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def terminate(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after `timeout` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _readyz(url: str, token: str, ca_file: Path) -> bool:
    if not ca_file.exists():
        return False
    request = urllib.request.Request(f"{url}/readyz", headers={"Authorization": f"Bearer {token}"})
    try:
        # Inside the try: the API server writes its self-signed certificate while this polls, and a file read
        # half-written holds no certificate yet (ssl.SSLError) - not ready, not a failure.
        context = ssl.create_default_context(cafile=str(ca_file))
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


def write_kubeconfig(
    cluster: LocalCluster, path: Path, user: str, token: str, *, server: str | None = None, namespace: str | None = None
) -> Path:
    """A kubeconfig for this cluster (its CA inline) with one user's bearer token: the admin's, the kubelet's, a
    ServiceAccount's. `server` overrides the address (a test's unanswering one)."""
    context: dict[str, str] = {"cluster": "local", "user": user}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": server or cluster.url,
                    "certificate-authority-data": base64.b64encode(cluster.ca_file.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "local", "context": context}],
        "current-context": "local",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path


NODE_NAME = "local-node"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service: the first address of SERVICE_CIDR


def host_ip() -> str:
    """The machine's address on its default route: pods reach the API server (and the emulator) there."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.254", 9))  # no packet is sent: this only asks the kernel for the route's source
        address: str = s.getsockname()[0]
    return address


def _kubelet_client_cert(workdir: Path) -> tuple[Path, Path]:
    """A CA the kubelet trusts (LocalCluster.kubelet_ca_file), and the API server's client certificate and key from
    it (for logs, exec, port-forward)."""
    certs = workdir / "certs"
    ca_key, ca_crt = certs / "kubelet-ca.key", certs / "kubelet-ca.crt"
    key, crt, csr = certs / "apiserver-kubelet-client.key", certs / "apiserver-kubelet-client.crt", certs / "client.csr"
    if crt.exists():
        return crt, key

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca_crt),
        "-days",
        "365",
        "-subj",
        "/CN=notebook-operator-local-kubelet-ca",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/O=system:masters/CN=kube-apiserver-kubelet-client",
    )
    openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_crt),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(crt),
        "-days",
        "365",
    )
    return crt, key


def _serving_cert(workdir: Path, node_ip: str) -> tuple[Path, Path]:
    """The API server's self-signed certificate for every name it is reached by: loopback, the machine's
    address (the kubelet), the `kubernetes` Service's IP and names (pods). Its own generated one, once it
    listens beyond loopback, is valid for the advertised address only."""
    crt, key = workdir / "certs" / "apiserver.crt", workdir / "certs" / "apiserver.key"
    names = [f"IP:{ip}" for ip in ("127.0.0.1", node_ip, SERVICE_IP)] + [
        f"DNS:{name}" for name in ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                                   "kubernetes.default.svc.cluster.local")
    ]  # fmt: skip
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
         "-days", "365", "-subj", "/CN=kube-apiserver", "-addext", "subjectAltName=" + ",".join(names)],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt, key


def start(bin_dir: Path, workdir: Path, timeout: float = 90.0, *, node: bool = False) -> LocalCluster:
    """Start etcd and kube-apiserver under workdir and wait until /readyz answers.

    With node=True the API server also serves a kubelet (notebook_devtools.node): it listens on every address
    and advertises the machine's own (pods reach it through the `kubernetes` Service), authorizes kubelets with
    the Node authorizer, and reaches them with a client certificate.
    """
    for binary in ("etcd", "kube-apiserver"):
        if not (bin_dir / binary).exists():
            raise ClusterError(f"{bin_dir / binary} is missing: run `make cluster-bins` first")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "certs").mkdir(exist_ok=True)
    token, node_token = secrets.token_hex(16), secrets.token_hex(16)
    (workdir / "tokens.csv").write_text(
        f'{token},{ADMIN_USER},admin-uid,"system:masters"\n'
        f'{node_token},system:node:{NODE_NAME},node-uid,"system:nodes"\n',
        encoding="utf-8",
    )
    (workdir / "node-token").write_text(node_token, encoding="utf-8")
    (workdir / "node-token").chmod(0o600)
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
    node_ip = host_ip() if node else ""
    node_flags: list[str] = []
    if node:
        kubelet_client_crt, kubelet_client_key = _kubelet_client_cert(workdir)
        serving_crt, serving_key = _serving_cert(workdir, node_ip)
        node_flags = [
            "--tls-cert-file", str(serving_crt),
            "--tls-private-key-file", str(serving_key),
            "--kubelet-client-certificate", str(kubelet_client_crt),
            "--kubelet-client-key", str(kubelet_client_key),
            "--enable-admission-plugins", "NodeRestriction",
            "--kubelet-preferred-address-types", "InternalIP,Hostname",
        ]  # fmt: skip
    apiserver = subprocess.Popen(
        [
            str(bin_dir / "kube-apiserver"),
            "--etcd-servers",
            f"http://127.0.0.1:{etcd_port}",
            "--bind-address",
            # A node's pods reach the API server at the machine's address (through the `kubernetes` Service).
            "0.0.0.0" if node else "127.0.0.1",  # noqa: S104
            "--advertise-address",
            node_ip or "127.0.0.1",
            "--secure-port",
            str(api_port),
            "--cert-dir",
            str(workdir / "certs"),
            "--service-cluster-ip-range",
            SERVICE_CIDR,
            "--authorization-mode",
            "Node,RBAC" if node else "RBAC",
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
            *node_flags,
        ],
        stdout=(logs / "kube-apiserver.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    cluster = LocalCluster(workdir, api_port, etcd_port, token, etcd.pid, apiserver.pid, node_ip)
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
    write_kubeconfig(cluster, cluster.kubeconfig, ADMIN_USER, cluster.token, namespace="default")
    return cluster


def main(argv: list[str] | None = None) -> int:
    import argparse

    from notebook_devtools import node as local_node

    parser = argparse.ArgumentParser(prog="python -m notebook_devtools.localcluster")
    parser.add_argument("action", choices=["up", "down", "status", "node"])
    parser.add_argument("--dir", default=".cluster", help="work directory (kubeconfig lands here)")
    parser.add_argument("--bin-dir", default=".cluster/bin", help="where etcd and kube-apiserver are")
    parser.add_argument("--node", action="store_true", help="up: also start a node (containerd, kubelet, ...)")
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        type=Path,
        help="a docker-archive to import into the node (repeatable; when the file exists)",
    )
    args = parser.parse_args(argv)
    workdir = Path(args.dir).resolve()
    bin_dir = Path(args.bin_dir).resolve()
    node_dir = workdir / "node"
    existing = LocalCluster.load(workdir) if (workdir / "state.json").exists() else None
    if args.action == "down":
        left = local_node.stop(node_dir, bin_dir)
        if left:
            print("local node stopped, but these are left:\n  " + "\n  ".join(left), file=sys.stderr)
        if existing:
            existing.stop()
            print("local cluster stopped")
        return 1 if left else 0
    want_node = args.node or args.action == "node"
    if want_node:
        try:
            local_node.check_host(bin_dir)
        except local_node.NodeUnavailable as exc:
            print(f"no local node: {exc}", file=sys.stderr)
            return 2
    if args.action == "status":
        running = existing is not None and existing.is_ready()
        print(f"local cluster running at {existing.url}" if running and existing else "local cluster not running")
        return 0 if running else 1
    if existing and existing.is_ready() and (existing.node_ip or not want_node):
        cluster = existing
        print(f"local cluster already running at {existing.url}; KUBECONFIG={existing.kubeconfig}")
    else:
        if existing:  # not answering, or started without a node's flags: start again (etcd's data is kept)
            existing.stop()
        cluster = start(bin_dir, workdir, node=want_node)
        print(f"local cluster ready at {cluster.url}\nexport KUBECONFIG={cluster.kubeconfig}")
    if want_node and local_node.LocalNode.load(node_dir) is None:
        versions = local_node.package_versions()
        print("Debian packages: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
        began = time.monotonic()
        images = [image.resolve() for image in args.image if image.exists()]
        local_node.start(cluster, bin_dir, node_dir, images)
        print(
            f"node {NODE_NAME} Ready in {time.monotonic() - began:.0f}s (images imported: "
            f"{', '.join(str(i) for i in images) or 'none; make image imports the operator'})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

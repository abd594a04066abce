"""A real Kubernetes node beside the local API server: containerd, kubelet, kube-proxy, scheduler, controllers.

`make cluster NODE=1` (or `make node` on a running cluster) starts it; `make cluster-down` stops it and removes
everything it made on the machine: processes (by PID), mounts under its work directory, the pods' network
namespaces, its bridge, its iptables chains, and the ip_forward setting it changed. The Kubernetes binaries
come from hack/build-node.sh (the same Go module as the API server); containerd, runc, the CNI plugins and
iptables come from Debian's packages (hack/node-packages.sh installs them and prints their versions).

It needs root and cgroups; `check_host()` says what is missing. Facts this rests on (each found by hand on
these machines) are in the project's real-node notes: containerd must not lower oom_score_adj, the kubelet
must be told cgroup v1 is fine, pods need ip_forward and kube-proxy's rules to reach the API server.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shlex
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from notebook_devtools import localcluster

BRIDGE = "nbop0"
POD_SUBNET = "10.244.0.0/24"
PAUSE_IMAGE = "localhost/notebook-operator-pause:1"
CNI_BIN_DIR = Path("/usr/lib/cni")
NETNS_DIR = Path("/run/netns")
RUN_ROOT = Path("/run")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
NODE_BINARIES = ("kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy", "pause")
# The order they stop in: nothing schedules or restarts pods while the runtime's containers are removed.
COMPONENTS = ("kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "containerd")
DEBIAN_PACKAGES = ("containerd", "runc", "containernetworking-plugins", "iptables", "buildah", "mmdebstrap")


class NodeUnavailable(RuntimeError):
    """This machine cannot run a node (not root, no cgroups, a package missing): the message says which."""


class NodeError(RuntimeError):
    pass


def check_host(bin_dir: Path) -> None:
    """Raise NodeUnavailable naming the first thing a node needs that this machine lacks."""
    if os.geteuid() != 0:
        raise NodeUnavailable("a local node needs root (containerd, network namespaces, iptables): run as root")
    if not Path("/sys/fs/cgroup/memory").is_dir() and not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        raise NodeUnavailable("a local node needs cgroups (no memory controller under /sys/fs/cgroup)")
    for tool in ("containerd", "ctr", "runc", "iptables", "ip"):
        if shutil.which(tool) is None:
            raise NodeUnavailable(f"{tool} is missing: run hack/node-packages.sh (Debian packages, as root)")
    if not (CNI_BIN_DIR / "bridge").exists():
        raise NodeUnavailable(f"no CNI plugins in {CNI_BIN_DIR}: apt-get install containernetworking-plugins")
    for binary in NODE_BINARIES:
        if not (bin_dir / binary).exists():
            raise NodeUnavailable(f"{bin_dir / binary} is missing: run hack/build-node.sh (make node-bins)")


@dataclass
class LocalNode:
    workdir: Path
    pids: dict[str, int] = field(default_factory=dict)
    netns_before: list[str] = field(default_factory=list)
    ip_forward_before: str = "0"

    @property
    def run_dir(self) -> Path:
        """containerd's socket and state, the kubelet's root: short paths under /run, because unix sockets take
        at most 107 bytes of path and a work directory (a clone's, pytest's) may be long. One per work directory."""
        return RUN_ROOT / ("nbop-" + hashlib.sha256(str(self.workdir).encode()).hexdigest()[:10])

    @property
    def containerd_socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    def save(self) -> None:
        state = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        (self.workdir / "node.json").write_text(json.dumps(state, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, workdir: Path) -> LocalNode | None:
        path = workdir / "node.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        data["workdir"] = Path(data["workdir"])
        return cls(**data)

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", "--address", str(self.containerd_socket), "-n", "k8s.io", *args],
            check=check, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def import_image(self, archive: Path) -> None:
        """Import a docker-archive into the node's image store (what `kind load docker-image` does)."""
        self.ctr("images", "import", str(archive))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def pause_archive(bin_dir: Path, path: Path) -> Path:
    """The sandbox image as a docker-archive: one layer holding the static `pause` binary, FROM scratch."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tar.gettarinfo(str(bin_dir / "pause"), arcname="pause")
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        with (bin_dir / "pause").open("rb") as binary:
            tar.addfile(info, binary)
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/pause"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }).encode()  # fmt: skip
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [PAUSE_IMAGE], "Layers": ["layer.tar"]}]).encode()
    with tarfile.open(path, mode="w") as archive:
        for name, data in (("layer.tar", layer_bytes), (config_name, config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _containerd_config(node: LocalNode) -> Path:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    workdir = node.workdir
    return _write(
        workdir / "containerd" / "config.toml",
        f"""version = 2
root = "{workdir}/containerd/root"
state = "{node.run_dir}/containerd-state"
[grpc]
  address = "{node.containerd_socket}"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  # These machines drop CAP_SYS_RESOURCE: containerd must not give the sandbox a lower oom_score_adj.
  restrict_oom_score_adj = true
[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{workdir}/cni"
[{cri}.containerd]
  snapshotter = "overlayfs"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
""",
    )


def _cni_config(workdir: Path) -> None:
    bridge = {
        "type": "bridge",
        "bridge": BRIDGE,
        "isGateway": True,
        "ipMasq": True,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": POD_SUBNET}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": str(workdir / "cni-ipam"),
        },
    }
    conflist = {"cniVersion": "0.4.0", "name": "notebook-operator-local", "plugins": [
        bridge, {"type": "portmap", "capabilities": {"portMappings": True}},
    ]}  # fmt: skip
    _write(workdir / "cni" / "10-notebook-operator.conflist", json.dumps(conflist, indent=2))


def _kubelet_config(cluster: localcluster.LocalCluster, node: LocalNode) -> Path:
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(cluster.kubelet_ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{node.containerd_socket}",
        # cgroup v1 hierarchies here: kubelet 1.36 refuses them unless told.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "healthzBindAddress": "127.0.0.1",
        "readOnlyPort": 0,
        "clusterDomain": "cluster.local",
        "resolvConf": "/etc/resolv.conf",
        "serializeImagePulls": False,
        # A shared build machine: its disk is never this node's alone, so only evict when it is nearly full,
        # and never collect the images `make image` imported (nothing could pull them back).
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
    }
    return _write(node.workdir / "kubelet" / "config.yaml", yaml.safe_dump(config))


def _spawn(workdir: Path, name: str, argv: list[str]) -> int:
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        argv, stdout=(logs / f"{name}.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    return process.pid


def _log_tail(workdir: Path, name: str) -> str:
    path = workdir / "logs" / f"{name}.log"
    return path.read_text(errors="replace")[-1500:] if path.exists() else ""


def _wait(what: str, ready: Callable[[], bool], node: LocalNode, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        for name, pid in node.pids.items():
            if not localcluster.alive(pid):
                raise NodeError(f"{name} exited while waiting for {what}:\n{_log_tail(node.workdir, name)}")
        if time.monotonic() > deadline:
            raise NodeError(f"{what} not after {timeout:.0f}s; logs in {node.workdir / 'logs'}")
        time.sleep(0.5)


def package_versions() -> dict[str, str]:
    """The Debian package versions the node runs on (printed at start: they are not pinned by this repo)."""
    versions = {}
    for package in DEBIAN_PACKAGES:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, check=False
        )
        versions[package] = result.stdout.strip() if result.returncode == 0 else "not installed"
    return versions


def _node_ready(kubectl: list[str]) -> bool:
    result = subprocess.run(
        [*kubectl, "get", "node", localcluster.NODE_NAME, "-o",
         "jsonpath={.status.conditions[?(@.type=='Ready')].status}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.stdout.strip() == "True"


def start(
    cluster: localcluster.LocalCluster, bin_dir: Path, workdir: Path, images: list[Path], timeout: float = 120.0
) -> LocalNode:
    """Start containerd, the control-plane controllers and a kubelet; import images; wait for the node Ready."""
    check_host(bin_dir)
    if not cluster.node_ip:
        raise NodeError("the API server was started without node=True: it does not advertise an address pods reach")
    if LocalNode.load(workdir):
        raise NodeError(f"a node already runs from {workdir}: make cluster-down first")
    if Path(f"/sys/class/net/{BRIDGE}").exists():  # one node per machine: its bridge, ports and chains are fixed
        raise NodeError(f"another local node runs on this machine (bridge {BRIDGE} exists): make cluster-down first")
    workdir.mkdir(parents=True, exist_ok=True)
    node = LocalNode(
        workdir=workdir,
        netns_before=sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.exists() else [],
        ip_forward_before=IP_FORWARD.read_text().strip(),
    )
    node.save()
    try:
        _start(node, cluster, bin_dir, images, timeout)
    except BaseException:
        stop(workdir)
        raise
    return node


def _start(
    node: LocalNode, cluster: localcluster.LocalCluster, bin_dir: Path, images: list[Path], timeout: float
) -> None:
    workdir = node.workdir
    IP_FORWARD.write_text("1")  # pod traffic is routed through this machine
    admin = localcluster.write_kubeconfig(cluster, workdir / "admin.kubeconfig", localcluster.ADMIN_USER, cluster.token)
    kubelet_kubeconfig = localcluster.write_kubeconfig(
        cluster, workdir / "kubelet.kubeconfig", f"system:node:{localcluster.NODE_NAME}", cluster.node_token
    )
    kubectl = [str(bin_dir / "kubectl"), "--kubeconfig", str(admin)]

    node.run_dir.mkdir(mode=0o700, exist_ok=True)
    # Where `make image` finds the socket to import into (hack/build-image.sh).
    _write(workdir / "containerd.address", str(node.containerd_socket))
    containerd_config = _containerd_config(node)
    node.pids["containerd"] = _spawn(workdir, "containerd", ["containerd", "--config", str(containerd_config)])
    node.save()
    _cni_config(workdir)
    _wait("containerd", lambda: node.ctr("version", check=False).returncode == 0, node, 30)
    node.import_image(pause_archive(bin_dir, workdir / "pause.tar"))
    for image in images:
        node.import_image(image)

    node.pids["kube-controller-manager"] = _spawn(workdir, "kube-controller-manager", [
        str(bin_dir / "kube-controller-manager"), "--kubeconfig", str(admin),
        "--service-account-private-key-file", str(cluster.workdir / "sa.key"),
        "--root-ca-file", str(cluster.ca_file), "--use-service-account-credentials=false",
        "--controllers=*,-bootstrapsigner,-tokencleaner", "--leader-elect=false", "--secure-port=0", "--v=1",
    ])  # fmt: skip
    node.pids["kube-scheduler"] = _spawn(workdir, "kube-scheduler", [
        str(bin_dir / "kube-scheduler"), "--kubeconfig", str(admin), "--leader-elect=false", "--secure-port=0",
        "--v=1",
    ])  # fmt: skip
    node.pids["kube-proxy"] = _spawn(workdir, "kube-proxy", [
        str(bin_dir / "kube-proxy"), "--kubeconfig", str(admin), "--hostname-override", localcluster.NODE_NAME,
        "--proxy-mode", "iptables", "--cluster-cidr", POD_SUBNET, "--conntrack-max-per-core=0",
        "--metrics-bind-address", "127.0.0.1:10249", "--healthz-bind-address", "127.0.0.1:10256", "--v=1",
    ])  # fmt: skip
    node.pids["kubelet"] = _spawn(workdir, "kubelet", [
        str(bin_dir / "kubelet"), "--config", str(_kubelet_config(cluster, node)),
        "--kubeconfig", str(kubelet_kubeconfig), "--hostname-override", localcluster.NODE_NAME,
        "--node-ip", cluster.node_ip, "--root-dir", str(node.run_dir / "kubelet"),
        "--cert-dir", str(workdir / "kubelet" / "pki"), "--v=1",
    ])  # fmt: skip
    node.save()
    _wait(f"node {localcluster.NODE_NAME} Ready", lambda: _node_ready(kubectl), node, timeout)


# --- teardown -----------------------------------------------------------------------------------------------


def _remove_containers(node: LocalNode) -> None:
    """Kill every container the node's containerd runs (through its shims), then delete them."""
    for task in node.ctr("tasks", "ls", "-q", check=False).stdout.split():
        node.ctr("tasks", "kill", "--all", "-s", "SIGKILL", task, check=False)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        # containerd's CRI deletes some of them itself once they exit: only what is still listed is left to delete
        listed = node.ctr("tasks", "ls", check=False).stdout.splitlines()[1:]
        stopped = [line.split()[0] for line in listed if line.split()[-1] == "STOPPED"]
        for task in stopped:
            node.ctr("tasks", "delete", task, check=False)
        if len(stopped) == len(listed):
            break
        time.sleep(0.2)
    for container in node.ctr("containers", "ls", "-q", check=False).stdout.split():
        node.ctr("containers", "delete", container, check=False)


def _shim_pids(socket: Path) -> list[int]:
    """containerd-shim processes serving this node's containerd (their command line names its socket)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"containerd-shim" in argv[0] and str(socket).encode() in argv:
            pids.append(int(proc.name))
    return pids


def _our_mounts(node: LocalNode, netns: list[Path]) -> list[str]:
    """Mount points under the node's directories, or of its pods' network namespaces; deepest first."""
    prefixes = (str(node.workdir) + "/", str(node.run_dir) + "/")
    names = {str(path) for path in netns}
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefixes) or point in names:
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def _new_netns(node: LocalNode) -> list[Path]:
    if not NETNS_DIR.exists():
        return []
    return [p for p in NETNS_DIR.iterdir() if p.name.startswith("cni-") and p.name not in node.netns_before]


IPTABLES = ("iptables", "ip6tables")
CHAIN_PREFIXES = ("KUBE-", "CNI-")  # kube-proxy's and the kubelet's chains; the CNI bridge and portmap plugins'


def _iptables_chains() -> dict[tuple[str, str], list[str]]:
    """Our chains per (tool, table)."""
    found: dict[tuple[str, str], list[str]] = {}
    for tool in IPTABLES:
        for table in ("nat", "filter", "mangle"):
            result = subprocess.run([tool, "-t", table, "-S"], capture_output=True, text=True, check=False)
            chains = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("-N ")]
            ours = [chain for chain in chains if chain.startswith(CHAIN_PREFIXES)]
            if ours:
                found[(tool, table)] = ours
    return found


def _remove_chains() -> None:
    """Remove the jumps into our chains from the built-in ones, then flush and delete our chains."""
    for (tool, table), chains in _iptables_chains().items():
        rules = subprocess.run([tool, "-t", table, "-S"], capture_output=True, text=True).stdout.splitlines()
        for rule in rules:
            words = shlex.split(rule)  # the CNI plugins' comments are quoted
            jumps_to_ours = "-j" in words and words[words.index("-j") + 1].startswith(CHAIN_PREFIXES)
            if words[:1] == ["-A"] and not words[1].startswith(CHAIN_PREFIXES) and jumps_to_ours:
                subprocess.run([tool, "-t", table, "-D", *words[1:]], capture_output=True)
        for chain in chains:
            subprocess.run([tool, "-t", table, "-F", chain], capture_output=True)
        for chain in chains:
            subprocess.run([tool, "-t", table, "-X", chain], capture_output=True)


def _remove_pod_cgroups() -> None:
    for root in Path("/sys/fs/cgroup").iterdir():
        kubepods = root / "kubepods"
        if not kubepods.is_dir():
            continue
        for path in sorted(kubepods.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir():
                with contextlib.suppress(OSError):
                    path.rmdir()
        with contextlib.suppress(OSError):
            kubepods.rmdir()


def stop(workdir: Path, bin_dir: Path | None = None) -> list[str]:
    """Stop the node started from workdir and remove what it made. Returns what could not be removed."""
    node = LocalNode.load(workdir)
    if node is None:
        return []
    for name in COMPONENTS[:3]:  # controllers, scheduler, kubelet: nothing restarts a pod from here on
        if name in node.pids:
            localcluster.terminate(node.pids[name])
    if "containerd" in node.pids and localcluster.alive(node.pids["containerd"]):
        _remove_containers(node)
    for name in COMPONENTS[3:]:
        if name in node.pids:
            localcluster.terminate(node.pids[name])
    for pid in _shim_pids(node.containerd_socket):
        localcluster.terminate(pid, timeout=5)
    netns = _new_netns(node)
    for point in _our_mounts(node, netns):
        subprocess.run(["umount", "--lazy", point], capture_output=True)
    for path in netns:
        with contextlib.suppress(OSError):
            path.unlink()
    subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True)
    if bin_dir and (bin_dir / "kube-proxy").exists():  # its own cleanup knows every chain and rule it made
        subprocess.run([str(bin_dir / "kube-proxy"), "--cleanup"], capture_output=True, timeout=60)
    _remove_chains()
    _remove_pod_cgroups()
    IP_FORWARD.write_text(node.ip_forward_before)
    left = leftovers(node)
    if not left:
        shutil.rmtree(node.run_dir, ignore_errors=True)
        (workdir / "node.json").unlink()
    return left


def leftovers(node: LocalNode) -> list[str]:
    """What of the node is still on the machine (empty after a clean stop): processes, mounts, netns, links, chains."""
    left = [f"process {name} (pid {pid})" for name, pid in node.pids.items() if localcluster.alive(pid)]
    left += [f"containerd-shim (pid {pid})" for pid in _shim_pids(node.containerd_socket)]
    netns = _new_netns(node)
    left += [f"mount {point}" for point in _our_mounts(node, netns)]
    left += [f"network namespace {path.name}" for path in netns]
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        left.append(f"bridge {BRIDGE}")
    for (tool, table), chains in _iptables_chains().items():
        left.append(f"{tool} chains in {table}: {', '.join(chains)}")
    return left

#!/usr/bin/env bash
# Build a node's Kubernetes commands (kubelet, kube-controller-manager, kube-scheduler, kube-proxy) and the
# pod sandbox binary `pause` from the Go module in hack/kube into $1 (default .cluster/bin). Same module,
# same go.sum as the API server; rebuilt only when the module changes (a stamp file records its hash).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/.cluster/bin}
mod=$root/hack/kube
mkdir -p "$out"
out=$(cd "$out" && pwd)
stamp=$(cat "$mod/go.mod" "$mod/go.sum" "$mod/pause/main.go" "$0" "$root/hack/kube-ldflags.sh" | sha256sum | cut -d' ' -f1)
bins="kubelet kube-controller-manager kube-scheduler kube-proxy pause"
fresh=1
for b in $bins; do [ -x "$out/$b" ] || fresh=0; done
if [ "$fresh" = 1 ] && [ -f "$out/.node-stamp" ] && [ "$(cat "$out/.node-stamp")" = "$stamp" ]; then
  exit 0
fi
command -v go >/dev/null || { echo "Go is needed to build the local node (https://go.dev/dl)" >&2; exit 1; }
. "$root/hack/kube-ldflags.sh"
echo "building kubelet, kube-controller-manager, kube-scheduler, kube-proxy $kver (first time: about 2 min more)..." >&2
cd "$mod"
GOFLAGS=-mod=readonly go build -trimpath -ldflags "$kube_ldflags" -o "$out/" \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy
# The sandbox image runs FROM scratch: a static binary, no libc.
CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w" -o "$out/pause" ./pause
echo "$stamp" > "$out/.node-stamp"
"$out/kubelet" --version >&2

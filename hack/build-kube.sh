#!/usr/bin/env bash
# Build etcd, kube-apiserver and kubectl from the Go module in hack/kube into $1 (default .cluster/bin).
# Rebuilt only when the module (go.mod, go.sum, etcd/main.go) changes: a stamp file records its hash.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/.cluster/bin}
mod=$root/hack/kube
mkdir -p "$out"
out=$(cd "$out" && pwd)
stamp=$(cat "$mod/go.mod" "$mod/go.sum" "$mod/etcd/main.go" "$0" "$root/hack/kube-ldflags.sh" | sha256sum | cut -d' ' -f1)
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] \
   && [ -x "$out/etcd" ] && [ -x "$out/kube-apiserver" ] && [ -x "$out/kubectl" ]; then
  exit 0
fi
command -v go >/dev/null || { echo "Go is needed to build the local cluster (https://go.dev/dl)" >&2; exit 1; }
. "$root/hack/kube-ldflags.sh"
echo "building etcd, kube-apiserver and kubectl $kver from the Go module proxy (first time: 10-25 min)..." >&2
cd "$mod"
GOFLAGS=-mod=readonly go build -trimpath -ldflags "$kube_ldflags" -o "$out/" \
  ./etcd k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
echo "$stamp" > "$out/.stamp"
"$out/kubectl" version --client >&2

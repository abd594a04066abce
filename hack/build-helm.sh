#!/usr/bin/env bash
# Build Helm v3 from the Go module in hack/helm (versions pinned by its go.sum) into $1 (default .cluster/bin).
# Rebuilt only when the module changes: a stamp file records its hash.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/.cluster/bin}
mod=$root/hack/helm
mkdir -p "$out"
out=$(cd "$out" && pwd)
stamp=$(cat "$mod/go.mod" "$mod/go.sum" "$0" | sha256sum | cut -d' ' -f1)
if [ -f "$out/.helm-stamp" ] && [ "$(cat "$out/.helm-stamp")" = "$stamp" ] && [ -x "$out/helm" ]; then
  exit 0
fi
command -v go >/dev/null || { echo "Go is needed to build Helm (https://go.dev/dl)" >&2; exit 1; }
hver=$(awk '$1 == "require" && $2 == "helm.sh/helm/v3" {print $3}' "$mod/go.mod" | head -n1)
# Like Helm's Makefile: the Kubernetes version it assumes offline is that of its client-go (v0.X -> 1.X).
kminor=$(awk '$1 == "k8s.io/client-go" {print $2}' "$mod/go.mod" | sed -E 's/^v0\.([0-9]+)\..*/\1/')
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$hver"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags="$ldflags -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$kminor"
done
echo "building helm $hver from the Go module proxy (first time: a few minutes)..." >&2
cd "$mod"
GOFLAGS=-mod=readonly go build -trimpath -ldflags "$ldflags" -o "$out/helm" helm.sh/helm/v3/cmd/helm
echo "$stamp" > "$out/.helm-stamp"
"$out/helm" version --short >&2

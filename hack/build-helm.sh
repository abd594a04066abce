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
echo "building helm $hver from the Go module proxy (first time: a few minutes)..." >&2
cd "$mod"
GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$hver" \
  -o "$out/helm" helm.sh/helm/v3/cmd/helm
echo "$stamp" > "$out/.helm-stamp"
"$out/helm" version --short >&2

#!/usr/bin/env bash
# Build promtool (Prometheus' rule checker and tester) from the Go module in hack/promtool (versions pinned by
# its go.sum) into $1 (default .cluster/bin). Rebuilt only when the module changes: a stamp records its hash.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/.cluster/bin}
mod=$root/hack/promtool
mkdir -p "$out"
out=$(cd "$out" && pwd)
stamp=$(cat "$mod/go.mod" "$mod/go.sum" "$0" | sha256sum | cut -d' ' -f1)
if [ -f "$out/.promtool-stamp" ] && [ "$(cat "$out/.promtool-stamp")" = "$stamp" ] && [ -x "$out/promtool" ]; then
  exit 0
fi
command -v go >/dev/null || { echo "Go is needed to build promtool (https://go.dev/dl)" >&2; exit 1; }
echo "building promtool from the Go module proxy (first time: about 4 minutes)..." >&2
cd "$mod"
GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w" -o "$out/promtool" github.com/prometheus/prometheus/cmd/promtool
echo "$stamp" > "$out/.promtool-stamp"
"$out/promtool" --version 2>&1 | head -n1 >&2

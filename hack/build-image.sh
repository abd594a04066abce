#!/usr/bin/env bash
# `make image`: build the Dockerfile without a Docker daemon (Debian's buildah), on a Debian bookworm base
# made by mmdebstrap (no registry is reachable here, so FROM names that local base through PYTHON_IMAGE).
# Tags the image with the chart's repository and appVersion, writes it as a docker archive, and imports it
# into the local node's containerd when one runs, so the chart runs it with image.pullPolicy=Never.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$root/.cluster/image
mkdir -p "$work"
[ "$(id -u)" = 0 ] || { echo "make image: buildah here runs as root (its storage is /var/lib/containers); run as root" >&2; exit 1; }
for tool in buildah mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "make image: $tool is missing: apt-get install buildah mmdebstrap (hack/node-packages.sh does)" >&2; exit 1; }
done
repo=$(awk '/^image:/ {i=1} i && $1 == "repository:" {print $2; exit}' "$root/charts/notebook-operator/values.yaml")
version=$(awk '$1 == "appVersion:" {gsub(/"/, "", $2); print $2}' "$root/charts/notebook-operator/Chart.yaml")
image=$repo:$version
base=localhost/notebook-operator-python:bookworm
packages=python3,python3-venv,python-is-python3,passwd,ca-certificates
# No manuals, docs (but their copyright files) or translations: a runtime base, as the python slim images are.
trim=(--dpkgopt=path-exclude=/usr/share/man/* --dpkgopt=path-exclude=/usr/share/doc/*
      --dpkgopt=path-include=/usr/share/doc/*/copyright --dpkgopt=path-exclude=/usr/share/locale/*
      --dpkgopt=path-exclude=/usr/share/info/*)
recipe="$packages ${trim[*]}"

# The base: made once (about 2 minutes), kept in buildah's store; remade when its recipe changes.
if [ "$(cat "$work/base.stamp" 2>/dev/null)" != "$recipe" ] || ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  echo "making the base $base with mmdebstrap (bookworm: $packages)..." >&2
  mmdebstrap --quiet --variant=minbase "${trim[@]}" --include="$packages" bookworm "$work/base.tar"
  ctr=$(buildah from scratch)
  buildah add --quiet "$ctr" "$work/base.tar" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd python3 "$ctr"
  buildah commit --quiet --rm "$ctr" "$base" >/dev/null
  rm -f "$work/base.tar"
  echo "$recipe" > "$work/base.stamp"
fi

# Where the build machine trusts a custom CA bundle (its pip reaches PyPI through a TLS proxy), the build stage
# is given it as a build secret: pip uses it, and no layer of the image keeps it.
cert=${PIP_CERT:-${SSL_CERT_FILE:-}}
if [ -z "$cert" ] && [ -f /etc/pip.conf ]; then
  cert=$(awk -F' *= *' '$1 == "cert" {print $2; exit}' /etc/pip.conf)
fi
secret=()
if [ -n "$cert" ] && [ -f "$cert" ]; then secret=(--secret "id=pipcert,src=$cert"); fi

echo "building $image from Dockerfile (base $base)..." >&2
start=$(date +%s)
buildah bud --quiet --pull-never --network host --layers --isolation chroot "${secret[@]}" \
  --build-arg PYTHON_IMAGE="$base" -t "$image" -f "$root/Dockerfile" "$root" >/dev/null
rm -f "$work/image.tar"
buildah push --quiet "$image" "docker-archive:$work/image.tar:$image"
size=$(buildah images --format '{{.Size}}' "$image" | head -n1)
echo "image $image built in $(( $(date +%s) - start )) s: $size (archive $(du -h "$work/image.tar" | cut -f1))"

sock=$(cat "$root/.cluster/node/containerd.address" 2>/dev/null || true)
if [ -n "$sock" ] && [ -S "$sock" ]; then
  ctr --address "$sock" -n k8s.io images import --no-unpack=false "$work/image.tar" >/dev/null
  echo "imported into the local node: helm install ... --set image.pullPolicy=Never"
else
  echo "no local node runs (make cluster NODE=1): the image is in $work/image.tar"
fi

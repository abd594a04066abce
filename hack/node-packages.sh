#!/usr/bin/env bash
# The Debian packages a local node and `make image` run on: containerd, runc, the CNI plugins, iptables,
# buildah and mmdebstrap. Installs what is missing (as root, with apt-get) and prints the versions in use:
# Debian's stable point releases move them, so they are printed rather than pinned.
set -euo pipefail
packages=(containerd runc containernetworking-plugins iptables conntrack buildah mmdebstrap)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})" >&2
    exit 2
  fi
  echo "installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for p in "${packages[@]}"; do printf '%s=%s ' "$p" "$(dpkg-query -W -f '${Version}' "$p")"; done; echo

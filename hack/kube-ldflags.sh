# Sourced by build-kube.sh and build-node.sh, with $mod the Go module in hack/kube: sets kver (the module's
# k8s.io/kubernetes version) and kube_ldflags, which stamp that version into the binaries as Kubernetes' own
# build does (so `kubectl version` and the node report it).
kver=$(awk '$1 == "k8s.io/kubernetes" {print $2}' "$mod/go.mod" | head -n1)
major=$(echo "$kver" | sed -E 's/^v([0-9]+)\..*/\1/')
minor=$(echo "$kver" | sed -E 's/^v[0-9]+\.([0-9]+)\..*/\1/')
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags="$kube_ldflags -X $pkg.gitVersion=$kver -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  kube_ldflags="$kube_ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

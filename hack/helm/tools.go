//go:build tools

// Package tools pins Helm so `go build helm.sh/helm/v3/cmd/helm` uses the versions in go.sum.
package tools

import _ "helm.sh/helm/v3/cmd/helm"

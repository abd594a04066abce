//go:build tools

// Package tools pins promtool (Prometheus' rule checker and tester) for hack/build-promtool.sh.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"

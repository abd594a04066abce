# notebook-operator. `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := .cluster/bin
KUBE_BINS := $(BIN)/etcd $(BIN)/kube-apiserver $(BIN)/kubectl
PYTEST_ARGS ?=
# The integration and e2e tests wait on real clocks far more than they compute: eight workers overlap the
# waits on 2 cores. Each worker has its own API server, etcd and emulator (tests/conftest.py).
TEST_WORKERS ?= 8
PARALLEL := -n $(TEST_WORKERS) --dist load --maxschedchunk 1

.PHONY: help venv cluster-bins node-bins node-packages image node cluster cluster-down crds manifests lint test \
	test-unit test-integration test-e2e demo bench clean
# NODE=1: `make cluster` and `make demo` also run a node (containerd + kubelet): pods run, the chart installs for
# real. Needs root and cgroups. NODE_TESTS=required (set by .ci/run) fails the node tests instead of skipping them.
NODE ?=
NODE_TESTS ?=
ROOT := $(shell [ "$$(id -u)" = 0 ] && echo 1)

help:
	@echo "make demo [NODE=1] | test | test-unit | test-integration | test-e2e | lint | crds | manifests |"
	@echo "     cluster [NODE=1] | node | image | cluster-down | bench | clean"

# The virtualenv, with the exact versions of constraints.txt; rebuilt when either file changes.
$(VENV)/.installed: pyproject.toml devtools/pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]' -e ./devtools
	@touch $@

venv: $(VENV)/.installed

cluster-bins:
	@hack/build-kube.sh $(BIN)
	@hack/build-helm.sh $(BIN)
	@hack/build-promtool.sh $(BIN)

# A node's commands (kubelet, controllers, scheduler, kube-proxy, the sandbox's pause) from the same Go module.
node-bins: cluster-bins
	@hack/build-node.sh $(BIN)

# containerd, runc, CNI plugins, iptables, buildah, mmdebstrap from Debian (installed when missing; versions printed).
node-packages:
	@hack/node-packages.sh

# The Dockerfile built with buildah (no Docker daemon) and imported into the local node when one runs.
image: node-packages
	@hack/build-image.sh

cluster: venv cluster-bins $(if $(NODE),node-bins node-packages,)
	$(PY) -m notebook_devtools.localcluster up --dir .cluster --bin-dir $(BIN) $(if $(NODE),--node --image .cluster/image/image.tar,)

# A node beside a running cluster (the API server is restarted with a node's flags if it lacks them).
node: venv cluster-bins node-bins node-packages
	$(PY) -m notebook_devtools.localcluster node --dir .cluster --bin-dir $(BIN) --image .cluster/image/image.tar

cluster-down: venv
	$(PY) -m notebook_devtools.localcluster down --dir .cluster --bin-dir $(BIN)

crds: venv
	$(VENV)/bin/notebook-operator crds --output crds
	cp crds/*.yaml charts/notebook-operator/crds/

# The kustomize base deploy/kustomize, rendered from the chart.
manifests: cluster-bins
	hack/gen-manifests.sh

lint: venv
	$(VENV)/bin/ruff check operator devtools tests hack
	$(VENV)/bin/ruff format --check operator devtools tests hack
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The virtualenv (then lint, then the image) and the Go builds have nothing in common: they are made side by side.
# As root, the node's binaries and the operator image are built too, for tests/e2e/test_installed.py; elsewhere
# that test skips and says why (NODE_TESTS=required, as in CI, makes the skip a failure).
test:
	@$(MAKE) --no-print-directory -j2 lint cluster-bins $(if $(ROOT),node-bins image,)
	NODE_TESTS=$(NODE_TESTS) $(VENV)/bin/pytest $(PARALLEL) $(PYTEST_ARGS)

# One group at a time: unit (pure logic, no cluster), integration (API server + emulator + operator process),
# e2e (the chart, HA, shards, keyless, the demo).
test-unit: venv
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

test-integration: venv cluster-bins
	$(VENV)/bin/pytest $(PARALLEL) tests/integration $(PYTEST_ARGS)

test-e2e: venv cluster-bins $(if $(ROOT),node-bins image,)
	$(VENV)/bin/pytest $(PARALLEL) tests/e2e $(PYTEST_ARGS)

demo: venv cluster-bins $(if $(NODE),node-bins image,)
	$(VENV)/bin/notebook-operator demo $(if $(KEEP),--keep,) $(if $(NODE),--node,)

# Benchmarks (not tests): tables of figures in bench-*.json. Needs wrk for the emulator load. At most 40 minutes: the
# wave bench's one-call-per-stop comparison (about ten minutes more) runs with
# `$(PY) -m tests.bench.wave_bench --unbatched --only pai-unbatched`.
bench: venv cluster-bins
	$(PY) -m tests.bench.poll_bench --n 1000 --n 5000 --n 20000 --output bench-results.json
	$(PY) -m tests.bench.takeover_bench --output bench-takeover-results.json
	$(PY) -m tests.bench.cull_bench --n 1000 --output bench-cull-results.json
	$(PY) -m tests.bench.shared_bench --n 5000 --namespaces 50 --output bench-shared-results.json
	$(PY) -m tests.bench.wave_bench --pai-n 5000 --output bench-wave-results.json
	@if command -v wrk >/dev/null; then $(PY) -m tests.bench.emulator_load --instances 1000; \
	else echo "wrk not installed (apt-get install wrk): emulator load figure skipped"; fi

clean: cluster-down
	rm -rf $(VENV) .cluster .pytest_cache .mypy_cache .ruff_cache

# Logbook — the two commands a newcomer needs are `make demo` and `make test`.
# Everything else here is a building block of those two.

CARGO ?= cargo
# Tests are run with the dev profile; the bench and the demo use release.
CARGO_TEST_FLAGS ?= --workspace --all-targets --locked
# Property tests are seeded so a CI run is reproducible; explore other cases
# with e.g. `PROPTEST_RNG_SEED=$$RANDOM make unit`.
export PROPTEST_RNG_SEED ?= 20261122

.PHONY: all build setup test fmt-check clippy chart unit crds field-table bench bench-failover demo clean sweep-effects sweep-crashes

all: build

build:
	$(CARGO) build --workspace --locked

## setup: install everything the tests need on a fresh Debian machine (idempotent).
setup:
	bash scripts/setup.sh

## test: setup, then fmt check, clippy with -D warnings and the test build
## in one pass (lint-build), the images (debug binaries: IMAGE_PROFILE=dev)
## that tests/images.rs reads, and every test (unit, integration and doc
## tests), closing with a one-line total; then the tier on the real
## Kubernetes control plane, and the tier on the real node (their builds
## start in the background during setup). Every cargo command under it runs
## with clippy's driver (as lint-build), so none of them builds again; the
## suites the real control plane's tier runs are not also run on localkube.
## Each step prints how long it took (CI's budget is 40 minutes).
TEST_STEPS = setup fmt-check core lint-build chart test-images release-check unit kubernetes test-node
test: export RUSTC_WORKSPACE_WRAPPER = $(CLIPPY_WRAPPER)
test: export CLIPPY_ARGS = $(CLIPPY_DENY)
test: export LOGBOOK_UNIT_LEAVE_TO_KUBERNETES = 1
test:
	@total=$$(date +%s); took=""; for step in $(TEST_STEPS); do \
		start=$$(date +%s); \
		$(MAKE) --no-print-directory $$step || { echo "make test: $$step failed after $$(( $$(date +%s) - start )) s (before it:$$took)"; exit 1; }; \
		took="$$took $$step $$(( $$(date +%s) - start )) s,"; \
	done; echo "make test: passed in $$(( $$(date +%s) - total )) s:$$took"

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy $(CARGO_TEST_FLAGS) -- -D warnings

## core: the decision core (core/) checked and linted alone, with its own
## features: it builds without tokio, a Kubernetes client, redis, an HTTP
## stack or an object store (named here if one comes in), and its
## clippy.toml refuses the clock and hash-ordered collections. The
## operator (operator/) links neither the tools nor localkube. The core's
## tests are linted with the rest in lint-build (the same clippy.toml).
CORE_FORBIDDEN = tokio|hyper|kube-client|kube-runtime|redis|reqwest|object_store|sled
.PHONY: core
core:
	@if $(CARGO) tree -p logbook-core -e normal --locked --prefix none | grep -E '^($(CORE_FORBIDDEN)) '; then \
		echo "core: logbook-core depends on the crates above (forbidden: $(CORE_FORBIDDEN))"; exit 1; fi
	@if $(CARGO) tree -p logbook-operator -e normal --locked --prefix none | grep -E '^logbook(-localkube)? '; then \
		echo "core: the operator depends on the tools or on localkube (above)"; exit 1; fi
	$(CARGO) clippy -p logbook-core --locked -- -D warnings

## lint-build: `make clippy` and the test build in one compile: the
## workspace's crates built by clippy-driver, as `cargo clippy` runs it
## (RUSTC_WORKSPACE_WRAPPER, and CLIPPY_ARGS for -D warnings), so that
## clippy's lints cost no second pass over every crate (6 minutes of CI).
## Dependencies are built by rustc as always.
CLIPPY_WRAPPER = clippy-driver
CLIPPY_DENY = -D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
.PHONY: lint-build
lint-build:
	RUSTC_WORKSPACE_WRAPPER=$(CLIPPY_WRAPPER) CLIPPY_ARGS=$(CLIPPY_DENY) $(CARGO) test $(CARGO_TEST_FLAGS) --no-run

## chart: helm lint (strict) and render the chart with each scope; the
## deeper checks (schema, RBAC, dry-run apply, promtool) are in tests/helm_chart.rs.
HELM ?= .tools/bin/helm
chart:
	$(HELM) lint --strict charts/logbook
	$(HELM) lint --strict charts/logbook --set watchNamespace=shop --set metrics.serviceMonitor.enabled=true --set metrics.prometheusRule.enabled=true
	$(HELM) template logbook charts/logbook --namespace logbook-system >/dev/null

unit:
	bash scripts/cargo-test.sh

## sweep-effects: the full effect-fault sweeps of tests/effect_faults.rs:
## every effect of every workload on every topology, failed before it is
## sent, its reply lost, and the operator killed just before and just
## after it (`make test` runs the short ones). One at a time: each has a
## localkube of its own.
sweep-effects:
	$(CARGO) test --workspace --locked --test long_lane -- --ignored --test-threads=1 --nocapture effect_faults::

## sweep-crashes: the long crash sweeps of tests/operator_crash.rs: the
## operator aborted at every journal commit point of the newer workloads
## (hibernation, image change, canary rollback, unbind, rebalance,
## defaults roll, fail-back, a standby), a fresh instance taking over each time.
sweep-crashes:
	$(CARGO) test --workspace --locked --test crash_lane -- --ignored --test-threads=1 --nocapture operator_crash::

## crds: regenerate crds/valkeycluster.yaml and the Helm chart's copy from the Rust types.
crds:
	LOGBOOK_UPDATE_CRDS=1 $(CARGO) test -p logbook-crds --test crd_drift --locked

## field-table: regenerate docs/field-table.md from the chart's CRDs and
## docs/field-oracles.yaml (what proves each spec field took effect), and
## check that every field has its row (docs/crd-reference.md, "Field oracles").
field-table:
	LOGBOOK_UPDATE_FIELD_TABLE=1 $(CARGO) test --locked --test components -- docs_catalog::field_table

## api-reference: regenerate docs/reference/api.md (every field of every
## CRD, from the schemas: crds/src/reference.rs) after a change of the API
## types; the components suite fails while it differs.
.PHONY: api-reference
api-reference:
	LOGBOOK_UPDATE_API_REFERENCE=1 $(CARGO) test --locked --test components -- docs_catalog::api_reference

## bench: the journal and localkube benchmarks (figures go in docs/benchmarks.md).
bench:
	$(CARGO) run --release --locked -p logbook-journal --features sled --bin journal-bench -- --events 1000000
	$(CARGO) run --release --locked -p logbook-localkube --example api-bench -- --objects 5000
	$(CARGO) run --release --locked -p logbook-localkube --example workload-bench

## demo: runs Logbook on one machine: localkube with the operator inside, a
## 3-pod Replication cluster from config/samples/replication.yaml; Ctrl-C stops it.
demo:
	bash scripts/demo.sh

## bench-failover: the operator's failover and switchover windows beside
## Valkey Sentinel and a bare FAILOVER TO (docs/benchmarks.md).
bench-failover:
	$(CARGO) run --release --locked -p logbook-bench -- failover

## bench-reshard: a Cluster's 3 → 4-shard reshard (1M keys) by the
## operator beside a bare Atomic Slot Migration and `redis-cli --cluster
## rebalance` on identical servers (docs/benchmarks.md).
.PHONY: bench-reshard
bench-reshard:
	$(CARGO) run --release --locked -p logbook-bench -- reshard

## bench-backup: backup and restore throughput beside copying the same RDB
## bytes to and from an S3 server (moto's) directly (docs/benchmarks.md),
## medians of 5 runs: the downloads vary too much here for 3.
.PHONY: bench-backup
bench-backup:
	$(CARGO) run --release --locked -p logbook-bench -- backup --runs 5

## bench-failover-cluster: only the Cluster rows of bench-failover: a shard
## primary killed or its pod deleted, with one cluster-aware writer per
## shard, beside Valkey Cluster's own failover (docs/benchmarks.md).
.PHONY: bench-failover-cluster
bench-failover-cluster:
	$(CARGO) run --release --locked -p logbook-bench -- failover --topology cluster

## bench-check: the failover, reshard and backup benches briefly, each run's
## figures written to bench-results/ (JSON, with the commit and the load),
## then compared with bench/baselines/: every figure whose ratio to its
## same-run reference got worse than its baseline allows (the baseline's
## median over its runs, with a tolerance from their spread, at least
## 15 %) is named, and the target fails. `make bench-baseline` runs them
## BENCH_BASELINE_RUNS times and makes those runs the baselines;
## `make bench-check-slowed` runs them on a deliberately slowed operator
## (20 ms before each promotion) and must fail (docs/benchmarks.md).
BENCH_CHECK_RUNS = failover --topology replication --runs 5 --slow-runs 3 --reference-runs 5
BENCH_CHECK_COMMANDS = --command failover --command reshard --command backup
BENCH_BASELINE_RUNS ?= 4
BENCH_RESULTS ?= bench-results
BENCH_FEATURES ?=
.PHONY: bench-check bench-baseline bench-check-runs bench-check-slowed
bench-check-runs:
	$(CARGO) build --release --locked -p logbook-bench $(BENCH_FEATURES)
	target/release/logbook-bench --results $(BENCH_RESULTS) $(BENCH_CHECK_RUNS)
	target/release/logbook-bench --results $(BENCH_RESULTS) reshard --keys 200000 --runs 1 --skip-legacy
	target/release/logbook-bench --results $(BENCH_RESULTS) backup --keys 50000 --value-bytes 1024 --runs 5
bench-check: bench-check-runs
	target/release/logbook-bench --results $(BENCH_RESULTS) check
bench-baseline:
	for i in $$(seq 1 $(BENCH_BASELINE_RUNS)); do $(MAKE) --no-print-directory bench-check-runs || exit 1; done
	target/release/logbook-bench --results $(BENCH_RESULTS) check --update --runs $(BENCH_BASELINE_RUNS) $(BENCH_CHECK_COMMANDS)
bench-check-slowed:
	$(MAKE) --no-print-directory bench-check-runs BENCH_FEATURES="--features plant-slow-promotion" BENCH_RESULTS=bench-results/slowed
	@if target/release/logbook-bench --results bench-results/slowed check; then \
		echo "bench-check-slowed: the slowed build passed the check"; exit 1; \
	else echo "bench-check-slowed: the check named the slowed build (as it must)"; fi

clean:
	$(CARGO) clean

## bench-restart: an operator restart from ConfigMap journals, 100 clusters x
## 10,000 events with snapshots, loaded and decided (docs/benchmarks.md).
.PHONY: bench-restart
bench-restart:
	$(CARGO) run --release --locked -p logbook-bench -- restart --clusters 100 --events 10000 --snapshot-every 1000

## golden: record the replay tool's golden journals from real end-to-end runs
## (replay/tests/golden/<scenario>.frames and .json); run on purpose, not in CI.
.PHONY: golden
golden:
	$(CARGO) test --workspace --locked --test main_lane -- --ignored --nocapture replay_golden_record::

## bench-replay: the replay tool on a 1,000,000-event journal: audit, verify
## beside sha256sum of the same bytes, export to JSONL (docs/benchmarks.md).
.PHONY: bench-replay
bench-replay:
	$(CARGO) run --release --locked -p logbook-bench -- replay --events 1000000

## controlplane: build the real Kubernetes control plane (kube-apiserver,
## kube-controller-manager, kube-scheduler, etcd) from its Go modules into
## .tools/bin/controlplane (controlplane/; needs Go 1.26; the first build
## downloads about 180 MB of modules (800 MB unpacked); it took 12.6 minutes here beside a test run).
.PHONY: controlplane test-kubernetes kubernetes
kubernetes: test-kubernetes
controlplane:
	bash scripts/controlplane.sh build

## test-kubernetes: the API checks and the end-to-end suites on the real
## control plane, localkube's kubelet as its node (part of `make test`).
test-kubernetes:
	bash scripts/test-kubernetes.sh

## images: Logbook's images as OCI archives in .tools/images, built here with
## no registry or container engine: the operator (the Dockerfile's runtime
## stage), Valkey 9.1 and 8.0, Redis 7.0, redis_exporter and pause (scripts/images.sh,
## docs/node.md). IMAGE_PROFILE=dev takes the debug binaries (CI does).
.PHONY: images node test-images test-node
images:
	bash scripts/images.sh

test-images:
	IMAGE_PROFILE=dev bash scripts/images.sh

## release-check: what can be checked here of the release pipeline
## (.github/workflows/release.yml): actionlint of the workflows, the chart
## packaged as the release packages it, the image's name, entrypoint and
## user against `make images`' archive, and the krew manifest
## (plugins/valkey.yaml). About a second; part of `make test`, after
## test-images (scripts/release-check.sh).
.PHONY: release-check
release-check:
	bash scripts/release-check.sh

## test-node: helm install, a Replication sample and a failover on the real
## node (scripts/test-node.sh), then three real nodes in three zones: the
## primary's node drained, and partitioned with a client on its side
## (tests/operator_nodes.rs; part of `make test`; the rest of that suite is
## in test-node-suites); and a client outside the cluster reaching a
## NodePort and a load-balancer address on one node and on two, and no pod
## or ClusterIP (tests/node_outside.rs, about 30 s each); a Cluster by
## node ports (spec.externalAccess) written to from there through a shard
## failover and a reshard (tests/operator_external_nodes.rs, about 90 s).
NODES_SHORT = operator_nodes::draining_the_primarys_node operator_nodes::a_partitioned_primarys_node node_outside:: operator_external_nodes::
test-node:
	bash scripts/test-node.sh
	LOGBOOK_E2E_NODE=containers $(CARGO) test --locked --test main_lane -- --ignored --test-threads 1 $(NODES_SHORT)

## test-node-suites: the end-to-end suites on the real node, each test on
## a control plane and a node of its own (LOGBOOK_E2E_NODE=containers;
## docs/node.md): Replication failovers by kill and deletion, Sentinel,
## Cluster (bootstrap, failovers, volumes lost), TLS with a renewal, users
## and password rotation, backups and restores, reshards (atomic and the
## classic pipeline of Redis 7), NetworkPolicy enforced on every topology;
## each way a pod is taken away (the kubelet's eviction runs only here);
## then the short soak of every topology on
## the node. Not in `make test` (about 30 minutes here on two cores);
## `make test-node` is its tier there.
NODE_SUITES = operator_replication operator_sentinel operator_cluster operator_tls operator_users operator_backup operator_reshard operator_reshard_classic operator_network_policy operator_disruptions
.PHONY: test-node-suites
test-node-suites:
	bash scripts/node.sh build
	IMAGE_PROFILE=dev bash scripts/images.sh
	LOGBOOK_E2E_NODE=containers $(CARGO) test --workspace --locked --no-fail-fast --test main_lane --test long_lane --test crash_lane -- $(foreach t,$(NODE_SUITES),$(t)::)
	LOGBOOK_E2E_NODE=containers $(CARGO) test --locked --test main_lane -- --ignored --test-threads 1 operator_nodes::
	$(CARGO) run --locked -p logbook-bench -- soak --topology all --seed 20261126 --duration-seconds 60 --interval-seconds 6 --control-plane containers --operator-binary target/debug/logbook

## node: the real node's binaries (docs/node.md): kubelet and kube-proxy in
## .tools/bin/controlplane, containerd, its runc shim, ctr and the CNI
## plugins in .tools/bin/node, from their Go modules (controlplane/, node/).
node:
	bash scripts/node.sh build

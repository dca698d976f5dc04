#!/usr/bin/env bash
# The real Kubernetes control plane, built from its Go modules
# (controlplane/: k8s.io/kubernetes and go.etcd.io/etcd/server/v3), for
# `logbook local --kubernetes` and the tests on it.
#
#   scripts/controlplane.sh build       build .tools/bin/controlplane once
#                                       (again only when controlplane/ changes)
#   scripts/controlplane.sh prebuild    the same, in the background (niced)
#   scripts/controlplane.sh up DIR [CIDR] certificates, etcd, kube-apiserver,
#                                       kube-controller-manager and
#                                       kube-scheduler under DIR (`controlplane
#                                       up`); prints the admin kubeconfig's
#                                       path when ready
#   scripts/controlplane.sh compact DIR compacts etcd's history (a watch from
#                                       an older resourceVersion gets 410 Gone;
#                                       Secrets bypass the watch cache, so
#                                       their watches see it at once)
#   scripts/controlplane.sh down DIR    stops what `up` started (its
#                                       children die with it)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin/controlplane"
STAMP="$TOOLS/controlplane.stamp"

say() { printf 'controlplane: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

source_hash() {
	(cd "$ROOT/controlplane" && cat go.mod go.sum ./*.go) | sha256sum | cut -d' ' -f1
}

build() {
	command -v go >/dev/null 2>&1 || die "missing 'go': install Go 1.26 (https://go.dev/dl) — the control plane is built from its Go modules"
	mkdir -p "$TOOLS"
	# One build at a time: a second caller (the tests, while setup's
	# background build runs) waits for the first and then finds it built.
	exec 9>"$TOOLS/controlplane.lock"
	flock 9
	local want
	want=$(source_hash)
	if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
		say "built: $("$BIN" version)"
		return
	fi
	say "building kube-apiserver, kube-controller-manager, kube-scheduler and etcd from Go modules (the first build downloads about 180 MB of modules (800 MB unpacked) and takes several minutes)"
	mkdir -p "$TOOLS/bin"
	local started=$SECONDS
	# The version the binaries report: the module's, as kubernetes' own
	# build stamps it (hack/lib/version.sh).
	local version
	version=$(sed -n 's/^\tk8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$ROOT/controlplane/go.mod" | head -n1)
	[ -n "$version" ] || die "no k8s.io/kubernetes version in controlplane/go.mod"
	# -dwarf=false: the link strips DWARF anyway (-w), so the compiler
	# need not write it (about 9 % less compile CPU on the CNI plugins).
	(cd "$ROOT/controlplane" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -gcflags=all=-dwarf=false \
		-ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2) -X k8s.io/component-base/version.gitTreeState=clean" \
		-o "$BIN.new" .) || die "go build failed (above)"
	mv "$BIN.new" "$BIN"
	echo "$want" >"$STAMP"
	say "built $("$BIN" version) in $((SECONDS - started)) s"
	# A one-off build (CI) has no use for the compiled packages after; when
	# the node's build follows (scripts/node.sh, started by setup as root),
	# it reuses the standard library's and those of the modules both use,
	# and trims after itself.
	if [ "${LOGBOOK_TRIM_GO_CACHE:-0}" = 1 ] && [ "${LOGBOOK_NODE_BUILD_FOLLOWS:-0}" != 1 ]; then
		go clean -cache && say "Go build cache removed (LOGBOOK_TRIM_GO_CACHE=1)"
	fi
}

up() {
	local dir=${1:?usage: controlplane.sh up DIR [SERVICE_CIDR]}
	local cidr=${2:-10.96.0.0/16}
	[ -x "$BIN" ] || die "no $BIN: run 'scripts/controlplane.sh build' (or make controlplane) first"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	# `controlplane up` runs etcd and the three components as its children
	# (they die with it) and prints "ready" once the API server answers.
	"$BIN" up --dir "$dir" --service-cidr "$cidr" >"$dir/up.out" 2>"$dir/up.log" &
	echo $! >"$dir/up.pid"
	for _ in $(seq 1 300); do
		if grep -qx ready "$dir/up.out" 2>/dev/null; then
			sed -n 's/^kubeconfig //p' "$dir/up.out"
			return 0
		fi
		if ! kill -0 "$(cat "$dir/up.pid")" 2>/dev/null; then
			die "the control plane did not start: $(tail -n 20 "$dir/up.log")"
		fi
		sleep 0.25
	done
	die "the control plane was not ready in 75 s: $(tail -n 20 "$dir/up.log")"
}

compact() {
	local dir=${1:?usage: controlplane.sh compact DIR}
	"$BIN" compact --endpoint "$(cat "$dir/etcd.url")" >&2
}

down() {
	local dir=${1:?usage: controlplane.sh down DIR}
	[ -f "$dir/up.pid" ] || return 0
	local pid
	pid=$(cat "$dir/up.pid")
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 60); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.25
	done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$dir/up.pid"
}

case "${1:-}" in
build) build ;;
# Starts the build in the background (niced, logging to
# .tools/controlplane-build.log) when the binary is missing or stale, so it
# overlaps with other work; `build` later waits for it.
prebuild)
	if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$(source_hash)" ]; then exit 0; fi
	command -v go >/dev/null 2>&1 || exit 0
	mkdir -p "$TOOLS"
	nohup nice -n 19 bash "$0" build >"$TOOLS/controlplane-build.log" 2>&1 </dev/null &
	say "building the control plane in the background (log: .tools/controlplane-build.log)"
	;;
up) shift; up "$@" ;;
down) shift; down "$@" ;;
compact) shift; compact "$@" ;;
*) die "usage: scripts/controlplane.sh build | prebuild | up DIR [CIDR] | compact DIR | down DIR" ;;
esac

#!/usr/bin/env bash
# The real Kubernetes control plane, built from its Go modules
# (controlplane/: k8s.io/kubernetes and go.etcd.io/etcd/server/v3), for
# `logbook local --kubernetes` and the tests on it.
#
#   scripts/controlplane.sh build       build .tools/bin/controlplane once
#                                       (again only when controlplane/ changes)
#   scripts/controlplane.sh up DIR      certificates, etcd, kube-apiserver,
#                                       kube-controller-manager and
#                                       kube-scheduler under DIR; prints the
#                                       admin kubeconfig's path when ready
#   scripts/controlplane.sh compact DIR compacts etcd's history (a watch from
#                                       an older resourceVersion gets 410 Gone;
#                                       Secrets bypass the watch cache, so
#                                       their watches see it at once)
#   scripts/controlplane.sh down DIR    stops what `up` started
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
	(cd "$ROOT/controlplane" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath \
		-ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2) -X k8s.io/component-base/version.gitTreeState=clean" \
		-o "$BIN.new" .) || die "go build failed (above)"
	mv "$BIN.new" "$BIN"
	echo "$want" >"$STAMP"
	say "built $("$BIN" version) in $((SECONDS - started)) s"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

up() {
	local dir=${1:?usage: controlplane.sh up DIR}
	[ -x "$BIN" ] || die "no $BIN: run 'scripts/controlplane.sh build' (or make controlplane) first"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	local etcd_port peer_port api_port
	etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
	local server="https://127.0.0.1:$api_port"
	"$BIN" certs --dir "$dir/pki" --server "$server" --node localkube
	echo "http://127.0.0.1:$etcd_port" >"$dir/etcd.url"
	start etcd "$dir" etcd --data-dir "$dir/etcd" \
		--listen-client "http://127.0.0.1:$etcd_port" --listen-peer "http://127.0.0.1:$peer_port"
	local pki="$dir/pki"
	start apiserver "$dir" apiserver \
		--etcd-servers "http://127.0.0.1:$etcd_port" \
		--bind-address 127.0.0.1 --secure-port "$api_port" \
		--advertise-address 127.0.0.1 \
		--tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
		--client-ca-file "$pki/ca.crt" \
		--service-account-key-file "$pki/sa.pub" \
		--service-account-signing-key-file "$pki/sa.key" \
		--service-account-issuer "$server" \
		--service-cluster-ip-range 10.96.0.0/16 \
		--authorization-mode Node,RBAC \
		--enable-admission-plugins NodeRestriction \
		--allow-privileged \
		--cert-dir "$dir/apiserver-certs" \
		--watch-cache-sizes secrets#0
	wait_ready "$server" "$pki" || die "kube-apiserver not ready: $(tail -n 20 "$dir/apiserver.log")"
	start controller-manager "$dir" controller-manager \
		--kubeconfig "$pki/controller-manager.kubeconfig" \
		--authentication-kubeconfig "$pki/controller-manager.kubeconfig" \
		--authorization-kubeconfig "$pki/controller-manager.kubeconfig" \
		--bind-address 127.0.0.1 --secure-port 0 \
		--use-service-account-credentials \
		--service-account-private-key-file "$pki/sa.key" \
		--root-ca-file "$pki/ca.crt" \
		--cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
		--leader-elect=false \
		--controllers '*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller'
	start scheduler "$dir" scheduler \
		--kubeconfig "$pki/scheduler.kubeconfig" \
		--authentication-kubeconfig "$pki/scheduler.kubeconfig" \
		--authorization-kubeconfig "$pki/scheduler.kubeconfig" \
		--bind-address 127.0.0.1 --secure-port 0 --leader-elect=false
	echo "$pki/admin.kubeconfig"
}

start() {
	local name=$1 dir=$2
	shift 2
	"$BIN" "$@" >"$dir/$name.log" 2>&1 &
	echo $! >"$dir/$name.pid"
}

wait_ready() {
	local server=$1 pki=$2
	for _ in $(seq 1 240); do
		if curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$server/readyz" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.25
	done
	return 1
}

compact() {
	local dir=${1:?usage: controlplane.sh compact DIR}
	"$BIN" compact --endpoint "$(cat "$dir/etcd.url")" >&2
}

down() {
	local dir=${1:?usage: controlplane.sh down DIR}
	for name in scheduler controller-manager apiserver etcd; do
		if [ -f "$dir/$name.pid" ]; then
			kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
			rm -f "$dir/$name.pid"
		fi
	done
}

case "${1:-}" in
build) build ;;
up) shift; up "$@" ;;
down) shift; down "$@" ;;
compact) shift; compact "$@" ;;
*) die "usage: scripts/controlplane.sh build | up DIR | compact DIR | down DIR" ;;
esac

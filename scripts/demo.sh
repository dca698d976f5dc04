#!/usr/bin/env bash
# make demo: Logbook on one machine. Installs what it needs, builds, starts
# `logbook local` (localkube + the operator), applies the Replication sample,
# waits until it is Ready, shows it, prints what to try, and runs until Ctrl-C.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
say() { printf '\033[1mdemo:\033[0m %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
	say "localkube runs pods as local processes in their own mount namespaces: run as root" >&2
	exit 1
fi

bash scripts/setup.sh
say "building logbook (release)"
cargo build --release --locked -p logbook

export PATH="$ROOT/.tools/bin:$PATH"
mkdir -p .logbook
export KUBECONFIG="$ROOT/.logbook/kubeconfig"
rm -f "$KUBECONFIG"
LOG="$ROOT/.logbook/local.log"

say "starting logbook local (log: .logbook/local.log, journal: .logbook/journal)"
# Journal in both: ConfigMaps, as on a real cluster (the kubectl plugin and
# `logbook replay --namespace` read them live), and the whole history in sled.
"$ROOT/target/release/logbook" local --kubeconfig "$KUBECONFIG" --journal both --journal-dir "$ROOT/.logbook/journal" >"$LOG" 2>&1 &
LOCAL=$!
stop() {
	trap - INT TERM EXIT
	if kill -0 "$LOCAL" 2>/dev/null; then
		say "stopping (Ctrl-C)"
		kill -INT "$LOCAL" 2>/dev/null || true
		wait "$LOCAL" 2>/dev/null || true
	fi
}
trap stop INT TERM EXIT

for _ in $(seq 1 100); do
	[ -s "$KUBECONFIG" ] && kubectl get --raw /readyz >/dev/null 2>&1 && break
	if ! kill -0 "$LOCAL" 2>/dev/null; then
		say "logbook local exited:" >&2
		tail -n 20 "$LOG" >&2
		exit 1
	fi
	sleep 0.2
done

say "kubectl apply -f config/samples/replication.yaml"
kubectl apply -f config/samples/replication.yaml
say "waiting until the cluster is Ready"
if ! kubectl wait vkc/demo --for=jsonpath='{.status.phase}'=Ready --timeout=180s >/dev/null; then
	kubectl get vkc demo -o yaml >&2 || true
	tail -n 30 "$LOG" >&2
	exit 1
fi

echo
kubectl get vkc demo
echo
kubectl get pods -L valkey.logbook.dev/role -o wide
echo
PRIMARY=$(kubectl get vkc demo -o jsonpath='{.status.primary}')
SVC=$(kubectl get svc demo -o jsonpath='{.spec.clusterIP}')
UI=$(sed -n 's/^Logbook UI at //p' "$LOG" | head -n 1)
cat <<TRY
Logbook is running a 3-pod Replication cluster (primary: $PRIMARY).

Open the web UI: ${UI:-(not started: see $LOG)}
(every cluster live, the journal as it grows, each failover and its reasons)

In another shell:

  export KUBECONFIG=$KUBECONFIG PATH=$ROOT/.tools/bin:$ROOT/target/release:\$PATH
  kubectl get vkc,pods -L valkey.logbook.dev/role -w          # watch roles move
  kubectl describe vkc demo                                     # conditions
  kubectl get events.events.k8s.io -o custom-columns=REASON:.reason,ACTION:.action,NOTE:.note   # decisions
  PW=\$(kubectl get secret demo-password -o jsonpath='{.data.password}' | base64 -d)
  redis-cli -h $SVC -a "\$PW" --no-auth-warning set greeting hello    # through the client Service

  $ROOT/target/release/logbook local fault kill $PRIMARY        # kill the primary: a replica takes over
  kubectl delete pod $PRIMARY                                   # or delete its pod
  kubectl annotate vkc demo valkey.logbook.dev/switchover-to=auto   # a planned switchover
  kubectl valkey status demo                                    # the kubectl plugin: roles, offsets, lag
  kubectl valkey events demo                                    # its decisions, with reasons and outcomes
  kubectl valkey switchover demo --wait                         # a switchover through it
  kubectl valkey replay demo failovers                          # replay the live journal (ConfigMaps)
  kubectl patch vkc demo --type merge -p '{"spec":{"replicas":5}}'  # scale out
  kubectl patch vkc demo --type merge -p '{"spec":{"config":{"maxmemory-policy":"allkeys-lru"}}}'  # roll

The journal of every observation and decision is in .logbook/journal. After
stopping (sled admits one process at a time), replay it:

  target/release/logbook replay timeline --dir .logbook/journal    # what was seen and decided, with causes
  target/release/logbook replay failovers --dir .logbook/journal   # each failover: why, candidates, lost-writes bound
  target/release/logbook replay audit --dir .logbook/journal       # would this build decide the same?
  target/release/logbook replay export --format html --dir .logbook/journal -o report.html
Ctrl-C stops everything.
TRY
wait "$LOCAL"

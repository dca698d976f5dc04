#!/usr/bin/env bash
# Logbook on a real node, installed as a user installs it (docs/node.md):
# `logbook local --kubernetes --node containers` (the real control plane,
# and the real kubelet, kube-proxy, containerd and runc running Logbook's
# own images), then:
#
#   - `helm install` of the chart with the operator's image built here
#     (`make images`): two operator pods in containers under the chart's
#     security context (user 65532, read-only root, no capabilities),
#     in-cluster credentials from the projected service-account token,
#     one of them leading through the Lease;
#   - a Replication sample becomes Ready in containers of the Valkey
#     image; writes acknowledged by a replica are made, the primary's
#     container process is killed, the operator fails over, and every
#     acknowledged write is on the new primary;
#   - the Cluster and Sentinel samples become Ready in containers;
#   - the web UI (`ui.enabled`), served from the operator's pod: a reader
#     whose RBAC may get ValkeyClusters sees them, one without sees
#     nothing, an unknown token is refused (kube-apiserver answers the
#     TokenReviews and SubjectAccessReviews);
#   - the leading operator's pod is deleted and the other takes the Lease.
#
# Each check prints one line; the script exits non-zero at the first that
# fails, with the node's and the operator's logs. Needs root (namespaces,
# cgroups), `make node images` and a debug build of `logbook`.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KUBECTL="$ROOT/.tools/bin/kubectl"
HELM="$ROOT/.tools/bin/helm"
LOGBOOK="${LOGBOOK_BIN:-$ROOT/target/debug/logbook}"
DIR=$(mktemp -d /tmp/logbook-node-XXXXXX)
export KUBECONFIG="$DIR/kubeconfig"
NS=logbook-system

ok() { printf 'ok   %s\n' "$*"; }
fail() {
	printf 'FAIL %s\n' "$*"
	for f in "$DIR"/work/node/kubelet.log "$DIR"/work/node/containerd.log "$DIR"/local.log; do
		[ -f "$f" ] && { echo "--- $f (last 30 lines)"; tail -n 30 "$f"; }
	done
	"$KUBECTL" get pods -A -o wide 2>/dev/null || true
	"$KUBECTL" -n "$NS" logs -l app.kubernetes.io/name=logbook --tail=30 2>/dev/null || true
	exit 1
}
# Waits up to $1 seconds for the command after it to succeed.
until_ok() {
	local limit=$1 start=$SECONDS
	shift
	until "$@" >/dev/null 2>&1; do
		[ $((SECONDS - start)) -lt "$limit" ] || return 1
		sleep 1
	done
}

[ -x "$LOGBOOK" ] || (cd "$ROOT" && cargo build --locked --bin logbook)
bash "$ROOT/scripts/node.sh" build
[ -f "$ROOT/.tools/images/logbook-operator.oci.tar" ] || bash "$ROOT/scripts/images.sh"

"$LOGBOOK" local --kubernetes --node containers --no-operator --state-dir "$DIR/work" \
	--kubeconfig "$KUBECONFIG" >"$DIR/local.log" 2>&1 &
local_pid=$!
trap 'kill $local_pid 2>/dev/null; wait $local_pid 2>/dev/null; rm -rf "$DIR"' EXIT
until_ok 400 grep -q 'Ctrl-C stops it' "$DIR/local.log" || fail "logbook local --kubernetes --node containers did not start"
node=$("$KUBECTL" get nodes -o jsonpath='{.items[0].metadata.name}')
until_ok 60 sh -c "\"$KUBECTL\" get node $node -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -q True" \
	|| fail "node $node is not Ready"
runtime=$("$KUBECTL" get node "$node" -o jsonpath='{.status.nodeInfo.containerRuntimeVersion} {.status.nodeInfo.kubeletVersion}')
ok "node $node Ready: $runtime"

# The README's quickstart, run as written (between its quickstart
# markers) by a newcomer's shell in the checkout: `make images` (packing
# the debug binaries: IMAGE_PROFILE=dev, as `make test-images` did), the
# archive imported with `ctr` run on the node (in the node's mount and
# network namespaces, as a person would run it on each node, against the
# node's containerd socket: CONTAINERD_ADDRESS), `helm install` of the
# chart as it is, the quickstart cluster and its user, and the
# application that reads REDIS_URL from the user's Secret.
quickstart=$(awk '/<!-- quickstart:begin -->/ { on = 1; next } /<!-- quickstart:end -->/ { on = 0 } on && !/^```/' "$ROOT/README.md")
[ -n "$quickstart" ] || fail "no quickstart between the markers of README.md"
containerd_pid=$(pgrep -f "containerd --config $DIR/work/node/containerd/config.toml" | head -n 1)
[ -n "$containerd_pid" ] || fail "no containerd of the node under $DIR/work/node"
ctr() {
	CONTAINERD_ADDRESS=/run/containerd-node/containerd.sock \
		nsenter --mount="/proc/$containerd_pid/ns/mnt" --net="/proc/$containerd_pid/ns/net" --wd="$PWD" -- "$ROOT/.tools/bin/node/ctr" "$@"
}
export -f ctr
export containerd_pid ROOT
(cd "$ROOT" && PATH="$ROOT/.tools/bin:$PATH" IMAGE_PROFILE=dev bash -euo pipefail -c "$quickstart") >"$DIR/quickstart.log" 2>&1 \
	|| { tail -n 40 "$DIR/quickstart.log"; "$KUBECTL" get valkeycluster,valkeyuser,pods -o wide || true; fail "the README's quickstart failed"; }
grep -q 'wrote app:greeting: hello from quickstart-app' "$DIR/quickstart.log" && grep -q 'NOPERM' "$DIR/quickstart.log" \
	|| { cat "$DIR/quickstart.log"; fail "the quickstart's application did not write as its user and stay within app:*"; }
ok "the README's quickstart as written: the chart installed, quickstart Ready, the application wrote as quickstart-app and was refused outside app:*"

# `helm upgrade` of the operator restarts no Valkey pod: the quickstart's
# pods keep their UIDs and restart counts while the operator's pods are
# replaced (the values change rolls its Deployment).
valkey_pods() { "$KUBECTL" get pods -l app.kubernetes.io/instance=quickstart,app.kubernetes.io/name=valkey \
	-o jsonpath='{range .items[*]}{.metadata.name}/{.metadata.uid}/{.status.containerStatuses[0].restartCount} {end}'; }
before=$(valkey_pods)
op_before=$("$KUBECTL" -n "$NS" get pods -l app.kubernetes.io/name=logbook -o jsonpath='{.items[*].metadata.uid}')
"$HELM" upgrade logbook "$ROOT/charts/logbook" --namespace "$NS" \
	--set leaderElection.leaseSeconds=15 --set ui.enabled=true >/dev/null || fail "helm upgrade"
until_ok 240 "$KUBECTL" -n "$NS" rollout status deployment/logbook --timeout=5s \
	|| fail "the operator's Deployment did not roll out after helm upgrade"
# A rolled-out Deployment may still list its old pods while they
# terminate: they must be gone, not merely outnumbered.
old_op_pods_gone() {
	local after
	after=$("$KUBECTL" -n "$NS" get pods -l app.kubernetes.io/name=logbook -o jsonpath='{.items[*].metadata.uid}') || return 1
	for uid in $op_before; do
		case " $after " in *" $uid "*) return 1 ;; esac
	done
}
until_ok 60 old_op_pods_gone || fail "operator pods $op_before were not all replaced by helm upgrade"
new_leader() {
	local holder
	holder=$("$KUBECTL" -n "$NS" get lease logbook-operator -o jsonpath='{.spec.holderIdentity}' 2>/dev/null)
	[ -n "$holder" ] && "$KUBECTL" -n "$NS" get pods -l app.kubernetes.io/name=logbook -o name | grep -q "/$holder\$"
}
until_ok 90 new_leader || fail "no new operator pod took the Lease after helm upgrade"
# Long enough for the new leader to have read the journal and acted, if
# it were going to.
sleep 10
after=$(valkey_pods)
[ "$before" = "$after" ] || fail "helm upgrade changed the Valkey pods: before $before, after $after"
[ "$("$KUBECTL" get valkeycluster quickstart -o jsonpath='{.status.phase}')" = Ready ] || fail "quickstart not Ready after helm upgrade"
ok "helm upgrade replaced the operator's pods and restarted no Valkey pod ($(echo $after | wc -w) pods kept)"
"$KUBECTL" delete -f "$ROOT/config/samples/quickstart-app.yaml" -f "$ROOT/config/samples/quickstart.yaml" --wait=false >/dev/null \
	|| fail "kubectl delete the quickstart"
until_ok 240 "$KUBECTL" -n "$NS" rollout status deployment/logbook --timeout=5s \
	|| fail "the operator's Deployment did not become available"
pods=$("$KUBECTL" -n "$NS" get pods -l app.kubernetes.io/name=logbook -o jsonpath='{.items[*].metadata.name}')
for p in $pods; do
	uid=$("$KUBECTL" -n "$NS" get pod "$p" -o jsonpath='{.spec.securityContext.runAsUser}')
	ro=$("$KUBECTL" -n "$NS" get pod "$p" -o jsonpath='{.spec.containers[0].securityContext.readOnlyRootFilesystem}')
	[ "$uid" = 65532 ] && [ "$ro" = true ] || fail "operator pod $p: runAsUser $uid, readOnlyRootFilesystem $ro"
	cid=$("$KUBECTL" -n "$NS" get pod "$p" -o jsonpath='{.status.containerStatuses[0].containerID}')
	case "$cid" in containerd://*) ;; *) fail "operator pod $p is not in a container ($cid)" ;; esac
done
ok "helm install: operator pods $pods in containers as 65532 with a read-only root"
lease() { "$KUBECTL" -n "$NS" get lease logbook-operator -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
until_ok 60 sh -c "[ -n \"\$($KUBECTL -n $NS get lease logbook-operator -o jsonpath='{.spec.holderIdentity}' 2>/dev/null)\" ]" \
	|| fail "no operator took the Lease"
leader=$(lease)
ok "the operator leads from its pod through the Lease ($leader)"

# A Replication cluster of the sample, smaller.
sed -e 's/size: 5Gi/size: 256Mi/' -e 's/memory: 1Gi/memory: 256Mi/' -e 's/cpu: 250m/cpu: 50m/' \
	"$ROOT/config/samples/replication.yaml" | "$KUBECTL" apply -f - >/dev/null || fail "kubectl apply the Replication sample"
# The Cluster and Sentinel samples, smaller and renamed, start beside it
# (their pods come up while the Replication cluster fails over) and are
# waited for after.
sed -e 's/^  name: demo$/  name: shards/' -e 's/size: 10Gi/size: 256Mi/' -e 's/memory: 2Gi/memory: 256Mi/' -e 's/cpu: 500m/cpu: 50m/' \
	"$ROOT/config/samples/cluster.yaml" | "$KUBECTL" apply -f - >/dev/null || fail "kubectl apply the Cluster sample"
sed -e 's/^  name: demo$/  name: watched/' -e 's/instance: demo$/instance: watched/' -e 's/connectionSecret: demo-valkey/connectionSecret: watched-valkey/' -e 's/size: 2Gi/size: 256Mi/' \
	"$ROOT/config/samples/sentinel.yaml" | "$KUBECTL" apply -f - >/dev/null || fail "kubectl apply the Sentinel sample"
phase() { "$KUBECTL" get valkeycluster "$1" -o jsonpath='{.status.phase}' 2>/dev/null; }
is_ready() { [ "$(phase "$1")" = Ready ]; }
ready() { until_ok "$2" is_ready "$1"; }
ready demo 300 || fail "the Replication sample is not Ready (phase $(phase demo))"
primary=$("$KUBECTL" get valkeycluster demo -o jsonpath='{.status.primary}')
image=$("$KUBECTL" get pod "$primary" -o jsonpath='{.status.containerStatuses[?(@.name=="valkey")].image}')
ok "Replication sample Ready in containers ($image), primary $primary"

ip=$("$KUBECTL" get pod "$primary" -o jsonpath='{.status.podIP}')
password=$("$KUBECTL" get secret demo-password -o jsonpath='{.data.password}' 2>/dev/null | base64 -d || true)
cli() { REDISCLI_AUTH="$password" redis-cli --no-auth-warning -h "$1" "${@:2}"; }
acked=0
for i in $(seq 1 200); do
	if [ "$(cli "$ip" SET "k$i" "v$i")" = OK ] && [ "$(cli "$ip" WAIT 1 1000)" -ge 1 ]; then acked=$i; fi
done
[ "$acked" = 200 ] || fail "only $acked of 200 writes acknowledged by a replica"
"$LOGBOOK" local fault --kubeconfig "$KUBECONFIG" kill "$primary" >/dev/null || fail "logbook local fault kill $primary"
until_ok 60 sh -c "p=\$($KUBECTL get valkeycluster demo -o jsonpath='{.status.primary}'); [ -n \"\$p\" ] && [ \"\$p\" != $primary ]" \
	|| fail "no failover after the primary's container was killed"
new=$("$KUBECTL" get valkeycluster demo -o jsonpath='{.status.primary}')
new_ip=$("$KUBECTL" get pod "$new" -o jsonpath='{.status.podIP}')
# How many of the 200 acknowledged writes the server at $1 lacks.
missing_on() {
	local n=0 i
	for i in $(seq 1 200); do
		[ "$(cli "$1" GET "k$i")" = "v$i" ] || n=$((n + 1))
	done
	echo "$n"
}
missing=$(missing_on "$new_ip")
[ "$missing" = 0 ] || fail "$missing of 200 acknowledged writes missing on the new primary $new"
ok "the primary's container killed: failover to $new, 0 of 200 acknowledged writes lost"

# Hibernate and wake in containers: every acknowledged write made durable,
# no pod while asleep (the volumes kept), the same primary after.
ready demo 120 || fail "the Replication sample is not Ready again after the failover (phase $(phase demo))"
"$KUBECTL" patch valkeycluster demo --type merge -p '{"spec":{"hibernated":true}}' >/dev/null || fail "kubectl patch demo spec.hibernated=true"
is_hibernated() { [ "$(phase demo)" = Hibernated ]; }
until_ok 120 is_hibernated || fail "the Replication sample is not Hibernated (phase $(phase demo))"
left=$("$KUBECTL" get pods -l app.kubernetes.io/instance=demo,app.kubernetes.io/name=valkey -o name | wc -l)
[ "$left" = 0 ] || fail "$left pods of the Replication sample still run while it is Hibernated"
"$KUBECTL" patch valkeycluster demo --type merge -p '{"spec":{"hibernated":false}}' >/dev/null || fail "kubectl patch demo spec.hibernated=false"
ready demo 300 || fail "the Replication sample is not Ready after waking (phase $(phase demo))"
woke=$("$KUBECTL" get valkeycluster demo -o jsonpath='{.status.primary}')
[ "$woke" = "$new" ] || fail "the Replication sample went to sleep with primary $new and woke with $woke"
woke_ip=$("$KUBECTL" get pod "$woke" -o jsonpath='{.status.podIP}')
missing=$(missing_on "$woke_ip")
[ "$missing" = 0 ] || fail "$missing of 200 acknowledged writes missing after waking"
ok "hibernated in containers (no pod while asleep) and woken with the same primary $woke, 0 of 200 acknowledged writes lost"

# --- kubectl valkey cli and logs (src/plugin/cli.rs, logs.rs) ---
# `cli` runs valkey-cli in the primary's container through `kubectl exec`
# (which the real kubelet serves), the password handed over inside the
# pod (REDISCLI_AUTH from its environment, on no command line); a replica
# reads the key back. `logs` reads each data pod's last lines.
PLUGIN="$ROOT/target/debug/kubectl-valkey"
[ -x "$PLUGIN" ] || (cd "$ROOT" && cargo build --locked --bin kubectl-valkey)
plugin() { KUBECTL="$KUBECTL" "$PLUGIN" "$@"; }
set_answer=$(plugin cli demo -- SET plugin-cli-key from-the-plugin 2>&1) || fail "kubectl valkey cli demo -- SET: $set_answer"
[ "$set_answer" = OK ] || fail "kubectl valkey cli demo -- SET answered: $set_answer"
replica=$("$KUBECTL" get pods -l app.kubernetes.io/instance=demo,app.kubernetes.io/name=valkey -o name \
	| sed 's|pod/||' | grep -v "^$woke\$" | head -n 1)
read_back() { [ "$(plugin cli demo --pod "$replica" -- GET plugin-cli-key 2>/dev/null)" = from-the-plugin ]; }
until_ok 20 read_back || fail "kubectl valkey cli demo --pod $replica -- GET did not read the key back"
logs=$(PATH="$ROOT/target/debug:$PATH" "$KUBECTL" valkey logs demo --tail 5) || fail "kubectl valkey logs demo --tail 5"
for p in $("$KUBECTL" get pods -l app.kubernetes.io/instance=demo,app.kubernetes.io/name=valkey -o name | sed 's|pod/||'); do
	echo "$logs" | grep -q "^\[$p\] " || fail "kubectl valkey logs demo --tail 5 shows no line of $p: $logs"
done
op_logs=$(plugin logs demo --operator) || fail "kubectl valkey logs demo --operator: $op_logs"
echo "$op_logs" | grep -q '"name":"demo"' || fail "kubectl valkey logs demo --operator shows no line about demo: $op_logs"
echo "$op_logs" | grep -v '"name":"demo"' | grep -q . && fail "kubectl valkey logs demo --operator shows lines about something else: $op_logs"
ok "kubectl valkey cli: SET on the primary $woke through kubectl exec, read back on $replica; kubectl valkey logs shows every pod, and --operator the operator's $(echo "$op_logs" | wc -l) lines about demo"

# The Cluster and Sentinel samples, in containers of the same image.
ready shards 300 || fail "the Cluster sample is not Ready (phase $(phase shards)): $("$KUBECTL" get valkeycluster shards -o jsonpath='{.status.conditions}')"
shard_pod=$("$KUBECTL" get pods -l app.kubernetes.io/instance=shards,app.kubernetes.io/name=valkey -o jsonpath='{.items[0].metadata.name}')
shard_password=$("$KUBECTL" get secret shards-password -o jsonpath='{.data.password}' 2>/dev/null | base64 -d || true)
# Through kubectl exec: the sample's NetworkPolicy (enforced by the node's
# kube-network-policies) admits the operator's pods and namespace apps,
# not this host.
masters=$("$KUBECTL" exec "$shard_pod" -c valkey -- valkey-cli --no-auth-warning -a "$shard_password" CLUSTER INFO 2>/dev/null | tr -d '\r' | sed -n 's/^cluster_size://p')
[ "$masters" = 3 ] || fail "the Cluster sample is Ready but CLUSTER INFO says cluster_size ${masters:-?}"
ok "Cluster sample Ready in containers: 3 shards, each a primary and a replica"
ready watched 300 || fail "the Sentinel sample is not Ready (phase $(phase watched)): $("$KUBECTL" get valkeycluster watched -o jsonpath='{.status.conditions}')"
sentinels=$("$KUBECTL" get pods -l app.kubernetes.io/instance=watched,app.kubernetes.io/component=sentinel -o name | wc -l)
[ "$sentinels" = 3 ] || fail "the Sentinel sample is Ready with $sentinels Sentinel pods"
ok "Sentinel sample Ready in containers: 3 Valkey pods watched by 3 Sentinels"

# The web UI as the chart's ui.enabled serves it from the operator's pod:
# each reader signs in with a token the API server reviews, and sees only
# the ValkeyClusters its RBAC lets it get.
"$KUBECTL" create serviceaccount ui-reader >/dev/null || fail "kubectl create serviceaccount ui-reader"
"$KUBECTL" create role ui-reader --verb=get,list,watch --resource=valkeyclusters.valkey.logbook.dev >/dev/null || fail "kubectl create role ui-reader"
"$KUBECTL" create rolebinding ui-reader --role=ui-reader --serviceaccount=default:ui-reader >/dev/null || fail "kubectl create rolebinding ui-reader"
"$KUBECTL" create serviceaccount ui-stranger >/dev/null || fail "kubectl create serviceaccount ui-stranger"
reader=$("$KUBECTL" create token ui-reader) || fail "kubectl create token ui-reader"
stranger=$("$KUBECTL" create token ui-stranger) || fail "kubectl create token ui-stranger"
ui_ip=$("$KUBECTL" -n "$NS" get pod "$leader" -o jsonpath='{.status.podIP}')
ui() { curl -s -m 10 -o "$DIR/ui.out" -w '%{http_code}' -H "Authorization: Bearer $1" "http://$ui_ip:8900$2"; }
[ "$(ui "$reader" /api/clusters)" = 200 ] && grep -q '"name":"demo"' "$DIR/ui.out" \
	|| fail "the UI did not show the reader its clusters: $(cat "$DIR/ui.out" 2>/dev/null)"
[ "$(ui "$reader" /api/clusters/default/demo)" = 200 ] && grep -q "\"name\":\"$new\"" "$DIR/ui.out" \
	|| fail "the UI did not show the reader the cluster demo: $(cat "$DIR/ui.out" 2>/dev/null)"
[ "$(ui "$stranger" /api/clusters)" = 200 ] && [ "$(cat "$DIR/ui.out")" = "[]" ] \
	|| fail "the UI showed a reader without RBAC: $(cat "$DIR/ui.out" 2>/dev/null)"
[ "$(ui "$stranger" /api/clusters/default/demo)" = 403 ] || fail "the UI did not refuse demo to a reader without RBAC: $(cat "$DIR/ui.out" 2>/dev/null)"
[ "$(ui not-a-token /api/clusters)" = 401 ] || fail "the UI did not refuse an unknown token"
ok "the web UI from the operator's pod: a reader sees demo, one without RBAC sees nothing (TokenReview and SubjectAccessReview by kube-apiserver)"

"$KUBECTL" -n "$NS" delete pod "$leader" --wait=false >/dev/null
until_ok 60 sh -c "h=\$($KUBECTL -n $NS get lease logbook-operator -o jsonpath='{.spec.holderIdentity}'); [ -n \"\$h\" ] && [ \"\$h\" != $leader ]" \
	|| fail "no operator took over the Lease after $leader was deleted"
ok "the leader's pod deleted: $(lease) took over the Lease"

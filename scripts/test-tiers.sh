#!/usr/bin/env bash
# The test tiers of `make test` after the build: the unit tier
# (scripts/cargo-test.sh) beside the core's own check (`make core`), the
# tier on the real Kubernetes control plane (scripts/test-kubernetes.sh)
# and the tier on the real node (scripts/test-node.sh), one after the
# other.
#
# Beside each other because they load the machine differently: the unit
# tier keeps most of both cores busy (operators, localkube and
# valkey-server processes by the dozen), while the real tiers mostly wait
# on their processes (the control plane's kept 40 % of two cores busy at
# d8e4e8f). One after the other the three took 1023 s, 469 s and 47 s
# there. The node runs in network and mount namespaces of its own
# (scripts/node.sh), so nothing of it reaches the unit tier's processes.
#
# The unit tier prints as it runs; the others go to a file printed
# whole once the unit tier is done. Each tier's time is printed, and the
# script exits non-zero when any tier failed.
set -uo pipefail
MAKE=${MAKE:-make}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

verdict() { [ "$1" -eq 0 ] && echo passed || echo FAILED; }

began=$SECONDS
{
	code=0
	# The core checked alone (`make core`) first, niced and in a target
	# directory of its own: alone, its dependencies resolve other features
	# than in the workspace's build, so none of that build is reused (86 s
	# of both cores before lint-build, 91 s after it), and a directory of
	# its own keeps it from holding the build lock the unit tier's cargo
	# runs take.
	CARGO_TARGET_DIR="$PWD/target/core" nice -n 10 $MAKE --no-print-directory core || code=$?
	echo "tiers: core $(verdict "$code") after $((SECONDS - began)) s"
	[ "$code" -eq 0 ] && { $MAKE --no-print-directory kubernetes || code=$?; }
	echo "tiers: kubernetes $(verdict "$code") after $((SECONDS - began)) s"
	if [ "$code" -eq 0 ]; then
		$MAKE --no-print-directory test-node || code=$?
		echo "tiers: test-node $(verdict "$code") after $((SECONDS - began)) s"
	fi
	exit "$code"
} >"$log" 2>&1 &
real=$!

unit=0
$MAKE --no-print-directory unit || unit=$?
echo "tiers: unit $(verdict "$unit") after $((SECONDS - began)) s"
real_code=0
wait "$real" || real_code=$?
echo "---- the core alone, the real control plane and the real node (run beside the unit tier) ----"
cat "$log"
echo "tiers: all done after $((SECONDS - began)) s"
[ "$unit" -eq 0 ] && [ "$real_code" -eq 0 ]

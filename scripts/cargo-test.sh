#!/usr/bin/env bash
# Runs every Rust test of the workspace (all targets, then doc tests) and
# closes with one line totalling what cargo printed: "tests: N passed, N failed".
# Every test binary runs even after one fails (--no-fail-fast), so one
# red run names every failure. Exits non-zero when any cargo run failed.
#
# The crash sweeps of tests/operator_crash.rs take most of the run's time,
# nearly all of it waiting on processes (operators crashing and starting
# again, failovers settling): they run beside everything else, after one
# build, instead of after it; then, in the same lane, the short effect
# sweeps of tests/effect_faults.rs (about 10 minutes on CI). The short
# soak of tests/soak.rs (every topology under seeded faults, about 3)
# closes the main lane, which ends first.
#
# LOGBOOK_UNIT_LEAVE_TO_KUBERNETES=1 (`make test` sets it): the suites and
# effect sweeps that the tier on the real control plane runs
# (scripts/test-kubernetes.sh --list) are left to it, not run here on
# localkube as well; `make unit` alone runs everything.
set -uo pipefail
# The main lane's targets: every target, or every one but the suites left
# to the real control plane (cargo cannot exclude a test target by name:
# the rest are named, from cargo metadata).
targets=(--all-targets)
sweep_skips=()
if [ "${LOGBOOK_UNIT_LEAVE_TO_KUBERNETES:-0}" = 1 ]; then
	{ read -r suites; read -r sweeps; } < <(bash "$(dirname "$0")/test-kubernetes.sh" --list)
	mapfile -t named < <(cargo metadata --no-deps --format-version 1 --locked | LEAVE="$suites" python3 -c '
import json, os, sys
leave = set(os.environ["LEAVE"].split())
for p in json.load(sys.stdin)["packages"]:
    for t in p["targets"]:
        if "test" in t["kind"] and t["name"] not in leave:
            print("--test=" + t["name"])
')
	targets=(--lib --bins --examples --benches "${named[@]}")
	for s in $sweeps; do sweep_skips+=(--skip "$s"); done
	echo "left to the real control plane's tier: $suites; $sweeps"
fi
log=$(mktemp)
crash_log=$(mktemp)
trap 'rm -f "$log" "$crash_log"' EXIT
status=0
cargo test --workspace --all-targets --locked --no-run 2>&1 | tee -a "$log" || status=1
if [ "$status" -eq 0 ]; then
	# One lane beside the main one: the crash sweeps, then the effect
	# sweeps. Three lanes (each of those beside the main
	# one) made the unit tier 10 minutes shorter, but the load they put on
	# two cores made a Cluster crash sweep lose acknowledged writes and a
	# Redis 7 reshard miss a role-label decision (see the closing note of
	# that stop): defects to fix, not to meet in CI first.
	{
		lane=0
		cargo test --workspace --locked --no-fail-fast --test operator_crash || lane=1
		cargo test --workspace --locked --no-fail-fast --test effect_faults -- --test-threads=1 "${sweep_skips[@]}" || lane=1
		exit "$lane"
	} >"$crash_log" 2>&1 &
	crash=$!
	cargo test --workspace "${targets[@]}" --locked --no-fail-fast -- --skip every_commit_point_of_ --skip effect_sweep_ --skip every_topology_keeps_its_invariants 2>&1 | tee -a "$log" || status=1
	# The main lane ends about ten minutes before the other (2684 s
	# against 3300 s in a timed clean-clone run): the soak closes it.
	cargo test --workspace --locked --no-fail-fast --test soak 2>&1 | tee -a "$log" || status=1
	wait "$crash" || status=1
	echo "---- tests/operator_crash.rs and tests/effect_faults.rs (run beside the others) ----"
	tee -a "$log" <"$crash_log"
fi
cargo test --workspace --doc --locked 2>&1 | tee -a "$log" || status=1
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"

#!/usr/bin/env bash
# Runs every Rust test of the workspace (all targets, then doc tests) and
# closes with one line totalling what cargo printed: "tests: N passed, N failed".
# Every test binary runs even after one fails (--no-fail-fast), so one
# red run names every failure. Exits non-zero when any cargo run failed.
#
# Three lanes, after one build, each a cargo run after another, nearly
# all of their time waiting on processes (operators crashing and starting
# again, failovers settling), so that two cores run them side by side:
# - the crash sweeps of tests/operator_crash.rs (about 21 minutes on CI);
# - the short effect sweeps of tests/effect_faults.rs (about 8), then the
#   longest suites ($SIDE_SUITES below, about 8);
# - everything else (about 16), closed by the short soak of tests/soak.rs
#   (every topology under seeded faults, about 3).
# (One lane beside the main one took 29 minutes; the main lane alone ran
# 24 of them.)
#
# LOGBOOK_UNIT_LEAVE_TO_KUBERNETES=1 (`make test` sets it): the suites and
# effect sweeps that the tier on the real control plane runs
# (scripts/test-kubernetes.sh --list) are left to it, not run here on
# localkube as well; `make unit` alone runs everything.
set -uo pipefail
# The suites run in the effect sweeps' lane, after them (the longest
# ones: the lanes then end within minutes of each other).
SIDE_SUITES="operator_cluster stale_state operator_reshard_classic"
# The main lane's targets: every target but the side suites (and but the
# suites left to the real control plane): cargo cannot exclude a test
# target by name, so the rest are named, from cargo metadata.
leave="$SIDE_SUITES"
sweep_skips=()
if [ "${LOGBOOK_UNIT_LEAVE_TO_KUBERNETES:-0}" = 1 ]; then
	{ read -r suites; read -r sweeps; } < <(bash "$(dirname "$0")/test-kubernetes.sh" --list)
	leave="$leave $suites"
	for s in $sweeps; do sweep_skips+=(--skip "$s"); done
	echo "left to the real control plane's tier: $suites; $sweeps"
fi
mapfile -t named < <(cargo metadata --no-deps --format-version 1 --locked | LEAVE="$leave" python3 -c '
import json, os, sys
leave = set(os.environ["LEAVE"].split())
for p in json.load(sys.stdin)["packages"]:
    for t in p["targets"]:
        if "test" in t["kind"] and t["name"] not in leave:
            print("--test=" + t["name"])
')
targets=(--lib --bins --examples --benches "${named[@]}")
side=()
for t in $SIDE_SUITES; do side+=(--test "$t"); done
log=$(mktemp)
crash_log=$(mktemp)
side_log=$(mktemp)
trap 'rm -f "$log" "$crash_log" "$side_log"' EXIT
status=0
cargo test --workspace --all-targets --locked --no-run 2>&1 | tee -a "$log" || status=1
if [ "$status" -eq 0 ]; then
	cargo test --workspace --locked --no-fail-fast --test operator_crash >"$crash_log" 2>&1 &
	crash=$!
	{
		lane=0
		cargo test --workspace --locked --no-fail-fast --test effect_faults -- --test-threads=1 "${sweep_skips[@]}" || lane=1
		cargo test --workspace --locked --no-fail-fast "${side[@]}" || lane=1
		exit "$lane"
	} >"$side_log" 2>&1 &
	side_lane=$!
	cargo test --workspace "${targets[@]}" --locked --no-fail-fast -- --skip every_commit_point_of_ --skip effect_sweep_ --skip every_topology_keeps_its_invariants 2>&1 | tee -a "$log" || status=1
	cargo test --workspace --locked --no-fail-fast --test soak 2>&1 | tee -a "$log" || status=1
	wait "$crash" || status=1
	wait "$side_lane" || status=1
	echo "---- tests/operator_crash.rs (run beside the others) ----"
	tee -a "$log" <"$crash_log"
	echo "---- tests/effect_faults.rs, then $SIDE_SUITES (run beside the others) ----"
	tee -a "$log" <"$side_log"
fi
cargo test --workspace --doc --locked 2>&1 | tee -a "$log" || status=1
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"

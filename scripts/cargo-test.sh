#!/usr/bin/env bash
# Runs every Rust test of the workspace (all targets, then doc tests) and
# closes with one line totalling what cargo printed: "tests: N passed, N failed".
# Every test binary runs even after one fails (--no-fail-fast), so one
# red run names every failure. Exits non-zero when any cargo run failed.
#
# Three lanes after one build, each a sequence of cargo runs, because
# nearly all of the tier's time is waiting on processes (operators
# crashing and starting again, failovers settling), not computing. The
# logbook package's tests are four binaries, each suite a module of one
# (Cargo.toml's [[test]] targets), so a lane is a binary and a suite is
# a test-name prefix (`operator_backup::`):
#   - crash_lane: the crash sweeps of tests/operator_crash.rs, backups,
#     the chart's checks and the stale-state sweeps, then the effect
#     sweeps named in BESIDE_CRASHES (one at a time), so that the two
#     lanes end at about the same time;
#   - long_lane: the other short effect sweeps of tests/effect_faults.rs
#     (one test at a time), the short soak of tests/soak.rs (every
#     topology under seeded faults), then the longest end-to-end suites;
#   - the main lane: every other package's tests, then main_lane (the
#     operator's other end-to-end suites) and components.
#
# LOGBOOK_UNIT_LEAVE_TO_KUBERNETES=1 (`make test` sets it): the suites and
# effect sweeps that the tier on the real control plane runs
# (scripts/test-kubernetes.sh --list) are left to it, not run here on
# localkube as well; `make unit` alone runs everything.
set -uo pipefail
LANES=(main_lane components long_lane crash_lane)
# Effect sweeps run in the crash lane, after its own tests: that lane
# otherwise ends minutes before the long one.
BESIDE_CRASHES=(effect_sweep_rebalance effect_sweep_standby_follow_and_promote
	effect_sweep_fail_back effect_sweep_unbind_and_rebind)
beside_crashes_skips=()
for s in "${BESIDE_CRASHES[@]}"; do beside_crashes_skips+=(--skip "$s"); done
skips=()
sweep_skips=()
if [ "${LOGBOOK_UNIT_LEAVE_TO_KUBERNETES:-0}" = 1 ]; then
	{ read -r suites; read -r sweeps; } < <(bash "$(dirname "$0")/test-kubernetes.sh" --list)
	for s in $suites; do skips+=(--skip "$s::"); done
	for s in $sweeps; do sweep_skips+=(--skip "$s"); done
	echo "left to the real control plane's tier: $suites; $sweeps"
fi
# Every other package's test targets, by name (cargo cannot exclude a
# test target).
mapfile -t named < <(cargo metadata --no-deps --format-version 1 --locked | LEAVE="${LANES[*]}" python3 -c '
import json, os, sys
leave = set(os.environ["LEAVE"].split())
for p in json.load(sys.stdin)["packages"]:
    for t in p["targets"]:
        if "test" in t["kind"] and t["name"] not in leave:
            print("--test=" + t["name"])
')
log=$(mktemp)
crash_log=$(mktemp)
b_log=$(mktemp)
trap 'rm -f "$log" "$crash_log" "$b_log"' EXIT
status=0
cargo test --workspace --all-targets --locked --no-run 2>&1 | tee -a "$log" || status=1
if [ "$status" -eq 0 ]; then
	began=$SECONDS
	{
		lane=0
		cargo test --workspace --locked --no-fail-fast --test crash_lane -- "${skips[@]}" || lane=1
		cargo test --workspace --locked --no-fail-fast --test long_lane -- --test-threads=1 "${BESIDE_CRASHES[@]/#/effect_faults::}" "${sweep_skips[@]}" || lane=1
		echo "lane took $((SECONDS - began)) s"
		exit "$lane"
	} >"$crash_log" 2>&1 &
	crash=$!
	{
		lane=0
		cargo test --workspace --locked --no-fail-fast --test long_lane -- --test-threads=1 effect_faults:: "${sweep_skips[@]}" "${beside_crashes_skips[@]}" || lane=1
		cargo test --workspace --locked --no-fail-fast --test long_lane -- soak:: || lane=1
		cargo test --workspace --locked --no-fail-fast --test long_lane -- --skip effect_faults:: --skip soak:: "${skips[@]}" || lane=1
		echo "lane took $((SECONDS - began)) s"
		exit "$lane"
	} >"$b_log" 2>&1 &
	lane_b=$!
	cargo test --workspace --lib --bins --examples --benches "${named[@]}" --locked --no-fail-fast 2>&1 | tee -a "$log" || status=1
	cargo test --workspace --locked --no-fail-fast --test main_lane --test components -- "${skips[@]}" 2>&1 | tee -a "$log" || status=1
	echo "---- the main lane took $((SECONDS - began)) s"
	wait "$lane_b" || status=1
	echo "---- long_lane: tests/effect_faults.rs, tests/soak.rs, the longest suites (run beside the others) ----"
	tee -a "$log" <"$b_log"
	wait "$crash" || status=1
	echo "---- crash_lane: tests/operator_crash.rs, backups, the chart, stale state, four effect sweeps (run beside the others) ----"
	tee -a "$log" <"$crash_log"
fi
cargo test --workspace --doc --locked 2>&1 | tee -a "$log" || status=1
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"

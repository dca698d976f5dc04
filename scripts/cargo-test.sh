#!/usr/bin/env bash
# Runs every Rust test of the workspace (all targets, then doc tests) and
# closes with one line totalling what cargo printed: "tests: N passed, N failed".
# Every test binary runs even after one fails (--no-fail-fast), so one
# red run names every failure. Exits non-zero when any cargo run failed.
#
# The crash sweeps of tests/operator_crash.rs take half the run's time,
# nearly all of it waiting on processes (operators crashing and starting
# again, failovers settling): they run beside everything else, after one
# build, instead of after it; then, in the same lane, the short effect
# sweeps of tests/effect_faults.rs (about 8 minutes) and the short soak of
# tests/soak.rs (every topology under seeded faults, about 150 s).
set -uo pipefail
log=$(mktemp)
crash_log=$(mktemp)
trap 'rm -f "$log" "$crash_log"' EXIT
status=0
cargo test --workspace --all-targets --locked --no-run 2>&1 | tee -a "$log" || status=1
if [ "$status" -eq 0 ]; then
	{
		lane=0
		cargo test --workspace --locked --no-fail-fast --test operator_crash || lane=1
		cargo test --workspace --locked --no-fail-fast --test effect_faults -- --test-threads=1 || lane=1
		cargo test --workspace --locked --no-fail-fast --test soak || lane=1
		exit "$lane"
	} >"$crash_log" 2>&1 &
	crash=$!
	cargo test --workspace --all-targets --locked --no-fail-fast -- --skip every_commit_point_of_ --skip effect_sweep_ --skip every_topology_keeps_its_invariants 2>&1 | tee -a "$log" || status=1
	wait "$crash" || status=1
	echo "---- tests/operator_crash.rs and tests/soak.rs (run beside the others) ----"
	tee -a "$log" <"$crash_log"
fi
cargo test --workspace --doc --locked 2>&1 | tee -a "$log" || status=1
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"

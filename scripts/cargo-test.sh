#!/usr/bin/env bash
# Runs every Rust test of the workspace (all targets, then doc tests) and
# closes with one line totalling what cargo printed: "tests: N passed, N failed".
# Every test binary runs even after one fails (--no-fail-fast), so one
# red run names every failure. Exits non-zero when any cargo run failed.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --all-targets --locked --no-fail-fast 2>&1 | tee -a "$log" || status=1
cargo test --workspace --doc --locked 2>&1 | tee -a "$log" || status=1
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"

#!/usr/bin/env bash
# Runs every Rust test of the workspace (all targets, then doc tests) and
# closes with one line totalling what cargo printed: "tests: N passed, N failed".
# Every test binary runs even after one fails (--no-fail-fast), so one
# red run names every failure. Exits non-zero when any cargo run failed.
#
# After one build, the tests run as jobs taken from one queue by three
# workers, because nearly all of the tier's time is waiting on processes
# (operators crashing and starting again, failovers settling), not
# computing. A job is one cargo run: the logbook package's end-to-end
# tests are four binaries (Cargo.toml's [[test]] targets: main_lane,
# components, long_lane, crash_lane), each suite a module of one, so a
# job is a binary and a test-name filter (`operator_crash::`). The seven
# groups come first, longest first (the durations `make test` printed,
# docs/architecture.md "How `make test` runs"), then each effect sweep of
# tests/effect_faults.rs as a job of its own (most of them shorter than
# any group), so the workers end at about the same time. Each
# job's output is printed whole, in queue order, after all have run, with
# how long the job took.
#
# LOGBOOK_UNIT_LEAVE_TO_KUBERNETES=1 (`make test` sets it): the suites and
# effect sweeps that the tier on the real control plane runs
# (scripts/test-kubernetes.sh --list) are left to it, not run here on
# localkube as well; `make unit` alone runs everything.
set -uo pipefail
WORKERS=${LOGBOOK_TEST_WORKERS:-3}
LANES=(main_lane components long_lane crash_lane)
skips=()
left_sweeps=()
if [ "${LOGBOOK_UNIT_LEAVE_TO_KUBERNETES:-0}" = 1 ]; then
	{ read -r suites; read -r sweeps; } < <(bash "$(dirname "$0")/test-kubernetes.sh" --list)
	for s in $suites; do skips+=(--skip "$s::"); done
	for s in $sweeps; do left_sweeps+=("effect_faults::$s"); done
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
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
log="$dir/all.log"
status=0
cargo test --workspace --all-targets --locked --no-run 2>&1 | tee -a "$log" || status=1
if [ "$status" -eq 0 ]; then
	# The tests of tests/effect_faults.rs make test runs here, one job
	# each: those not ignored (the full sweeps are) nor left to the real
	# control plane's tier.
	list() { cargo test --workspace --locked --test long_lane -- --list "$@" effect_faults:: 2>/dev/null | sed -n 's/: test$//p' | sort; }
	mapfile -t sweeps < <(comm -23 <(list) <(list --ignored) | grep -vxF -f <(printf '%s\n' "${left_sweeps[@]}") || true)
	if [ "${#sweeps[@]}" -eq 0 ]; then
		echo "cargo-test: no test of effect_faults:: found in the long_lane binary"
		status=1
	fi
	queue="$dir/queue"
	: >"$queue"
	job() {
		local name=$1
		shift
		printf '%s\t%s\n' "$name" "$(printf '%q ' "$@")" >>"$queue"
	}
	# The groups longest first, then the sweeps (see the header).
	job crash-sweeps --test crash_lane -- operator_crash:: "${skips[@]}"
	job main-lane --test main_lane -- "${skips[@]}"
	job backups-chart-stale-state --test crash_lane -- --skip operator_crash:: "${skips[@]}"
	job soak --test long_lane -- soak::
	job other-packages --lib --bins --examples --benches "${named[@]}"
	# Every other suite of the long lane, `samples::` among them (each
	# file of config/samples/ applied and waited for: under a minute when
	# every sample reaches its state).
	job long-suites --test long_lane -- --skip effect_faults:: --skip soak:: "${skips[@]}"
	job components --test components -- "${skips[@]}"
	for s in "${sweeps[@]}"; do job "${s#effect_faults::}" --test long_lane -- --exact "$s"; done
	echo 0 >"$queue.next"
	worker() {
		local n line name args start rc took
		while true; do
			n=$(flock "$queue.next" sh -c 'n=$(cat "$1"); echo $((n + 1)) >"$1"; echo "$n"' _ "$queue.next")
			line=$(sed -n "$((n + 1))p" "$queue")
			[ -n "$line" ] || return 0
			name=${line%%$'\t'*}
			args=${line#*$'\t'}
			start=$SECONDS
			eval "cargo test --workspace --locked --no-fail-fast $args" >"$dir/job-$n.log" 2>&1
			rc=$?
			took=$((SECONDS - start))
			echo "$took" >"$dir/job-$n.took"
			echo "$rc" >"$dir/job-$n.rc"
			echo "cargo-test: $name took $took s$([ "$rc" -eq 0 ] || echo ", FAILED")"
		done
	}
	began=$SECONDS
	echo "cargo-test: $(wc -l <"$queue") jobs on $WORKERS workers"
	pids=()
	for _ in $(seq "$WORKERS"); do
		worker &
		pids+=($!)
	done
	wait "${pids[@]}"
	echo "cargo-test: the jobs took $((SECONDS - began)) s"
	n=0
	while IFS=$'\t' read -r name _; do
		echo "---- job $name: $(cat "$dir/job-$n.took" 2>/dev/null || echo '?') s ----"
		tee -a "$log" <"$dir/job-$n.log"
		[ "$(cat "$dir/job-$n.rc" 2>/dev/null)" = 0 ] || { status=1; echo "---- job $name FAILED ----"; }
		n=$((n + 1))
	done <"$queue"
fi
cargo test --workspace --doc --locked 2>&1 | tee -a "$log" || status=1
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"

#!/usr/bin/env bash
# The permissions the operator used across the end-to-end tests, beside
# those the chart grants: run every test with the chart's RBAC enforced and
# LOGBOOK_RBAC_USAGE set (the harness writes one file per test), then print
# each (verb, group, resource) used, and each granted one no test used.
#   bash scripts/rbac-usage.sh            # runs the tests (about 10 min)
#   bash scripts/rbac-usage.sh DIR        # reads an earlier run's DIR
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-}
if [ -z "$dir" ]; then
	dir=$(mktemp -d)
	LOGBOOK_RBAC_USAGE=$dir cargo test --workspace --all-targets --locked >/dev/null
fi
used=$(cat "$dir"/*.tsv | awk -F'\t' 'NF == 3 { print $1 "\t" ($2 == "" ? "core" : $2) "\t" $3 }' | sort -u)
granted=$(.tools/bin/helm template logbook charts/logbook --show-only templates/rbac.yaml |
	python3 -c '
import sys, yaml
for doc in yaml.safe_load_all(sys.stdin):
    if not doc or doc["kind"] not in ("Role", "ClusterRole"):
        continue
    for rule in doc["rules"]:
        for g in rule["apiGroups"]:
            for r in rule["resources"]:
                for v in rule["verbs"]:
                    print("\t".join([v, g or "core", r]))
' | sort -u)
echo "used by the operator (verb, group, resource):"
echo "$used" | sed 's/^/  /'
echo "granted and never used:"
comm -13 <(echo "$used") <(echo "$granted") | sed 's/^/  /'
echo "used and not granted (a test would have failed):"
comm -23 <(echo "$used") <(echo "$granted") | sed 's/^/  /'

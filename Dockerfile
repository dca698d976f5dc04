# The operator's image: built in one stage, run from a distroless, non-root
# base. Not built by `make test` (no container engine runs where it is
# developed); see the README.
#
#   docker build -t ghcr.io/logbook-dev/logbook:0.1.0 .

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The operator with its own profile (Cargo.toml: optimised for size, one
# codegen unit, LTO): fewer of its pages resident (docs/benchmarks.md). It
# is the image's one executable; a restore's init container runs its
# `restore-fetch` subcommand. The tools (`logbook`, `kubectl-valkey`) are
# installed on people's machines, not here.
RUN cargo build --profile operator --locked -p logbook-operator --bin logbook-operator --features jemalloc \
 && install -D -m 0755 target/operator/logbook-operator /out/logbook-operator

# glibc, CA certificates, /tmp, and user 65532 (nonroot); no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/logbook-operator /usr/local/bin/logbook-operator
USER 65532:65532
# The chart's `operator ...` arguments run it as they run `logbook`; the
# restore init containers name `logbook-operator restore-fetch`.
ENTRYPOINT ["/usr/local/bin/logbook-operator"]
CMD ["operator"]

# The operator's image: built in one stage, run from a distroless, non-root
# base. Not built by `make test` (no container engine runs where it is
# developed); see the README.
#
#   docker build -t ghcr.io/logbook-dev/logbook:0.1.0 .

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The operator with its own profile (Cargo.toml: optimised for size, one
# codegen unit, LTO): fewer of its pages resident (docs/benchmarks.md).
RUN cargo build --release --locked --bin logbook --bin kubectl-valkey \
 && cargo build --profile operator --locked --bin logbook-operator \
 && install -D -m 0755 target/release/logbook /out/logbook \
 && install -D -m 0755 target/operator/logbook-operator /out/logbook-operator \
 && install -D -m 0755 target/release/kubectl-valkey /out/kubectl-valkey

# glibc, CA certificates, /tmp, and user 65532 (nonroot); no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/logbook /usr/local/bin/logbook
COPY --from=build /out/logbook-operator /usr/local/bin/logbook-operator
COPY --from=build /out/kubectl-valkey /usr/local/bin/kubectl-valkey
USER 65532:65532
# The operator alone (a smaller executable: less of it resident); the
# chart's `operator ...` arguments run it as they run `logbook`. The
# restore init containers name `logbook` as their command.
ENTRYPOINT ["/usr/local/bin/logbook-operator"]
CMD ["operator"]

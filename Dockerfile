# ocidiff and the reference registry in a small runtime image (multi-stage).
#
#   docker build -t ocidiff .                       # or: podman build -t ocidiff .
#   docker run --rm --network host -v "$PWD/out:/out" ocidiff \
#       conformance --target mine=http://127.0.0.1:5000 --out /out
#   docker run --rm -p 5000:5000 --entrypoint reference-registry ocidiff --listen 0.0.0.0:5000
#
# Build arguments:
#   RUST_IMAGE     the builder (default: the official Rust image)
#   RUNTIME_IMAGE  the runtime base; it needs glibc and libgcc_s only (both binaries use rustls,
#                  no OpenSSL): distroless/cc by default
#   BINARIES       build (default: compile this checkout) | prebuilt (take the two binaries
#                  from prebuilt/ in the build context: CI that built them already, and the test
#                  suite here, harness/tests/image.rs, where no image registry is reachable)
ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12
ARG BINARIES=build

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ocidiff -p reference-registry \
 && mkdir -p /out \
 && cp target/release/ocidiff target/release/reference-registry /out/

FROM scratch AS prebuilt
COPY prebuilt/ocidiff prebuilt/reference-registry /out/

FROM ${BINARIES} AS binaries

FROM ${RUNTIME_IMAGE}
COPY --from=binaries /out/ocidiff /out/reference-registry /usr/local/bin/
WORKDIR /out
ENTRYPOINT ["/usr/local/bin/ocidiff"]
CMD ["--help"]

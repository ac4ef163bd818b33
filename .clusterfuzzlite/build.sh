#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build script for ocidiff's fuzz targets.
#
# Runs inside gcr.io/oss-fuzz-base/base-builder-rust (nightly Rust + cargo-fuzz, with $SRC,
# $OUT and $SANITIZER set by the infrastructure). Builds every target of fuzz/Cargo.toml and
# copies each binary to $OUT with its seed corpus (corpora/fuzz/<target>/ as
# <target>_seed_corpus.zip), so the service starts from the same inputs `cargo test` replays.
# Outside that image: RUSTC_BOOTSTRAP=1 lets a stable toolchain run it (see fuzz/README.md).

cd "${SRC:?}/ocidiff"
OUT="${OUT:?}"

# The infrastructure's sanitizer flags arrive through RUSTFLAGS; cargo fuzz adds libFuzzer's.
cargo fuzz build -O --debug-assertions --features libfuzzer
# The structure-aware `registry` target again without CMP tracing (it takes digests and paths
# from its model; tracing cost ~35 % of its run and no coverage, fuzz/README.md), in its own
# target dir; with mimalloc only when no sanitizer needs its allocator.
fast_features=libfuzzer
[ "${SANITIZER:-address}" = none ] && fast_features=libfuzzer,mimalloc
cargo fuzz build -O --debug-assertions --features "$fast_features" --no-trace-compares \
    --target-dir target/fuzz-fast registry

triple=x86_64-unknown-linux-gnu
# fuzz/ is a workspace member, so binaries land in the workspace target dir.
bin_dir=target/$triple/release
[ -d "$bin_dir" ] || bin_dir=fuzz/target/$triple/release

for t in $(cargo fuzz list); do
    if [ "$t" = registry ]; then
        cp "target/fuzz-fast/$triple/release/$t" "$OUT/"
    else
        cp "$bin_dir/$t" "$OUT/"
    fi
    if [ -d "corpora/fuzz/$t" ] && [ -n "$(ls -A "corpora/fuzz/$t")" ]; then
        (cd "corpora/fuzz/$t" && zip -q -j "$OUT/${t}_seed_corpus.zip" ./*)
    fi
    # Inputs are small; the registry targets allocate per request.
    printf '[libfuzzer]\nmax_len = 65536\ntimeout = 10\nrss_limit_mb = 2560\n' > "$OUT/$t.options"
done

#!/usr/bin/env bash
# Builds every fuzz target (libFuzzer, `cargo fuzz`) and runs each for SECONDS (default 10),
# printing executions per second per target. Exits non-zero if any target found a crash
# (the input is in fuzz/artifacts/<target>/).
#
#   fuzz/run-all.sh [SECONDS] [TARGET...]
#
# Env: FUZZ_SANITIZER (default `none`; `address` works too, ~2x slower), FUZZ_JOBS (cargo -j),
#      FUZZ_SEED (libFuzzer -seed, for reproducible CI runs; default random).
# Works on the stable toolchain through RUSTC_BOOTSTRAP=1 (cargo fuzz passes -Z flags).
# New corpus entries go to fuzz/corpus/<target>/ (git-ignored); the seeds in
# corpora/fuzz/<target>/ are read, never written.
set -euo pipefail

secs="${1:-10}"
shift || true
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export RUSTC_BOOTSTRAP=1
san="${FUZZ_SANITIZER:-none}"
triple="$(rustc -vV | sed -n 's/^host: //p')"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "cargo-fuzz missing: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

jobs=()
[ -n "${FUZZ_JOBS:-}" ] && jobs=(-j "$FUZZ_JOBS")
# Targets built without `-sanitizer-coverage-trace-compares` (and, without a sanitizer, with
# mimalloc): the structure-aware `registry` target takes its digests and paths from its model,
# not from compared bytes, so CMP tracing (~35 % of its run) bought no coverage: 20 s, seed 1,
# 4,375 edges either way, at 2,985 execs/s with it and 4,879 without (fuzz/README.md). Their
# own target dir, since the flags differ.
fast=(registry)
fast_dir="$root/target/fuzz-fast"
fast_features=libfuzzer
[ "$san" = none ] && fast_features=libfuzzer,mimalloc
is_fast() { local f; for f in "${fast[@]}"; do [ "$f" = "$1" ] && return 0; done; return 1; }
slow=()
for t in "${targets[@]}"; do is_fast "$t" || slow+=("$t"); done
echo "== building ${#targets[@]} fuzz targets (sanitizer: $san)"
[ "${#slow[@]}" -eq 0 ] || cargo fuzz build -s "$san" --features libfuzzer "${jobs[@]}"
for t in "${targets[@]}"; do
    if is_fast "$t"; then
        cargo fuzz build -s "$san" --features "$fast_features" --no-trace-compares \
            --target-dir "$fast_dir" "${jobs[@]}" "$t"
    fi
done

# The binaries land in the workspace target dir (fuzz is a workspace member) or fuzz/target.
bin_dir=""
if [ "${#slow[@]}" -ne 0 ]; then
    for d in "$root/target/$triple/release" "$root/fuzz/target/$triple/release"; do
        if [ -x "$d/${slow[0]}" ]; then bin_dir="$d"; break; fi
    done
    [ -n "$bin_dir" ] || { echo "fuzz binaries not found" >&2; exit 2; }
fi
bin_of() { if is_fast "$1"; then echo "$fast_dir/$triple/release/$1"; else echo "$bin_dir/$1"; fi; }

failed=()
printf '\n%-18s %10s %12s %8s %s\n' target execs "execs/s" cov result
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" "corpora/fuzz/$t"
    log="fuzz/artifacts/$t/run.log"
    set +e
    "$(bin_of "$t")" "fuzz/corpus/$t" "corpora/fuzz/$t" \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" ${FUZZ_SEED:+-seed="$FUZZ_SEED"} \
        >"$log" 2>&1
    rc=$?
    set -e
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
    result=ok
    if [ "$rc" -ne 0 ]; then
        result="CRASH (rc=$rc, see $log)"
        failed+=("$t")
    fi
    printf '%-18s %10s %12s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$result"
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz targets with findings: ${failed[*]}" >&2
    exit 1
fi

#!/usr/bin/env bash
# Fuzz throughput, in one run: ops/s of `ocidiff fuzz --no-shrink` with --jobs 1 and with the
# default --jobs, against the embedded reference alone, an external reference-registry process,
# CNCF distribution (when docker-registry is installed; again with its storage on tmpfs,
# OCIDIFF_DISTRIBUTION_DIR=/dev/shm) and the embedded crates.io
# container-registry; the ratio default / jobs 1; and the peak RSS of each run.
#
#   bash harness/benches/throughput.sh [SECONDS]     (default 20 s per run)
#
# Release build; every run uses the same seed. Performance claims in README.md come from here.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-20}"
cargo build -q --release -p ocidiff -p reference-registry
BIN=target/release/ocidiff
OUT="$(mktemp -d)"
trap 'kill ${EXT_PID:-} 2>/dev/null || true; rm -rf "$OUT"' EXIT

target/release/reference-registry --listen 127.0.0.1:0 > "$OUT/ext.txt" 2>/dev/null &
EXT_PID=$!
for _ in $(seq 50); do grep -q listening "$OUT/ext.txt" 2>/dev/null && break; sleep 0.1; done
EXT_URL="$(sed -n 's/^listening on //p' "$OUT/ext.txt")"

# run NAME ARGS...: prints "ops/s peak-RSS-MiB"
run() {
  local name="$1"; shift
  /usr/bin/time -f "%M" -o "$OUT/$name.rss" "$BIN" fuzz --no-shrink --quiet --seed 1 \
    --cases 100000000 --duration "$SECS" --out "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1 || true
  local ops secs
  ops="$(sed -n 's/^run [^:]*: [0-9]* cases, \([0-9]*\) ops in \([0-9.]*\)s.*/\1/p' "$OUT/$name.log")"
  secs="$(sed -n 's/^run [^:]*: [0-9]* cases, \([0-9]*\) ops in \([0-9.]*\)s.*/\2/p' "$OUT/$name.log")"
  if [ -z "$ops" ]; then echo "0 0"; return; fi
  awk -v o="$ops" -v s="$secs" -v r="$(tail -n 1 "$OUT/$name.rss")" 'BEGIN { printf "%.0f %.0f\n", o / s, r / 1024 }'
}

printf '%-34s %12s %12s %8s %14s %14s\n' "targets" "jobs 1 op/s" "default op/s" "ratio" "RSS jobs 1" "RSS default"
row() {
  local label="$1"; shift
  read -r a ra < <(run "${label// /_}-1" --jobs 1 "$@")
  read -r b rb < <(run "${label// /_}-n" "$@")
  awk -v l="$label" -v a="$a" -v b="$b" -v ra="$ra" -v rb="$rb" \
    'BEGIN { printf "%-34s %12d %12d %7.2fx %11d MiB %11d MiB\n", l, a, b, (a > 0 ? b / a : 0), ra, rb }'
}
row "reference" --target reference
row "reference + reference process" --target reference --target "ext=$EXT_URL"
if command -v docker-registry >/dev/null 2>&1 || command -v registry >/dev/null 2>&1; then
  row "reference + distribution" --target reference --target distribution
  if [ -d /dev/shm ]; then
    OCIDIFF_DISTRIBUTION_DIR=/dev/shm row "reference + distribution, tmpfs" --target reference --target distribution
  fi
fi
row "reference + container-registry" --target reference --target container-registry

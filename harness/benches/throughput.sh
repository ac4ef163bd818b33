#!/usr/bin/env bash
# Fuzz throughput, in one run: ops/s of `ocidiff fuzz --no-shrink` with --jobs 1 and with the
# default --jobs, against the embedded reference alone, an external reference-registry process,
# CNCF distribution (when docker-registry is installed; again with its storage on tmpfs,
# OCIDIFF_DISTRIBUTION_DIR=/dev/shm) and the embedded crates.io
# container-registry; the ratio default / jobs 1; the peak RSS of each run; and, against
# distribution, the CPU that the distribution process itself used per op (its ceiling).
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
trap 'kill ${EXT_PID:-} ${SLOW_PID:-} 2>/dev/null || true; rm -rf "$OUT"' EXIT

target/release/reference-registry --listen 127.0.0.1:0 > "$OUT/ext.txt" 2>/dev/null &
EXT_PID=$!
for _ in $(seq 50); do grep -q listening "$OUT/ext.txt" 2>/dev/null && break; sleep 0.1; done
EXT_URL="$(sed -n 's/^listening on //p' "$OUT/ext.txt")"
# A registry 60 ms away (a hosted one): every answer 60 ms late. Issue 27's goal: the default
# (adaptive cases in flight) at least 25x --jobs 1.
target/release/reference-registry --listen 127.0.0.1:0 --quirk latency:60 > "$OUT/slow.txt" 2>/dev/null &
SLOW_PID=$!
for _ in $(seq 50); do grep -q listening "$OUT/slow.txt" 2>/dev/null && break; sleep 0.1; done
SLOW_URL="$(sed -n 's/^listening on //p' "$OUT/slow.txt")"

# The CPU time (clock ticks) a process has used so far, from /proc/PID/stat (utime + stime).
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || true; }

# run NAME ARGS...: prints "ops/s peak-RSS-MiB distribution-ms-per-op" (the last is 0 when no
# distribution was launched). The distribution process ocidiff launches is found by its config
# path and its CPU sampled every 0.2 s until the run ends (at most 0.2 s of it is missed).
run() {
  local name="$1"; shift
  /usr/bin/time -f "%M" -o "$OUT/$name.rss" "$BIN" fuzz --no-shrink --quiet --seed 1 \
    --cases 100000000 --duration "$SECS" --out "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1 &
  local pid=$! dpid="" dticks=0 t
  while kill -0 "$pid" 2>/dev/null; do
    [ -n "$dpid" ] || dpid="$(pgrep -f 'serve .*ocidiff-distribution-[^/]*/config.yml' | head -n 1 || true)"
    if [ -n "$dpid" ]; then t="$(ticks "$dpid")"; if [ -n "$t" ]; then dticks="$t"; fi; fi
    sleep 0.2
  done
  wait "$pid" || true
  local ops secs
  ops="$(sed -n 's/^run [^:]*: [0-9]* cases, \([0-9]*\) ops in \([0-9.]*\)s.*/\1/p' "$OUT/$name.log")"
  secs="$(sed -n 's/^run [^:]*: [0-9]* cases, \([0-9]*\) ops in \([0-9.]*\)s.*/\2/p' "$OUT/$name.log")"
  if [ -z "$ops" ]; then echo "0 0 0"; return; fi
  awk -v o="$ops" -v s="$secs" -v r="$(tail -n 1 "$OUT/$name.rss")" -v d="$dticks" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.0f %.0f %.2f\n", o / s, r / 1024, (o > 0 ? 1000 * d / hz / o : 0) }'
}

printf '%-34s %12s %12s %8s %14s %14s\n' "targets" "jobs 1 op/s" "default op/s" "ratio" "RSS jobs 1" "RSS default"
DIST_CPU=""
row() {
  local label="$1"; shift
  read -r a ra da < <(run "${label// /_}-1" --jobs 1 "$@")
  read -r b rb db < <(run "${label// /_}-n" "$@")
  awk -v l="$label" -v a="$a" -v b="$b" -v ra="$ra" -v rb="$rb" \
    'BEGIN { printf "%-34s %12d %12d %7.2fx %11d MiB %11d MiB\n", l, a, b, (a > 0 ? b / a : 0), ra, rb }'
  if awk -v d="$db" 'BEGIN { exit !(d > 0) }'; then
    DIST_CPU+="$(awk -v l="$label" -v a="$da" -v b="$db" -v c="$(nproc)" 'BEGIN {
      printf "%s: distribution alone used %.2f ms of CPU per op (jobs 1), %.2f ms (default): with all %d cores and ocidiff taking none it could serve at most %.0f op/s", l, a, b, c, 1000 * c / b }')"$'\n'
  fi
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
# --no-cleanup: the deletion of what the run pushed (URL targets) is not fuzzing time.
row "reference + a registry 60 ms away" --target reference --target "slow=$SLOW_URL" --no-cleanup

# Against distribution the run is bound by distribution itself: its CPU per op says how many
# op/s it could serve even if ocidiff and the reference took no CPU at all (issue 13's goal was
# 5x of 232 op/s = 1,160).
if [ -n "$DIST_CPU" ]; then
  echo
  printf '%s' "$DIST_CPU"
fi

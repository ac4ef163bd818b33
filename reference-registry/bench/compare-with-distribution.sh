#!/usr/bin/env bash
# Compare the reference registry with Debian's distribution 2.8.2 and the crates.io
# `container-registry` (a registry written in Rust, served by ocidiff's `serve` example) on
# loopback, in one run.
#
#   bash reference-registry/bench/compare-with-distribution.sh
#
# All registries use disk storage in fresh temp dirs. Seeds each with a small
# manifest + tag and a 64 MiB blob, then measures with wrk (2 threads, 16
# connections, 10 s each): GET manifest, GET tag list, GET 64 MiB blob (HEAD
# manifest with `ab -i -k -c16`, as wrk cannot load-test HEAD); the
# push time of a 64 MiB blob monolithic (POST+PUT) and chunked (8 MiB PATCHes),
# median of 5 (wall time of the curl calls, bodies streamed with `curl -T`;
# also the blob requests alone: curl's time_total, so without the start-up
# of ~10 client processes per chunked push); and each registry's peak RSS (VmHWM, reset before the phase)
# during 8 concurrent 64 MiB uploads. Prints a Markdown table.
#
# A push a registry refuses (container-registry answers 500 to a monolithic closing PUT)
# is reported as `fails (CODE)` in its column, not timed.
#
# Env: WRK_DURATION (default 10s), PUSH_RUNS (default 5), DIST_BIN
# (default /usr/bin/docker-registry), SKIP_BUILD=1 to reuse target/release,
# REF_BIN=PATH to use another reference-registry binary (no build), NO_CR=1 to leave
# container-registry out.
set -euo pipefail

WRK_DURATION=${WRK_DURATION:-10s}
PUSH_RUNS=${PUSH_RUNS:-5}
DIST_BIN=${DIST_BIN:-/usr/bin/docker-registry}
BLOB_MIB=64
CHUNK_MIB=8
CONCURRENT_UPLOADS=8

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d /tmp/ocidiff-bench.XXXXXX)
REF_PID=""
DIST_PID=""
CR_PID=""

cleanup() {
    # Only the processes this script started, by id.
    local p
    for p in "$REF_PID" "$DIST_PID" "$CR_PID"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null || true; done
    for p in "$REF_PID" "$DIST_PID" "$CR_PID"; do [[ -n "$p" ]] && wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[bench] $*" >&2; }
die() { echo "[bench] ERROR: $*" >&2; exit 1; }

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk; then
    log "wrk missing; installing (apt-get install -y wrk)"
    timeout 300 apt-get install -y wrk >/dev/null || die "could not install wrk"
fi
# wrk 4.1 cannot load-test HEAD: its parser waits for the Content-Length body
# a HEAD response never has (0 requests complete). HEAD uses ApacheBench -i.
if ! need ab; then
    log "ab missing; installing (apt-get install -y apache2-utils)"
    timeout 300 apt-get install -y apache2-utils >/dev/null || die "could not install apache2-utils"
fi
for t in curl sha256sum python3 "$DIST_BIN"; do need "$t" || die "$t not found"; done

# ---------------------------------------------------------------- build & start
if [[ -z "${REF_BIN:-}" && "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building reference-registry (release)"
    (cd "$ROOT" && timeout 1800 cargo build --release -p reference-registry --bin reference-registry >&2)
fi
if [[ "${NO_CR:-0}" != 1 && "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building ocidiff's serve example (release; serves container-registry)"
    (cd "$ROOT" && timeout 1800 cargo build --release -p ocidiff --example serve >&2)
fi
REF_BIN=${REF_BIN:-"$ROOT/target/release/reference-registry"}
[[ -x "$REF_BIN" ]] || die "$REF_BIN not built"
SERVE_BIN="$ROOT/target/release/examples/serve"
WHO=(ref dist)
[[ "${NO_CR:-0}" != 1 ]] && WHO+=(cr)
declare -A NAME=([ref]=reference [dist]=distribution [cr]=container-registry)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_ready() { # url
    local i
    for i in $(seq 1 200); do
        if [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1/v2/")" == 200 ]]; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# Print the URL a server announced as `listening on URL` in OUT (no trailing slash), once it
# answers; dies with its stderr (ERR) otherwise.
announced_url() { # name out err
    local url="" i
    for i in $(seq 1 200); do
        url=$(sed -n 's/^listening on //p' "$2" | head -1 | tr -d '\r')
        [[ -n "$url" ]] && break
        sleep 0.1
    done
    [[ -n "$url" ]] || die "$1 did not report its address: $(cat "$3")"
    url=${url%/}
    wait_ready "$url" || die "$1 not ready"
    echo "$url"
}

mkdir -p "$WORK/ref-storage" "$WORK/dist-storage" "$WORK/data"
"$REF_BIN" --listen 127.0.0.1:0 --storage "$WORK/ref-storage" >"$WORK/ref.out" 2>"$WORK/ref.err" &
REF_PID=$!
REF_URL=$(announced_url reference-registry "$WORK/ref.out" "$WORK/ref.err")

DIST_PORT=$(free_port)
cat >"$WORK/dist.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/dist-storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$DIST_PORT
EOF
"$DIST_BIN" serve "$WORK/dist.yml" >"$WORK/dist.log" 2>&1 &
DIST_PID=$!
DIST_URL="http://127.0.0.1:$DIST_PORT"
wait_ready "$DIST_URL" || die "distribution not ready: $(tail -5 "$WORK/dist.log")"
log "reference: $REF_URL (pid $REF_PID)   distribution: $DIST_URL (pid $DIST_PID)"
declare -A BASE=([ref]=$REF_URL [dist]=$DIST_URL)
declare -A PID=([ref]=$REF_PID [dist]=$DIST_PID)
if [[ " ${WHO[*]} " == *" cr "* ]]; then
    [[ -x "$SERVE_BIN" ]] || die "$SERVE_BIN not built"
    "$SERVE_BIN" container-registry >"$WORK/cr.out" 2>"$WORK/cr.err" &
    CR_PID=$!
    CR_URL=$(announced_url container-registry "$WORK/cr.out" "$WORK/cr.err")
    BASE[cr]=$CR_URL
    PID[cr]=$CR_PID
    log "container-registry: $CR_URL (pid $CR_PID)"
fi

# ---------------------------------------------------------------- helpers
CURL=(curl -sS --max-time 300)

# POST an upload; print the absolute upload URL. (curl -w '%header{...}'
# instead of -D + grep/sed: fewer processes in the timed section.)
start_upload() { # base repo
    local loc
    loc=$("${CURL[@]}" -o /dev/null -w '%header{location}' -X POST -H 'Content-Length: 0' "$1/v2/$2/blobs/uploads/")
    [[ -n "$loc" ]] || die "no Location from POST $1/v2/$2/blobs/uploads/"
    [[ "$loc" == http* ]] || loc="$1$loc"
    echo "$loc"
}

with_digest() { # url digest
    if [[ "$1" == *\?* ]]; then echo "$1&digest=$2"; else echo "$1?digest=$2"; fi
}

digest_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# Blob bodies are sent with `-T FILE` (streamed from the file while sending,
# Content-Length from its size), not `--data-binary @FILE`, which makes curl
# read the whole file into memory before it even connects (~60-90 ms for
# 64 MiB here, client time that was counted as push time). `Expect:` turns
# off curl's `Expect: 100-continue` round trip for large bodies.
UPLOAD=(-H 'Expect:' -H 'Content-Type: application/octet-stream')

# Sum of curl's time_total over the blob requests (PUT/PATCH) of the last
# push: time on the wire and in the registry, without client process
# start-up.
REQ_TIME=0
add_req_time() { REQ_TIME=$(awk -v a="$REQ_TIME" -v b="$1" 'BEGIN {printf "%.6f", a + b}'); }

# Monolithic POST + PUT. Returns 1 (PUSH_FAIL = the status) unless 201.
PUSH_FAIL=""
push_mono() { # base repo file digest
    local up out code
    up=$(start_upload "$1" "$2")
    out=$("${CURL[@]}" -o /dev/null -w '%{http_code} %{time_total}' -X PUT "${UPLOAD[@]}" \
        -T "$3" "$(with_digest "$up" "$4")")
    code=${out%% *}
    if [[ "$code" != 201 ]]; then PUSH_FAIL="PUT $code"; return 1; fi
    REQ_TIME=${out#* }
}

# POST, one PATCH with the whole file, empty closing PUT (for seeding registries that refuse
# the monolithic PUT).
push_one_patch() { # base repo file digest
    local up out code
    up=$(start_upload "$1" "$2")
    out=$("${CURL[@]}" -o /dev/null -w '%{http_code} %header{location}' -X PATCH "${UPLOAD[@]}" \
        -H "Content-Range: 0-$(($(stat -c %s "$3") - 1))" -T "$3" "$up")
    code=${out%% *}
    [[ "$code" == 202 ]] || die "PATCH to $1 -> $code"
    up=${out#* }
    [[ "$up" == http* ]] || up="$1$up"
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Length: 0' "$(with_digest "$up" "$4")")
    [[ "$code" == 201 ]] || die "closing PUT to $1 -> $code"
}

seed_blob() { # base repo file digest
    push_mono "$@" || push_one_patch "$@"
}

# Chunked: POST, PATCH each chunk file in order, empty PUT. The chunk sizes
# (CHUNK_SIZES, same order) are taken before the timed section.
push_chunked() { # base repo digest chunkdir
    local up code out off=0 size end i=0 rest
    up=$(start_upload "$1" "$2")
    REQ_TIME=0
    for c in "$4"/chunk.*; do
        size=${CHUNK_SIZES[$i]}
        i=$((i + 1))
        end=$((off + size - 1))
        out=$("${CURL[@]}" -o /dev/null -w '%{http_code} %{time_total} %header{location}' -X PATCH "${UPLOAD[@]}" \
            -H "Content-Range: $off-$end" -T "$c" "$up")
        code=${out%% *}
        if [[ "$code" != 202 ]]; then PUSH_FAIL="PATCH $code"; return 1; fi
        rest=${out#* }
        add_req_time "${rest%% *}"
        up=${rest#* }
        [[ "$up" == http* ]] || up="$1$up"
        off=$((end + 1))
    done
    out=$("${CURL[@]}" -o /dev/null -w '%{http_code} %{time_total}' -X PUT -H 'Content-Length: 0' "$(with_digest "$up" "$3")")
    code=${out%% *}
    if [[ "$code" != 201 ]]; then PUSH_FAIL="PUT $code"; return 1; fi
    add_req_time "${out#* }"
}

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# ---------------------------------------------------------------- seed
log "generating ${BLOB_MIB} MiB blob"
BIG="$WORK/data/big"
head -c $((BLOB_MIB * 1024 * 1024)) /dev/urandom >"$BIG"
BIG_DIGEST=$(digest_of "$BIG")
printf '{"architecture":"amd64","os":"linux"}' >"$WORK/data/config"
CONFIG_DIGEST=$(digest_of "$WORK/data/config")
CONFIG_SIZE=$(stat -c %s "$WORK/data/config")
MT=application/vnd.oci.image.manifest.v1+json
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
    "$MT" "$CONFIG_DIGEST" "$CONFIG_SIZE" "$BIG_DIGEST" "$((BLOB_MIB * 1024 * 1024))" >"$WORK/data/manifest"

for who in "${WHO[@]}"; do
    base=${BASE[$who]}
    seed_blob "$base" bench/img "$WORK/data/config" "$CONFIG_DIGEST"
    seed_blob "$base" bench/img "$BIG" "$BIG_DIGEST"
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $MT" \
        --data-binary @"$WORK/data/manifest" "$base/v2/bench/img/manifests/latest")
    [[ "$code" == 201 ]] || die "manifest PUT to $base -> $code"
    for t in a b c d e f g h; do
        "${CURL[@]}" -o /dev/null -X PUT -H "Content-Type: $MT" \
            --data-binary @"$WORK/data/manifest" "$base/v2/bench/img/manifests/$t"
    done
    # Sanity: pulled blob is intact.
    got=$("${CURL[@]}" "$base/v2/bench/img/blobs/$BIG_DIGEST" | sha256sum | cut -d' ' -f1)
    [[ "sha256:$got" == "$BIG_DIGEST" ]] || die "blob from $base is corrupt"
done

# ---------------------------------------------------------------- wrk
cat >"$WORK/get.lua" <<EOF
wrk.method = "GET"
wrk.headers["Accept"] = "$MT"
EOF

# Print "req/s non2xx" for one wrk run.
run_wrk() { # script url
    local out rps bad
    out=$(timeout 120 wrk -t2 -c16 -d "$WRK_DURATION" --timeout 30s -s "$1" "$2" 2>&1) || die "wrk failed: $out"
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
    [[ -n "$rps" ]] || die "wrk gave no Requests/sec: $out"
    echo "$rps ${bad:-0}"
}

# Print "req/s non2xx" for one ab HEAD run (16 concurrent keep-alive clients).
run_ab_head() { # url
    local out rps bad secs=${WRK_DURATION%s}
    out=$(timeout 120 ab -q -i -k -c 16 -t "$secs" -n 50000000 -H "Accept: $MT" "$1" 2>&1) || die "ab failed: $out"
    rps=$(awk '/^Requests per second:/ {print $4}' <<<"$out")
    bad=$(awk '/^Non-2xx responses:/ {print $NF}' <<<"$out")
    [[ -n "$rps" ]] || die "ab gave no Requests per second: $out"
    echo "$rps ${bad:-0}"
}

declare -A R
for who in "${WHO[@]}"; do
    base=${BASE[$who]}
    log "$who: ab HEAD manifest"
    out=$(run_ab_head "$base/v2/bench/img/manifests/latest")
    read -r "R[$who.head]" "R[$who.head.bad]" <<<"$out"
    log "$who: wrk GET manifest"
    out=$(run_wrk "$WORK/get.lua" "$base/v2/bench/img/manifests/latest")
    read -r "R[$who.man]" "R[$who.man.bad]" <<<"$out"
    log "$who: wrk GET tags/list"
    out=$(run_wrk "$WORK/get.lua" "$base/v2/bench/img/tags/list")
    read -r "R[$who.tags]" "R[$who.tags.bad]" <<<"$out"
    log "$who: wrk GET ${BLOB_MIB} MiB blob"
    out=$(run_wrk "$WORK/get.lua" "$base/v2/bench/img/blobs/$BIG_DIGEST")
    read -r "R[$who.blob]" "R[$who.blob.bad]" <<<"$out"
    # A load run whose answers were not 2xx measured an error path: say so in its cell.
    for k in head man tags blob; do
        if [[ "${R[$who.$k.bad]}" != 0 ]]; then R[$who.$k.fail]="answers non-2xx (${R[$who.$k.bad]})"; fi
    done
    [[ -n "${R[$who.blob.fail]:-}" ]] && R[$who.gbps.fail]=${R[$who.blob.fail]}
    R[$who.gbps]=$(awk -v r="${R[$who.blob]}" -v m="$BLOB_MIB" 'BEGIN {printf "%.2f", r * m * 1048576 / 1e9}')
done

# ---------------------------------------------------------------- push timing
# Each run pushes distinct content (the base blob + an 8-byte run marker).
make_variant() { # n -> file path
    local f="$WORK/data/variant"
    cp "$BIG" "$f"
    printf '%08d' "$1" >>"$f"
    echo "$f"
}

# timed_push KIND PUSHFN ARGS...: runs one push for $who; appends its wall time to
# $WORK/KIND.$who and its request time to $WORK/KINDreq.$who, or marks KIND as failing.
timed_push() {
    local kind=$1 t0 t1
    shift
    t0=$(now)
    if "$@"; then
        t1=$(now)
        awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f\n", b - a}' >>"$WORK/$kind.$who"
        echo "$REQ_TIME" >>"$WORK/${kind}req.$who"
    else
        R[$who.$kind.fail]="fails ($PUSH_FAIL)"
        R[$who.${kind}req.fail]="fails ($PUSH_FAIL)"
    fi
}

for who in "${WHO[@]}"; do
    base=${BASE[$who]}
    : >"$WORK/mono.$who"
    : >"$WORK/chunk.$who"
    : >"$WORK/monoreq.$who"
    : >"$WORK/chunkreq.$who"
    for i in $(seq 1 "$PUSH_RUNS"); do
        f=$(make_variant "$((i * 10 + 1))")
        d=$(digest_of "$f")
        timed_push mono push_mono "$base" "bench/mono$i" "$f" "$d"

        f=$(make_variant "$((i * 10 + 2))")
        d=$(digest_of "$f")
        rm -rf "$WORK/data/chunks" && mkdir -p "$WORK/data/chunks"
        split -b "${CHUNK_MIB}M" -a 3 -d "$f" "$WORK/data/chunks/chunk."
        CHUNK_SIZES=()
        for c in "$WORK/data/chunks"/chunk.*; do CHUNK_SIZES+=("$(stat -c %s "$c")"); done
        timed_push chunk push_chunked "$base" "bench/chunk$i" "$d" "$WORK/data/chunks"
    done
    R[$who.mono]=$(median <"$WORK/mono.$who")
    R[$who.chunk]=$(median <"$WORK/chunk.$who")
    R[$who.monoreq]=$(median <"$WORK/monoreq.$who")
    R[$who.chunkreq]=$(median <"$WORK/chunkreq.$who")
    log "$who: mono $(tr '\n' ' ' <"$WORK/mono.$who") chunked $(tr '\n' ' ' <"$WORK/chunk.$who")"
done

# ---------------------------------------------------------------- peak RSS
rss_kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

for who in "${WHO[@]}"; do
    base=${BASE[$who]}
    pid=${PID[$who]}
    # Reset the high-water mark to the current RSS (Linux clear_refs "5").
    echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || log "$who: cannot reset VmHWM; value includes earlier phases"
    R[$who.rss_before]=$(rss_kib "$pid" VmRSS)
    files=()
    for i in $(seq 1 "$CONCURRENT_UPLOADS"); do
        f="$WORK/data/conc$i"
        cp "$BIG" "$f"
        printf 'c%07d' "$i" >>"$f"
        files+=("$f")
    done
    pids=()
    for i in $(seq 1 "$CONCURRENT_UPLOADS"); do
        f=${files[$((i - 1))]}
        d=$(digest_of "$f")
        seed_blob "$base" "bench/conc$i" "$f" "$d" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || die "$who: concurrent upload failed"; done
    R[$who.rss]=$(rss_kib "$pid" VmHWM)
    rm -f "${files[@]}"
done

# ---------------------------------------------------------------- report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
fmt() { awk -v v="$1" -v p="$2" 'BEGIN { if (v == "") print "n/a"; else printf "%." p "f", v }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# cell KEY DECIMALS: a value, or why there is none.
cell() { local who=${1%%.*} key=${1#*.}; if [[ -n "${R[$who.$key.fail]:-}" ]]; then echo "${R[$who.$key.fail]}"; else fmt "${R[$1]}" "$2"; fi; }
# row LABEL KEY DECIMALS [mib]
row() {
    local line="| $1 |" who v
    for who in "${WHO[@]}"; do
        if [[ "${4:-}" == mib ]]; then v=$(mib "${R[$who.$2]}"); else v=$(cell "$who.$2" "$3"); fi
        line+=" $v |"
    done
    for who in "${WHO[@]:1}"; do
        if [[ -n "${R[ref.$2.fail]:-}${R[$who.$2.fail]:-}" ]]; then line+=" n/a |"; else line+=" $(ratio "${R[ref.$2]}" "${R[$who.$2]}") |"; fi
    done
    echo "$line"
}

echo
echo "Loopback, disk storage, wrk -t2 -c16 -d$WRK_DURATION; push = median of $PUSH_RUNS; ratio = reference / other."
echo
head="| metric |"
sep="|---|"
for who in "${WHO[@]}"; do head+=" ${NAME[$who]} |"; sep+="---|"; done
for who in "${WHO[@]:1}"; do head+=" ref / ${NAME[$who]} |"; sep+="---|"; done
echo "$head"
echo "$sep"
row "HEAD manifest (req/s, ab -i -k -c16; higher is better)" head 0
row "GET manifest (req/s)" man 0
row "GET tag list (req/s)" tags 0
row "GET ${BLOB_MIB} MiB blob (req/s)" blob 2
row "GET ${BLOB_MIB} MiB blob (GB/s)" gbps 2
row "push ${BLOB_MIB} MiB monolithic (s, lower is better)" mono 3
row "push ${BLOB_MIB} MiB chunked ${CHUNK_MIB} MiB PATCHes (s)" chunk 3
row "push monolithic, PUT request only (s, curl time_total)" monoreq 3
row "push chunked, PATCH+PUT requests only (s, sum of curl time_total)" chunkreq 3
row "peak RSS, ${CONCURRENT_UPLOADS} concurrent ${BLOB_MIB} MiB uploads (MiB)" rss 1 mib
bad=""
for who in "${WHO[@]}"; do
    for k in head man tags blob; do
        if [[ "${R[$who.$k.bad]}" != 0 ]]; then bad+=" $who $k: ${R[$who.$k.bad]} non-2xx;"; fi
    done
done
if [[ -n "$bad" ]]; then
    echo
    echo "WARNING:$bad"
fi

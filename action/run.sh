#!/usr/bin/env bash
# Step 2 of action.yml: run ocidiff with the action's inputs (INPUT_* environment variables),
# write the step outputs (violations, new-violations, exit-code, report) to $GITHUB_OUTPUT and a
# summary to $GITHUB_STEP_SUMMARY (each only when set), and exit with the verdict: 2 when
# ocidiff could not run, 1 when it found violations (with a baseline, new ones) and
# INPUT_FAIL_ON_VIOLATIONS is not "false", else 0. Runs the same outside GitHub:
#
#   INPUT_REGISTRY=http://127.0.0.1:5000 INPUT_MODE=conformance bash action/run.sh
#
# Credentials (INPUT_USERNAME / INPUT_PASSWORD) reach ocidiff through its environment variables
# OCIDIFF_<NAME>_USERNAME / _PASSWORD, never on a command line, and are never printed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
OCIDIFF="${OCIDIFF:-ocidiff}"
mode="${INPUT_MODE:-conformance}"
out="${INPUT_OUT:-ocidiff-out}"

die() { echo "ocidiff action: $*" >&2; exit 2; }
command -v "$OCIDIFF" >/dev/null 2>&1 || die "ocidiff not found (OCIDIFF=$OCIDIFF); run action/install.sh first"
command -v python3 >/dev/null 2>&1 || die "python3 is needed to read the results"
case "$mode" in conformance | fuzz | run | merge) ;; *) die "mode must be conformance, fuzz, run or merge (got '$mode')" ;; esac
[ "$mode" = merge ] || [ -n "${INPUT_REGISTRY:-}" ] || die "input 'registry' is required"
case "${INPUT_FAIL_ON_VIOLATIONS:-true}" in true | false) ;; *) die "fail-on-violations must be true or false" ;; esac

# Targets: NAME=URL as given, a bare URL named `registry` (`registry-2`, ... after the first),
# anything else (an ocidiff target kind such as `distribution`) passed as is.
targets=()
names=()
n=0
for item in ${INPUT_REGISTRY:-}; do
  n=$((n + 1))
  if [[ "$item" =~ ^[A-Za-z0-9._-]+= ]]; then
    name="${item%%=*}"
    targets+=(--target "$item")
  elif [[ "$item" == *://* ]]; then
    name=registry
    [ "$n" -gt 1 ] && name="registry-$n"
    targets+=(--target "$name=$item")
  else
    name="$item"
    targets+=(--target "$item")
  fi
  names+=("$name")
done

if [ -n "${INPUT_PASSWORD:-}" ] && [ "${GITHUB_ACTIONS:-}" = "true" ]; then
  echo "::add-mask::${INPUT_PASSWORD}"
fi
if [ -n "${INPUT_USERNAME:-}" ]; then
  for name in "${names[@]}"; do
    prefix="OCIDIFF_$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]' | tr -c 'A-Z0-9' '_')_"
    export "${prefix}USERNAME=${INPUT_USERNAME}"
    export "${prefix}PASSWORD=${INPUT_PASSWORD:-}"
  done
fi

baseline_args=()
if [ -n "${INPUT_BASELINE:-}" ]; then
  [ -f "$INPUT_BASELINE" ] || die "baseline '$INPUT_BASELINE' not found"
  baseline_args=(--baseline "$INPUT_BASELINE")
fi
args=()
case "$mode" in
  conformance)
    args=(conformance "${targets[@]}" --out "$out")
    if [ -n "${INPUT_READ_ONLY_REPO:-}" ]; then
      [ -n "${INPUT_READ_ONLY_TAGS:-}" ] || die "read-only-repo needs read-only-tags"
      args+=(--read-only --repo "$INPUT_READ_ONLY_REPO")
      for t in ${INPUT_READ_ONLY_TAGS}; do args+=(--tag "$t"); done
    fi ;;
  run)
    scenarios="${INPUT_SCENARIOS:-$root/scenarios}"
    [ -e "$scenarios" ] || die "scenarios '$scenarios' not found"
    args=(conformance --scenarios "$scenarios" "${targets[@]}" --out "$out") ;;
  fuzz)
    args=(fuzz "${targets[@]}" --out "$out" --quiet --duration "${INPUT_DURATION:-60}")
    [ -n "${INPUT_SEED:-}" ] && args+=(--seed "$INPUT_SEED")
    [ -n "${INPUT_CASES:-}" ] && args+=(--cases "$INPUT_CASES")
    [ -n "${INPUT_SHARD:-}" ] && args+=(--shard "$INPUT_SHARD")
    args+=("${baseline_args[@]}") ;;
  merge)
    dirs=()
    for pattern in ${INPUT_MERGE:-}; do
      for d in $pattern; do [ -d "$d" ] && dirs+=("$d"); done
    done
    [ "${#dirs[@]}" -gt 0 ] || die "mode merge: no directories match '${INPUT_MERGE:-}'"
    args=(merge "$out" "${dirs[@]}" "${baseline_args[@]}") ;;
esac

[ -n "${INPUT_SPEC_VERSION:-}" ] && args+=(--spec-version "$INPUT_SPEC_VERSION")

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "ocidiff ${args[*]}"
set +e
"$OCIDIFF" "${args[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
mkdir -p "$out"
cp "$log" "$out/ocidiff.log"

# The counts, from the files ocidiff wrote.
read -r violations new_violations < <(python3 - "$mode" "$out" <<'PY'
import json, os, sys
mode, out = sys.argv[1], sys.argv[2]
try:
    if mode in ("fuzz", "merge"):
        entries = json.load(open(os.path.join(out, "findings.json")))
        v = [e for e in entries if e.get("class") == "violation"]
        print(len(v), sum(1 for e in v if e.get("baseline") != "known"))
    else:
        r = json.load(open(os.path.join(out, "results.json")))
        oracle = {t["name"] for t in r["targets"] if t.get("oracle")}
        v = sum(c["counts"]["fail"] for c in r["results"] if c["target"] not in oracle)
        print(v, v)
except (OSError, ValueError, KeyError, TypeError):
    print("", "")
PY
)

if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "violations=${violations}"
    echo "new-violations=${new_violations}"
    echo "exit-code=${rc}"
    echo "report=${out}"
  } >>"$GITHUB_OUTPUT"
fi
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  {
    echo "### ocidiff ${mode}: ${violations:-?} violations (${new_violations:-?} new), exit ${rc}"
    echo
    echo '```'
    tail -n 40 "$log"
    echo '```'
    echo
    echo "Report: \`${out}/index.html\` in the artifact."
  } >>"$GITHUB_STEP_SUMMARY"
fi
echo "ocidiff ${mode}: violations=${violations:-?} new-violations=${new_violations:-?} exit-code=${rc} report=${out}"

if [ "$rc" -ge 2 ] || [ -z "$violations" ]; then
  echo "ocidiff could not run (exit $rc)" >&2
  exit 2
fi
if [ "$rc" -eq 1 ] && [ "${INPUT_FAIL_ON_VIOLATIONS:-true}" = "true" ]; then
  exit 1
fi
exit 0

#!/usr/bin/env bash
# Copies the ClusterFuzzLite files from fuzz/oss-fuzz/ to where ClusterFuzzLite looks for them
# (.clusterfuzzlite/ and .github/workflows/ at the repository root). Idempotent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/fuzz/oss-fuzz"
mkdir -p "$root/.clusterfuzzlite" "$root/.github/workflows"
cp "$here/Dockerfile" "$here/build.sh" "$here/project.yaml" "$root/.clusterfuzzlite/"
cp "$here/cflite_pr.yml" "$root/.github/workflows/cflite_pr.yml"
echo "ClusterFuzzLite files installed in $root/.clusterfuzzlite and .github/workflows"

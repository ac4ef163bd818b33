#!/usr/bin/env bash
# Installs the Go programs ocidiff tests and compares against, at pinned versions, into one
# folder ($OCIDIFF_TOOLS, default ~/.cache/ocidiff-tools/bin), and prints that folder: put it
# on PATH. Needs Go (1.24 or newer) and the Go module proxy. Nothing of theirs is copied into
# this repository: each is built from its module by `go install` / `go build`.
#
#   bash tests/tools/install-go-tools.sh            # install what is missing
#   export PATH="$(bash tests/tools/install-go-tools.sh --print-dir):$PATH"
#
# The binaries get names that say which registry they are (two modules name theirs `registry`,
# and ocidiff's `distribution` target takes `docker-registry` / `registry` from PATH as 2.8):
#
# | binary            | module (cmd)                                               | version |
# |-------------------|------------------------------------------------------------|---------|
# | distribution3     | github.com/distribution/distribution/v3/cmd/registry       | DISTRIBUTION3 |
# | olareg            | github.com/olareg/olareg/cmd/olareg                        | OLAREG |
# | crane             | github.com/google/go-containerregistry/cmd/crane (`crane registry serve`: the ggcr target) | GGCR |
# | ggcr-registry     | github.com/google/go-containerregistry/cmd/registry        | GGCR |
# | oras              | oras.land/oras/cmd/oras                                    | ORAS |
# | oci-conformance   | github.com/opencontainers/distribution-spec/conformance    | CONFORMANCE |
set -euo pipefail

# The one place these versions are recorded (README "Real registries" and harness/TARGETS.md
# point here). The newest each that the module proxy served on 2026-12-07.
DISTRIBUTION3=v3.1.2
OLAREG=v0.1.2
GGCR=v0.22.1
ORAS=v1.3.6
CONFORMANCE=v0.0.0-20260831232431-97274622c111

dir="${OCIDIFF_TOOLS:-$HOME/.cache/ocidiff-tools/bin}"
if [ "${1:-}" = "--print-dir" ]; then
  echo "$dir"
  exit 0
fi
if [ "${1:-}" = "--versions" ]; then
  printf 'distribution3 %s\nolareg %s\nggcr %s\noras %s\nconformance %s\n' \
    "$DISTRIBUTION3" "$OLAREG" "$GGCR" "$ORAS" "$CONFORMANCE"
  exit 0
fi
command -v go >/dev/null 2>&1 || { echo "install-go-tools: no go on PATH" >&2; exit 2; }
mkdir -p "$dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
stamp="$dir/.versions"
want="$DISTRIBUTION3 $OLAREG $GGCR $ORAS $CONFORMANCE $(go env GOVERSION)"
have="$(cat "$stamp" 2>/dev/null || true)"

# install NAME MODULE/cmd/X@VERSION: `go install` into a scratch GOBIN, renamed to NAME.
install() {
  local name="$1" pkg="$2"
  if [ "$have" = "$want" ] && [ -x "$dir/$name" ]; then
    echo "install-go-tools: $name present" >&2
    return
  fi
  echo "install-go-tools: $name <- $pkg" >&2
  rm -rf "$work/bin" && mkdir -p "$work/bin"
  GOBIN="$work/bin" GOFLAGS=-buildvcs=false go install "$pkg"
  mv "$work/bin/$(basename "${pkg%@*}")" "$dir/$name"
}

# build_in_module NAME MODULE@VERSION PACKAGE: for modules whose `go install pkg@version`
# cannot run here (the proxy serves olareg's versions but not its version list, which
# `go install` reads for deprecation notices; the conformance suite is a main package at the
# root of its module): a scratch module requires the version, `go build` builds the package.
build_in_module() {
  local name="$1" modver="$2" pkg="$3"
  if [ "$have" = "$want" ] && [ -x "$dir/$name" ]; then
    echo "install-go-tools: $name present" >&2
    return
  fi
  echo "install-go-tools: $name <- $modver ($pkg)" >&2
  local m="$work/mod-$name"
  mkdir -p "$m"
  printf 'module ocidiff.local/tools/%s\n\ngo 1.24\n' "$name" >"$m/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" >"$m/tools.go"
  (cd "$m" && GOFLAGS=-mod=mod go get "$modver" >/dev/null \
    && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 \
    && GOFLAGS="-mod=mod -buildvcs=false" go build -o "$dir/$name" "$pkg")
}

install distribution3 "github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION3"
build_in_module olareg "github.com/olareg/olareg@$OLAREG" github.com/olareg/olareg/cmd/olareg
install crane "github.com/google/go-containerregistry/cmd/crane@$GGCR"
install ggcr-registry "github.com/google/go-containerregistry/cmd/registry@$GGCR"
install oras "oras.land/oras/cmd/oras@$ORAS"
build_in_module oci-conformance "github.com/opencontainers/distribution-spec/conformance@$CONFORMANCE" \
  github.com/opencontainers/distribution-spec/conformance
echo "$want" >"$stamp"
echo "$dir"

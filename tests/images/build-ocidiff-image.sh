#!/usr/bin/env bash
# Builds the repository's Dockerfile with podman, offline: the two binaries already built
# (BINARIES=prebuilt) on a runtime base imported from this machine's own libraries (no image
# registry is reachable here; with one, `podman build -t ocidiff .` builds from source).
#
#   tests/images/build-ocidiff-image.sh OCIDIFF_BIN REFERENCE_REGISTRY_BIN [TAG]
#
# Base: localhost/ocidiff-runtime-base:local (the libraries `ldd` lists for both binaries,
# /tmp); image: TAG (default localhost/ocidiff:local). Prints the image name last.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
ocidiff_bin="${1:?usage: $0 OCIDIFF_BIN REFERENCE_REGISTRY_BIN [TAG]}"
reference_bin="${2:?usage: $0 OCIDIFF_BIN REFERENCE_REGISTRY_BIN [TAG]}"
tag="${3:-localhost/ocidiff:local}"
base=localhost/ocidiff-runtime-base:local
command -v podman >/dev/null || { echo "missing: podman (apt-get install podman runc)" >&2; exit 1; }
for b in "$ocidiff_bin" "$reference_bin"; do
  [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 1; }
done

work=$(mktemp -d /tmp/ocidiff-image-build.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The runtime base: what distroless/cc holds that the binaries use (glibc, libgcc_s, loader).
rootfs="$work/rootfs"
mkdir -p "$rootfs/tmp" "$rootfs/out" "$rootfs/etc"
chmod 1777 "$rootfs/tmp"
printf '127.0.0.1 localhost\n' >"$rootfs/etc/hosts"
printf 'root:x:0:0:root:/root:/sbin/nologin\n' >"$rootfs/etc/passwd"
{ ldd "$ocidiff_bin"; ldd "$reference_bin"; } 2>/dev/null | { grep -oE '/[^ ]+' || true; } | sort -u |
  while read -r lib; do
    [ -e "$lib" ] || continue
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
tar -C "$rootfs" -cf "$work/base.tar" .
dangling() { podman images -q --filter dangling=true | sort -u; }
before=$(dangling)
old_base=$(podman image inspect --format '{{.Id}}' "$base" 2>/dev/null || true)
podman import "$work/base.tar" "$base" >/dev/null

# The build context: the Dockerfile's prebuilt/ and nothing else.
ctx="$work/ctx"
mkdir -p "$ctx/prebuilt"
cp -L "$ocidiff_bin" "$ctx/prebuilt/ocidiff"
cp -L "$reference_bin" "$ctx/prebuilt/reference-registry"
# Debug info is most of a debug build's size; the image does not need it.
if command -v strip >/dev/null; then strip --strip-debug "$ctx"/prebuilt/*; fi
podman build -q -f "$root/Dockerfile" \
  --build-arg BINARIES=prebuilt \
  --build-arg RUNTIME_IMAGE="$base" \
  -t "$tag" "$ctx" >/dev/null
# What this build left untagged (the prebuilt stage, a replaced base or image): removed.
for id in $(comm -13 <(echo "$before") <(dangling)) ${old_base:+"$old_base"}; do
  podman rmi "$id" >/dev/null 2>&1 || true
done
echo "$tag"

#!/usr/bin/env bash
# Builds local container images for ocidiff's container targets from registry packages (no
# image registry needed) and serves podman's Docker-compatible API on a unix socket.
#
#   tests/images/build-local-images.sh            # build (if missing) + start the API socket
#   tests/images/build-local-images.sh --force    # rebuild the images
#   tests/images/build-local-images.sh --stop     # stop the API service started here
#
# Image: localhost/ocidiff-distribution:2.8.2 — Debian's /usr/bin/docker-registry (CNCF
# distribution 2.8.2) with the libraries `ldd` lists, a config with filesystem storage under
# /var/lib/registry, http :5000, delete enabled; imported with `podman import`.
# Socket: unix:///run/ocidiff-podman.sock (`podman system service --time=0`), pid in
# /run/ocidiff-podman.pid. Then: export DOCKER_HOST=unix:///run/ocidiff-podman.sock
#
# Idempotent. Needs root (rootful podman), podman, runc, docker-registry (apt-get install podman
# runc docker-registry). With Docker instead of podman, none of this is needed: use
# `--target NAME=preset:distribution-container` (registry:2).
set -euo pipefail

IMAGE=localhost/ocidiff-distribution:2.8.2
SOCK_PATH=/run/ocidiff-podman.sock
PID_FILE=/run/ocidiff-podman.pid
LOG_FILE=/run/ocidiff-podman.log
FORCE=0

# The service started here, by the pid in $PID_FILE: only while that pid is still a podman
# process (a stale pid file from a killed service may name an unrelated, reused pid).
service_pid() {
  local pid
  pid=$(cat "$PID_FILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'podman system service' && echo "$pid"
}

case "${1:-}" in
  --force) FORCE=1 ;;
  --stop)
    if pid=$(service_pid); then
      kill "$pid" && echo "stopped podman API service ($pid)"
    fi
    # A killed service can leave its socket behind: nothing listens there any more.
    rm -f "$PID_FILE" "$SOCK_PATH"
    exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--force|--stop]" >&2; exit 2 ;;
esac

need() { command -v "$1" >/dev/null 2>&1 || { echo "missing: $1 ($2)" >&2; exit 1; }; }
need podman "apt-get install podman"
need docker-registry "apt-get install docker-registry"
need ldd "libc-bin"
need curl "apt-get install curl"

# podman defaults that work in a container-less CI machine: runc, no default ulimits.
if [ ! -f /etc/containers/containers.conf ]; then
  mkdir -p /etc/containers
  cat > /etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
CONF
  echo "wrote /etc/containers/containers.conf"
fi

build_distribution() {
  local work rootfs bin
  work=$(mktemp -d /tmp/ocidiff-image.XXXXXX)
  trap 'rm -rf "$work"' RETURN
  rootfs="$work/rootfs"
  bin=$(command -v docker-registry)
  mkdir -p "$rootfs/usr/bin" "$rootfs/etc/docker/registry" "$rootfs/var/lib/registry" "$rootfs/tmp"
  chmod 1777 "$rootfs/tmp"
  cp -L "$bin" "$rootfs/usr/bin/docker-registry"
  # The libraries the binary links (and the dynamic loader), at their paths.
  # (A static binary lists none: `ldd` and `grep` fail, which is fine.)
  { ldd "$bin" 2>/dev/null || true; } | { grep -oE '/[^ ]+' || true; } | sort -u | while read -r lib; do
    [ -e "$lib" ] || continue
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
  # Name lookups for Go's resolver.
  printf 'hosts: files dns\n' > "$rootfs/etc/nsswitch.conf"
  printf '127.0.0.1 localhost\n' > "$rootfs/etc/hosts"
  cat > "$rootfs/etc/docker/registry/config.yml" <<'CONF'
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
CONF
  tar -C "$rootfs" -cf "$work/rootfs.tar" .
  podman import \
    --change 'ENTRYPOINT ["/usr/bin/docker-registry","serve","/etc/docker/registry/config.yml"]' \
    --change 'EXPOSE 5000' \
    "$work/rootfs.tar" "$IMAGE" >/dev/null
  echo "built $IMAGE"
}

if [ "$FORCE" = 1 ] || ! podman image exists "$IMAGE"; then
  old_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
  build_distribution
  # The replaced image would stay behind untagged.
  if [ -n "$old_id" ] && [ "$old_id" != "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ]; then
    podman rmi "$old_id" >/dev/null 2>&1 || true
  fi
else
  echo "$IMAGE present"
fi

ping_socket() { curl -fsS --max-time 2 --unix-socket "$SOCK_PATH" http://d/_ping >/dev/null 2>&1; }

if ping_socket; then
  echo "podman API already serving on unix://$SOCK_PATH"
else
  if pid=$(service_pid); then
    kill "$pid" || true
    sleep 1
  fi
  # A stale socket (its service killed) refuses connections and would block the new one.
  rm -f "$SOCK_PATH" "$PID_FILE"
  nohup podman system service --time=0 "unix://$SOCK_PATH" >"$LOG_FILE" 2>&1 &
  echo $! > "$PID_FILE"
  for _ in $(seq 1 50); do
    ping_socket && break
    sleep 0.2
  done
  if ! ping_socket; then
    echo "podman API did not come up; log:" >&2
    tail -20 "$LOG_FILE" >&2 || true
    exit 1
  fi
  echo "podman API serving on unix://$SOCK_PATH (pid $(cat "$PID_FILE"))"
fi
echo "export DOCKER_HOST=unix://$SOCK_PATH"

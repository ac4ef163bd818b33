#!/usr/bin/env bash
# Step 1 of action.yml: build the ocidiff of this checkout (the action's own version) and put
# it on PATH for the next steps. With $OCIDIFF already naming an executable, uses that.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "${OCIDIFF:-}" ] && [ -x "$OCIDIFF" ]; then
  echo "using $OCIDIFF ($("$OCIDIFF" --version))"
  exit 0
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "installing the Rust toolchain (rustup, minimal profile)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
fi
cargo build --release --locked -p ocidiff --manifest-path "$root/Cargo.toml"
bin="$root/target/release/ocidiff"
"$bin" --version
if [ -n "${GITHUB_ENV:-}" ]; then
  echo "OCIDIFF=$bin" >>"$GITHUB_ENV"
fi
if [ -n "${GITHUB_PATH:-}" ]; then
  dirname "$bin" >>"$GITHUB_PATH"
fi

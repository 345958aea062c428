#!/usr/bin/env bash
# Shared by the bench scripts that run the release binary against emulators on loopback; sourced, not run:
#   . "$(dirname "$0")/prologue.sh" NAME
# Leaves: the repository as the working folder; the release binary built, as $bin; $out, the results file
# results/bench/NAME-<date>.txt; $work, a temporary folder; $pids, background processes, killed newest first
# (workers before the emulator they report to) on exit with $work removed; and two helpers, free_port and
# wait_port PORT.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/imagen-load/target}"
out="results/bench/$1-$(date -u +%Y%m%dT%H%M%SZ).txt"
mkdir -p results/bench
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/imagen-load"
work="$(mktemp -d)"
pids=()
cleanup() { for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# A loopback port nobody listens on.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 10 s for something to listen on PORT.
wait_port() {
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Used by the scripts that source this file.
export bin out work

#!/usr/bin/env bash
# Runs every benchmark and the memory measurements, and writes the numbers to results/bench/<date>.txt.
#   benches/bench.sh            # everything (about 5 minutes on 2 cores)
# Timing goals (from the issues) are checked here, never in tests:
#   schedule generation rate · pacer p99 |actual − intended| < 1 ms at 10,000 msg/s · a simulated day of
#   ~100,000 messages < 2 s · analysing 1,000,000 events < 3 s with < 200 bytes per tracked message.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/imagen-load/target}"
out="results/bench/$(date -u +%Y%m%dT%H%M%SZ).txt"
mkdir -p results/bench
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/imagen-load"
{
  echo "# imagen-load benchmarks, $(date -u), $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  cargo bench --quiet --bench schedule --bench sim --bench analysis 2>/dev/null | grep -E "^(schedule|sim|analysis)/|time:|thrpt:" || true
  cargo bench --quiet --bench pacer 2>/dev/null | grep '^pacer'
  python3 benches/memory.py "$bin"
  python3 benches/import.py "$bin"
} | tee "$out"
echo "written: $out"

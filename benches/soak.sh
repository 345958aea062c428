#!/usr/bin/env bash
# Long runs keep memory flat: resident memory is bounded by what is in flight, not by how long the run is.
#
#   benches/soak.sh sim [DAYS]            a simulated week (default 7 days) of diurnal load on the simulator
#   benches/soak.sh live [MINUTES] [RATE] a real-time run against the built-in emulator with 4 reference workers
#                                          (default 60 minutes at 50 jobs/s)
#
# Samples the resident memory (VmRSS) of `imagen-load run` every INTERVAL seconds (default 30; 1 for sim) into a
# CSV, and writes the summary (first sample after start-up, last, peak, growth per hour) to
# results/bench/soak-<mode>-<date>.txt. It runs a copy of the release binary, so rebuilding meanwhile is safe.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/imagen-load/target}"
mode="${1:-sim}"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p results/bench
out="results/bench/soak-$mode-$stamp.txt"
cargo build --release --quiet
work="$(mktemp -d)"
cp "$CARGO_TARGET_DIR/release/imagen-load" "$work/imagen-load"
bin="$work/imagen-load"
pids=()
cleanup() { for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Samples $1's memory until it exits; writes "seconds,rss_kib" lines to $2.
sample() {
  local pid="$1" csv="$2" every="$3" start
  start=$(date +%s)
  echo "seconds,rss_kib" > "$csv"
  while kill -0 "$pid" 2>/dev/null; do
    echo "$(( $(date +%s) - start )),$(rss_kib "$pid")" >> "$csv"
    sleep "$every"
  done
}

summarise() {
  local csv="$1"
  # The first minute is start-up (schedule built, connections opened); growth is measured after it.
  awk -F, 'NR > 1 && $2 > 0 {
      n++; t[n] = $1; r[n] = $2; if ($2 > peak) peak = $2
    }
    END {
      if (n == 0) { print "no samples"; exit }
      first = 1; for (i = 1; i <= n; i++) if (t[i] >= 60 || i == n) { first = i; break }
      hours = (t[n] - t[first]) / 3600
      printf "samples: %d over %d s\n", n, t[n]
      printf "rss after start-up (t=%d s): %.1f MiB\n", t[first], r[first] / 1024
      printf "rss at the end (t=%d s):     %.1f MiB\n", t[n], r[n] / 1024
      printf "peak rss:                    %.1f MiB\n", peak / 1024
      if (hours > 0) printf "growth after start-up:       %+.2f MiB per hour\n", (r[n] - r[first]) / 1024 / hours
    }' "$csv"
}

case "$mode" in
  sim)
    days="${2:-7}"
    cat > "$work/week.toml" <<TOML
[run]
name = "soak-week"
seed = 11
deadline = "10m"
drain = "30m"
[[stream]]
name = "upscale"
  [[stream.phase]]
  kind = "diurnal"
  base = "600/h"
  amplitude = "500/h"
  duration = "${days}d"
[[stream]]
name = "enhance"
  [[stream.phase]]
  kind = "poisson"
  rate = "120/h"
  duration = "${days}d"
TOML
    start=$(date +%s)
    "$bin" run "$work/week.toml" --out "$work/results" --run-id week --quiet &
    pid=$!
    pids+=("$pid")
    sample "$pid" "$work/rss.csv" "${INTERVAL:-1}"
    wait "$pid"
    {
      echo "# benches/soak.sh sim $days: $days simulated days on the simulator ($(nproc) cores)"
      echo "wall time: $(( $(date +%s) - start )) s"
      grep -o '"scheduled":[0-9]*\|"completed":[0-9]*' "$work/results/week/summary.json" | head -2 | tr '\n' ' '; echo
      echo "events.jsonl: $(wc -l < "$work/results/week/events.jsonl") events, $(du -h "$work/results/week/events.jsonl" | cut -f1)"
      summarise "$work/rss.csv"
    } | tee "$out"
    ;;
  live)
    minutes="${2:-60}"
    rate="${3:-50}"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$bin" emulator --port "$port" > /dev/null 2>&1 &
    pids+=("$!")
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    cat > "$work/soak.toml" <<TOML
[run]
name = "soak-live"
seed = 5
deadline = "30s"
drain = "0s"
[target]
kind = "emulator"
project = "soak"
endpoint = "127.0.0.1:$port"
backlog_interval = "5s"
[[stream]]
name = "upscale"
topic = "imagen-upscale"
payload = '{"job": {{seq}}}'
  [[stream.phase]]
  kind = "poisson"
  rate = "$rate/s"
  duration = "${minutes}m"
TOML
    start=$(date +%s)
    "$bin" run "$work/soak.toml" --out "$work/results" --run-id soak --no-progress > "$work/run.out" 2> "$work/run.err" &
    pid=$!
    pids+=("$pid")
    sleep 2
    for w in 1 2 3 4; do
      PUBSUB_EMULATOR_HOST="127.0.0.1:$port" "$bin" worker --project soak --subscription imagen-upscale-sub \
        --pipeline upscale --pod "soak-worker-$w" --model-load 1s --processing 40ms --http-port 0 \
        > /dev/null 2>&1 &
      pids+=("$!")
    done
    sample "$pid" "$work/rss.csv" "${INTERVAL:-30}"
    wait "$pid" || true
    {
      echo "# benches/soak.sh live $minutes $rate: $minutes minutes at $rate jobs/s into the built-in emulator, 4 workers ($(nproc) cores)"
      echo "wall time: $(( $(date +%s) - start )) s"
      tail -n 3 "$work/run.out"
      echo "events.jsonl: $(wc -l < "$work/results/soak/events.jsonl") events, $(du -h "$work/results/soak/events.jsonl" | cut -f1)"
      summarise "$work/rss.csv"
      echo "samples (seconds,rss_kib):"
      awk 'NR == 1 || NR % 10 == 2' "$work/rss.csv"
    } | tee "$out"
    ;;
  *)
    echo "usage: benches/soak.sh sim [DAYS] | live [MINUTES] [RATE]" >&2
    exit 2
    ;;
esac

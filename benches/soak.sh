#!/usr/bin/env bash
# Long runs keep memory flat: resident memory is bounded by what is in flight, not by how long the run is.
#
#   benches/soak.sh sim [DAYS]            a simulated week (default 7 days) of diurnal load on the simulator,
#                                          and the same load for 4 x DAYS (RATE=1000 jobs/h at the curve's base),
#                                          scaling to zero and with fixed replicas
#   benches/soak.sh live [MINUTES] [RATE] a real-time run against the built-in emulator with 4 reference workers
#                                          of 4 jobs at once, 40 ms each (default 60 minutes at 50 jobs/s)
#
# live samples the resident memory (VmRSS) of `imagen-load run` every INTERVAL seconds (default 30) and writes
# the first sample after start-up, the last, the peak and the growth per hour; sim compares the peak memory of
# the two lengths. Both write results/bench/soak-<mode>-<date>.txt. It runs a copy of the release binary, so rebuilding meanwhile is safe.
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
# KEEP=1 keeps the run's folder (its path is printed) for a closer look.
cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Samples $1's memory until it exits; writes "seconds,rss_kib" lines to $2.
sample() {
  local pid="$1" csv="$2" every="$3" start
  start=$(date +%s.%N)
  echo "seconds,rss_kib" > "$csv"
  while kill -0 "$pid" 2>/dev/null; do
    echo "$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }'),$(rss_kib "$pid")" >> "$csv"
    sleep "$every"
  done
}

summarise() {
  local csv="$1" startup="$2"
  # The first seconds are start-up (schedule built, connections opened); growth is measured after them.
  awk -F, -v startup="$startup" 'NR > 1 && $2 > 0 {
      n++; t[n] = $1; r[n] = $2; if ($2 > peak) peak = $2
    }
    END {
      if (n == 0) { print "no samples"; exit }
      first = 1; for (i = 1; i <= n; i++) if (t[i] >= startup || i == n) { first = i; break }
      hours = (t[n] - t[first]) / 3600
      printf "samples: %d over %.1f s\n", n, t[n]
      printf "rss after start-up (t=%.1f s): %.1f MiB\n", t[first], r[first] / 1024
      printf "rss at the end (t=%.1f s):     %.1f MiB\n", t[n], r[n] / 1024
      printf "peak rss:                    %.1f MiB\n", peak / 1024
      if (hours > 0) printf "growth after start-up:       %+.2f MiB per hour\n", (r[n] - r[first]) / 1024 / hours
    }' "$csv"
}

case "$mode" in
  sim)
    # The same load for DAYS and for 4 x DAYS of simulated time, in two set-ups: scale-to-zero (the default: the
    # cluster churns, a cold start every few minutes, and every pod is listed in the results) and fixed (two
    # replicas per pipeline, no churn). Memory bounded by what is in flight peaks alike at both lengths; the
    # difference per extra message (and per extra pod) is what still grows with the run.
    days="${2:-7}"
    rate="${RATE:-1000}"
    peak_of() {
      local d="$1" setup="$2"
      local -a set=()
      if [ "$setup" = fixed ]; then set=(--set sim.keda.min_replicas=2 --set sim.keda.max_replicas=2); fi
      cat > "$work/soak-$d.toml" <<TOML
[run]
name = "soak-$d"
seed = 11
deadline = "10m"
drain = "30m"
[[stream]]
name = "upscale"
  [[stream.phase]]
  kind = "diurnal"
  base = "$rate/h"
  amplitude = "$(( rate * 3 / 4 ))/h"
  duration = "${d}d"
[[stream]]
name = "enhance"
  [[stream.phase]]
  kind = "poisson"
  rate = "$(( rate / 8 ))/h"
  duration = "${d}d"
TOML
      local t0 t1 id="$setup-$d"
      t0=$(date +%s.%N)
      /usr/bin/time -f "%M" -o "$work/peak-$id" "$bin" run "$work/soak-$d.toml" "${set[@]}" --out "$work/results" --run-id "$id" --quiet
      t1=$(date +%s.%N)
      local counts
      counts=$(python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); d = s["delivery"]; print(d["scheduled"], d["completed"], len(s["pods"]))' "$work/results/$id/summary.json")
      # Only the counts are needed: the event log of a simulated month is half a gigabyte.
      rm -f "$work/results/$id/events.jsonl"
      echo "$d $(cat "$work/peak-$id") $counts $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
    }
    {
      echo "# benches/soak.sh sim $days (RATE=$rate jobs/h at the base of the daily curve; $(nproc) cores)"
      for setup in scale-to-zero fixed; do
        read -r d1 peak1 sched1 done1 pods1 secs1 < <(peak_of "$days" "$setup")
        read -r d2 peak2 sched2 done2 pods2 secs2 < <(peak_of "$(( days * 4 ))" "$setup")
        echo "## $setup"
        for r in "$d1 $sched1 $done1 $pods1 $secs1 $peak1" "$d2 $sched2 $done2 $pods2 $secs2 $peak2"; do
          read -r d sched completed pods secs peak <<< "$r"
          printf "%3d simulated days: %8d messages (%d completed), %5d pods, in %5.1f s wall, peak rss %.1f MiB\n" "$d" "$sched" "$completed" "$pods" "$secs" "$(awk -v k="$peak" 'BEGIN { print k / 1024 }')"
        done
        awk -v p1="$peak1" -v p2="$peak2" -v m1="$sched1" -v m2="$sched2" -v q1="$pods1" -v q2="$pods2" 'BEGIN {
            printf "growth: %.1f MiB for %d more messages (%.1f bytes each)", (p2 - p1) / 1024, m2 - m1, (p2 - p1) * 1024 / (m2 - m1)
            if (q2 > q1) printf " and %d more pods (%.0f bytes each, if the pods were all of it)", q2 - q1, (p2 - p1) * 1024 / (q2 - q1)
            printf "\n"
          }'
      done
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
        --pipeline upscale --pod "soak-worker-$w" --model-load 1s --processing 40ms --concurrency 4 --http-port 0 \
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
      summarise "$work/rss.csv" 60
      echo "samples (seconds,rss_kib):"
      awk 'NR == 1 || NR % 10 == 2' "$work/rss.csv"
    } | tee "$out"
    ;;
  *)
    echo "usage: benches/soak.sh sim [DAYS] | live [MINUTES] [RATE]" >&2
    exit 2
    ;;
esac

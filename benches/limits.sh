#!/usr/bin/env bash
# The harness at its limits, every row in one run (about 3 minutes on 2 cores), written to
# results/bench/limits-<date>.txt. Each row has its peer where one exists, and instruction counts next to the
# times, so the trend compares across machines: perf stat's (user space) where the machine has a PMU; otherwise
# callgrind's for the offline rows on a small input (6., under valgrind: about 200 times slower than native):
#   1. `run` at 50,000/s offered (1 KiB, 10 s) into the built-in emulator in its own process: sustained rate, pacer
#      lateness, harness CPU and instructions per message, the emulator's own CPU per message; then Google's Python
#      publisher into the same emulator (the yardstick), and the same run into Google's emulator when installed;
#      the same at `timer_slack = "0s"` (each send at its own instant: the CPU the default 200 µs saves);
#   2. the ceiling: `run` at 100,000/s offered;
#   3. pacer lateness at 10,000/s;
#   4. a simulated day (`run workloads/diurnal.toml`): wall time, peak memory, instructions;
#   5. `analyze` of the 100,000/s run (1,000,000 messages, every one lost: no worker): wall, memory, instructions;
#   6. without a PMU: callgrind's instruction counts of `run workloads/burst.toml` and `analyze` of its results.
#   benches/limits.sh [SECS]
secs="${1:-10}"
# shellcheck source=benches/prologue.sh
. "$(dirname "$0")/prologue.sh" limits

perf_ok=0
perf stat -x, -e instructions:u -o "$work/probe.perf" true 2>/dev/null &&
  grep -q '^[0-9]*,,instructions' "$work/probe.perf" && perf_ok=1

# measure NAME CMD...: runs CMD with /usr/bin/time (user, sys, max RSS) and, where perf works, perf stat.
measure() {
  local name="$1"
  shift
  if [ "$perf_ok" = 1 ]; then
    /usr/bin/time -f "%U %S %M" -o "$work/$name.time" perf stat -x, -e instructions:u -o "$work/$name.perf" "$@"
  else
    /usr/bin/time -f "%U %S %M" -o "$work/$name.time" "$@"
    : > "$work/$name.perf"
  fi
}

# instructions NAME: the instructions perf counted, or "n/a".
instructions() {
  awk -F, '$3 ~ /^instructions/ && $1 ~ /^[0-9]+$/ { printf "%.3g", $1; found = 1 } END { if (!found) printf "n/a" }' \
    "$work/$1.perf"
}

# cpu_of PID: user + system seconds the process has used so far.
cpu_of() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }

# publish RATE NAME ENDPOINT [TIMER_SLACK]: `run` at RATE/s for $secs into the emulator at ENDPOINT.
publish() {
  local pad
  pad="$(head -c 1000 /dev/zero | tr '\0' 'x')"
  cat > "$work/$2.toml" <<TOML
[run]
name = "$2"
deadline = "1s"
drain = "0s"
timer_slack = "${4:-200us}"
[target]
kind = "emulator"
endpoint = "$3"
backlog = "none"
[[stream]]
name = "bench"
topic = "bench-$2"
payload = '{{seq}} $pad'
  [[stream.phase]]
  kind = "constant"
  rate = "$1/s"
  duration = "${secs}s"
TOML
  measure "$2" "$bin" run "$work/$2.toml" --out "$work" --run-id "$2" --quiet --no-progress || true
}

# A fresh built-in emulator for each row (one holds every message published to it: the rows before would weigh
# on the next), the previous one stopped.
start_builtin() {
  if [ -n "${emu:-}" ]; then
    kill "$emu" 2>/dev/null || true
    wait "$emu" 2>/dev/null || true
  fi
  port=$(free_port)
  "$bin" emulator --port "$port" >/dev/null 2>&1 &
  pids+=($!)
  emu=$!
  wait_port "$port"
}

exec > >(tee "$out") 2>&1
echo "# imagen-load at its limits, $(date -u), $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ "$perf_ok" = 1 ] || echo "(no hardware counters here: instruction counts by callgrind, last rows)"

start_builtin
before=$(cpu_of "$emu")
publish 50000 rate-50k "127.0.0.1:$port"
after=$(cpu_of "$emu")
python3 benches/rate.py "$work/rate-50k/events.jsonl" "$work/rate-50k.time" 50000 "$secs" \
  "the built-in emulator (own process)" "$work/rate-50k.perf"
published=$(python3 -c "import json; print(json.load(open('$work/rate-50k/summary.json'))['delivery']['published'])")
python3 -c "print(f'  the emulator: {($after - $before) / max($published, 1) * 1e6:.1f} µs CPU per message')"
if python3 -c 'import google.cloud.pubsub_v1' 2>/dev/null; then
  echo -n "  peer, same emulator: Google's "
  PUBSUB_EMULATOR_HOST="127.0.0.1:$port" python3 tests/interop/pubsub_conformance.py --bench 100000 ||
    echo "(python publisher failed)"
else
  echo "  peer: Google's Python publisher not installed (pip install google-cloud-pubsub), skipped"
fi

start_builtin
publish 50000 exact "127.0.0.1:$port" 0s
python3 benches/rate.py "$work/exact/events.jsonl" "$work/exact.time" 50000 "$secs" \
  "the built-in emulator, timer_slack 0s (every send at its own instant)" "$work/exact.perf"

start_builtin
publish 100000 ceiling "127.0.0.1:$port"
python3 benches/rate.py "$work/ceiling/events.jsonl" "$work/ceiling.time" 100000 "$secs" \
  "the built-in emulator: the ceiling" "$work/ceiling.perf"

start_builtin
publish 10000 rate-10k "127.0.0.1:$port"
python3 benches/rate.py "$work/rate-10k/events.jsonl" "$work/rate-10k.time" 10000 "$secs" \
  "the built-in emulator: pacing" "$work/rate-10k.perf"
kill "$emu" 2>/dev/null || true

google=/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator
if [ -x "$google" ]; then
  port=$(free_port)
  "$google" --host=127.0.0.1 --port="$port" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do wait_port "$port" && break; done
  publish 50000 google-50k "127.0.0.1:$port"
  python3 benches/rate.py "$work/google-50k/events.jsonl" "$work/google-50k.time" 50000 "$secs" \
    "peer: Google's emulator (own process)" "$work/google-50k.perf"
else
  echo "peer: Google's emulator not installed (apt-get install google-cloud-cli-pubsub-emulator), skipped"
fi

start=$(date +%s.%N)
measure day "$bin" run workloads/diurnal.toml --quiet --out "$work" --run-id day
python3 - "$work/day.time" "$start" "$(date +%s.%N)" "$(instructions day)" "$work/day/summary.json" <<'PY'
import json, sys
user, sys_, rss = open(sys.argv[1]).read().split()[-3:]
s = json.load(open(sys.argv[5]))
print(f"simulated day (run workloads/diurnal.toml, {s['delivery']['scheduled']:,} messages): "
      f"{float(sys.argv[3]) - float(sys.argv[2]):.2f} s wall, {float(user) + float(sys_):.2f} s CPU, "
      f"peak RSS {int(rss) // 1024} MiB, {sys.argv[4]} instructions")
PY

lines=$(wc -l < "$work/ceiling/events.jsonl")
start=$(date +%s.%N)
measure analyze "$bin" analyze "$work/ceiling" --quiet
python3 - "$work/analyze.time" "$start" "$(date +%s.%N)" "$(instructions analyze)" "$work/ceiling/summary.json" \
  "$lines" <<'PY'
import json, sys
user, sys_, rss = open(sys.argv[1]).read().split()[-3:]
d = json.load(open(sys.argv[5]))["delivery"]
print(f"analyze of {d['scheduled']:,} messages ({int(sys.argv[6]):,} lines, {d['lost']:,} lost): "
      f"{float(sys.argv[3]) - float(sys.argv[2]):.2f} s wall, peak RSS {int(rss) // 1024} MiB, "
      f"{sys.argv[4]} instructions")
PY
if [ "$perf_ok" = 0 ] && command -v valgrind >/dev/null; then
  for cmd in "run workloads/burst.toml --quiet --out $work --run-id vg" "analyze $work/vg --quiet"; do
    # shellcheck disable=SC2086 # the command's words
    n=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" $cmd 2>&1 | sed -n 's/.*Collected : //p')
    echo "instructions (callgrind): ${cmd%% --*}: $n"
  done
fi
echo "written: $out"

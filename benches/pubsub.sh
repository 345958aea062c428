#!/usr/bin/env bash
# The real path's numbers, written to results/bench/pubsub-<date>.txt:
#   1. the official publisher's own ceiling into the built-in emulator (cargo bench --bench pubsub);
#   2. the sustained publish rate of `run` into the built-in emulator with 1 KiB payloads (RATE, default 50000/s,
#      for SECS, default 10 s): achieved rate, pacer lateness, publish delay, harness CPU per message;
#   3. the end-to-end tracking overhead per message: from a worker's end of processing to the harness recording the
#      completion (completion publish + Pub/Sub + tracker), with 4 reference workers at 2,000 jobs/s;
#   4. side by side, into the built-in emulator (its own process) and into Google's emulator (when installed:
#      Debian's google-cloud-cli-pubsub-emulator), each on a fresh loopback port: `run` at RATE for SECS, then
#      Google's Python publisher (tests/interop/pubsub_conformance.py --bench, when google-cloud-pubsub is installed)
#      with as many 1 KiB messages, as the yardstick.
#   benches/pubsub.sh [RATE] [SECS]
rate="${1:-50000}"
secs="${2:-10}"
# shellcheck source=benches/prologue.sh
. "$(dirname "$0")/prologue.sh" pubsub

pad="$(head -c 1000 /dev/zero | tr '\0' 'x')"
cat > "$work/publish.toml" <<TOML
[run]
name = "publish-rate"
deadline = "1s"
drain = "0s"
[target]
kind = "emulator"
backlog = "none"
[[stream]]
name = "bench"
topic = "bench"
payload = '{{seq}} $pad'
  [[stream.phase]]
  kind = "constant"
  rate = "$rate/s"
  duration = "${secs}s"
TOML

cat > "$work/track.toml" <<TOML
[run]
name = "tracking"
deadline = "20s"
drain = "0s"
[target]
kind = "emulator"
backlog = "none"
[[stream]]
name = "bench"
topic = "bench"
  [[stream.phase]]
  kind = "constant"
  rate = "2000/s"
  duration = "${secs}s"
TOML

# Everything below goes to the terminal and the file; no subshell, so the trap sees the background processes.
exec > >(tee "$out") 2>&1
{
  echo "# imagen-load Pub/Sub benchmarks, $(date -u), $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  cargo bench --quiet --bench pubsub 2>/dev/null | grep -v '^$'

  /usr/bin/time -f "%U %S %M" -o "$work/time.txt" \
    "$bin" run "$work/publish.toml" --out "$work" --run-id publish --quiet --no-progress || true
  python3 benches/rate.py "$work/publish/events.jsonl" "$work/time.txt" "$rate" "$secs" "the in-process emulator"

  port=$(free_port)
  "$bin" emulator --port "$port" >/dev/null 2>&1 & pids+=($!)
  sleep 0.5
  export PUBSUB_EMULATOR_HOST="127.0.0.1:$port"
  "$bin" run "$work/track.toml" --out "$work" --run-id track --quiet --no-progress &
  run=$!
  sleep 0.5
  for i in 1 2 3 4; do
    "$bin" worker --subscription bench-sub --pipeline bench --pod "bench-$i" --model-load 0s --processing 0s \
      --concurrency 64 --http-port 0 >/dev/null 2>&1 & pids+=($!)
  done
  wait "$run" || true
  python3 - "$work/track/events.jsonl" <<'PY'
import json, sys
over = []
done = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "completed":
        done += 1
        if e.get("processing_end_us") is not None:
            over.append(e["t_us"] - e["processing_end_us"])
over.sort()
q = lambda p: over[min(len(over) - 1, int(len(over) * p))] / 1000
print(f"tracking overhead (worker's end of processing → completion recorded), {done} jobs at 2000/s, 4 workers: "
      f"p50 {q(.5):.1f} ms p90 {q(.9):.1f} ms p99 {q(.99):.1f} ms")
PY

  # 4. Side by side: the same publish run into each emulator in its own process, and Google's Python publisher.
  unset PUBSUB_EMULATOR_HOST
  google=/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator
  python_count=$((rate * secs < 100000 ? rate * secs : 100000))
  for emulator in built-in google; do
    port=$(free_port)
    if [ "$emulator" = built-in ]; then
      "$bin" emulator --port "$port" >/dev/null 2>&1 & pids+=($!)
    elif [ -x "$google" ]; then
      "$google" --host=127.0.0.1 --port="$port" >/dev/null 2>&1 & pids+=($!)
    else
      echo "Google's emulator: not installed (apt-get install google-cloud-cli-pubsub-emulator), skipped"
      continue
    fi
    emu_pid=$!
    for _ in $(seq 200); do
      python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
      sleep 0.1
    done
    sed "s|^kind = \"emulator\"|kind = \"emulator\"\nendpoint = \"127.0.0.1:$port\"|" "$work/publish.toml" \
      > "$work/publish-$emulator.toml"
    /usr/bin/time -f "%U %S %M" -o "$work/time.txt" "$bin" run "$work/publish-$emulator.toml" --out "$work" \
      --run-id "publish-$emulator" --quiet --no-progress || true
    python3 benches/rate.py "$work/publish-$emulator/events.jsonl" "$work/time.txt" "$rate" "$secs" \
      "$emulator emulator (own process)"
    if python3 -c 'import google.cloud.pubsub_v1' 2>/dev/null; then
      echo -n "  same emulator, Google's "
      PUBSUB_EMULATOR_HOST="127.0.0.1:$port" python3 tests/interop/pubsub_conformance.py --bench "$python_count" ||
        echo "(python publisher failed)"
    else
      echo "  Google's Python publisher: not installed (pip install google-cloud-pubsub), skipped"
    fi
    kill "$emu_pid" 2>/dev/null || true
  done
}
echo "written: $out"

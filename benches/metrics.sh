#!/usr/bin/env bash
# Metrics on and off: `run` offers RATE msg/s (default 50000) of 1 KiB over 4 streams for SECS (default 10) into
# the built-in emulator in its own process, once without metrics and once with --metrics-addr scraped every second
# (as Prometheus would), and prints for each the achieved publish rate and the pacer's p99 lateness (from
# summary.json), and for the second the slowest and median scrape of /metrics. Numbers go to
# results/bench/metrics-<date>.txt.
#   benches/metrics.sh [RATE] [SECS]
rate="${1:-50000}"
secs="${2:-10}"
# shellcheck source=benches/prologue.sh
. "$(dirname "$0")/prologue.sh" metrics

exec > >(tee "$out") 2>&1
echo "# imagen-load metrics on/off, $(date -u), $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
pad="$(head -c 1000 /dev/zero | tr '\0' 'x')"
for mode in off on; do
  port=$(free_port)
  "$bin" emulator --port "$port" >/dev/null 2>&1 & pids+=($!)
  wait_port "$port"
  {
    printf '[run]\nname = "metrics"\ndeadline = "1s"\ndrain = "0s"\n'
    printf '[target]\nkind = "emulator"\nendpoint = "127.0.0.1:%s"\nbacklog = "none"\n' "$port"
    for s in upscale enhance comic background-remove; do
      printf '[[stream]]\nname = "%s"\ntopic = "%s"\npayload = '"'"'{{seq}} %s'"'"'\n' "$s" "$s" "$pad"
      printf '  [[stream.phase]]\n  kind = "constant"\n  rate = "%s/s"\n  duration = "%ss"\n' "$((rate / 4))" "$secs"
    done
  } > "$work/metrics.toml"
  args=()
  if [ "$mode" = on ]; then
    mport=$(free_port)
    args=(--metrics-addr "127.0.0.1:$mport" --metrics-linger 2s)
    python3 - "$mport" "$work/scrapes.txt" <<'PY' & pids+=($!)
import socket, sys, time
port, path = int(sys.argv[1]), sys.argv[2]
times = []
deadline = time.time() + 600
while time.time() < deadline:
    t0 = time.perf_counter()
    try:
        s = socket.create_connection(("127.0.0.1", port), 1)
        s.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\nAccept: application/openmetrics-text\r\n\r\n")
        while s.recv(65536):
            pass
        s.close()
        times.append(time.perf_counter() - t0)
        with open(path, "w") as f:
            f.write("\n".join(f"{t:.6f}" for t in times))
    except OSError:
        pass
    time.sleep(1)
PY
  fi
  "$bin" run "$work/metrics.toml" --out "$work" --run-id "m$mode" --quiet --no-progress "${args[@]}" || true
  python3 - "$work/m$mode/summary.json" "$mode" "$work/scrapes.txt" <<'PY'
import json, os, statistics, sys
s = json.load(open(sys.argv[1]))
d = s["delivery"]
p99 = {x["metric"]: x["p99_us"] for x in s["series"] if x["scope"] == "all" and x.get("cold") is None}
line = (f"metrics {sys.argv[2]}: offered {d['offered_per_s']:,.0f}/s, achieved {d['achieved_per_s']:,.0f}/s, "
        f"published {d['published']} of {d['scheduled']}, pacer lateness p99 {p99.get('pacer_lateness', 0) / 1e3:.2f} ms")
if sys.argv[2] == "on" and os.path.exists(sys.argv[3]):
    t = [float(x) for x in open(sys.argv[3]).read().split()]
    line += f"; {len(t)} scrapes, median {statistics.median(t) * 1e3:.1f} ms, slowest {max(t) * 1e3:.1f} ms"
print(line)
PY
  if [ "$mode" = on ]; then kill "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; fi
  kill "${pids[-1]}" 2>/dev/null || true
done
echo "written: $out"

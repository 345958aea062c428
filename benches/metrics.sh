#!/usr/bin/env bash
# Metrics on and off: `run` offers RATE msg/s (default 50000) of 1 KiB over 4 streams for SECS (default 10) into
# the built-in emulator in its own process, once without metrics, once with --metrics-addr scraped every second
# (as Prometheus would) and once pushing by OTLP every second (--otlp-endpoint, to a stand-in collector that
# answers 200), and prints for each the achieved publish rate and the pacer's p99 lateness (from summary.json),
# for the second the slowest and median scrape of /metrics, for the third the pushes received. Numbers go to
# results/bench/metrics-<date>.txt.
#   benches/metrics.sh [RATE] [SECS]
rate="${1:-50000}"
secs="${2:-10}"
# shellcheck source=benches/prologue.sh
. "$(dirname "$0")/prologue.sh" metrics

exec > >(tee "$out") 2>&1
echo "# imagen-load metrics on/off, $(date -u), $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
pad="$(head -c 1000 /dev/zero | tr '\0' 'x')"
for mode in off on otlp; do
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
  if [ "$mode" = otlp ]; then
    oport=$(free_port)
    args=(--otlp-endpoint "http://127.0.0.1:$oport" --otlp-interval 1s)
    python3 - "$oport" "$work/pushes.txt" <<'PY' & pids+=($!)
import http.server, sys
path = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    n = 0
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
        H.n += 1
        open(path, "w").write(str(H.n))
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
    wait_port "$oport"
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
pushes = os.path.join(os.path.dirname(sys.argv[3]), "pushes.txt")
if sys.argv[2] == "otlp" and os.path.exists(pushes):
    line += f"; {open(pushes).read()} OTLP pushes received"
print(line)
PY
  if [ "$mode" != off ]; then kill "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; fi
  kill "${pids[-1]}" 2>/dev/null || true
done
echo "written: $out"

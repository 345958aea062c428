#!/usr/bin/env bash
# Overload: more than the machine can publish. `run` offers RATE msg/s (default 100000) of 1 KiB for SECS (default
# 10) into the built-in emulator in its own process, once with the default bounds on publishes in flight
# ([target] max_outstanding_messages = 5000, max_outstanding_bytes = 32 MiB) and once practically unbounded
# (10,000,000 messages and 100 GB), and prints what each
# achieved: the rate, the shortfall, publish delay and pacer lateness p99 (from summary.json), and the harness's
# peak resident memory. Numbers go to results/bench/overload-<date>.txt.
#   benches/overload.sh [RATE] [SECS]
rate="${1:-100000}"
secs="${2:-10}"
# shellcheck source=benches/prologue.sh
. "$(dirname "$0")/prologue.sh" overload

exec > >(tee "$out") 2>&1
echo "# imagen-load overload, $(date -u), $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
pad="$(head -c 1000 /dev/zero | tr '\0' 'x')"
for bound in 5000 10000000; do
  port=$(free_port)
  "$bin" emulator --port "$port" >/dev/null 2>&1 & pids+=($!)
  wait_port "$port"
  cat > "$work/overload.toml" <<TOML
[run]
name = "overload"
deadline = "1s"
drain = "0s"
[target]
kind = "emulator"
endpoint = "127.0.0.1:$port"
backlog = "none"
max_outstanding_messages = $bound
max_outstanding_bytes = $((bound == 5000 ? 33554432 : 100000000000))
[[stream]]
name = "bench"
topic = "bench"
payload = '{{seq}} $pad'
  [[stream.phase]]
  kind = "constant"
  rate = "$rate/s"
  duration = "${secs}s"
TOML
  /usr/bin/time -f "%e %M" -o "$work/time.txt" \
    "$bin" run "$work/overload.toml" --out "$work" --run-id "b$bound" --quiet --no-progress || true
  python3 - "$work/b$bound/summary.json" "$work/time.txt" "$bound" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
wall, rss = open(sys.argv[2]).read().split()
d = s["delivery"]
p99 = {x["metric"]: x["p99_us"] for x in s["series"] if x["scope"] == "all" and x.get("cold") is None}
print(f"max_outstanding_messages {sys.argv[3]}: offered {d['offered_per_s']:,.0f}/s, achieved {d['achieved_per_s']:,.0f}/s "
      f"(shortfall {d['publish_shortfall'] * 100:.1f}%), published {d['published']} of {d['scheduled']}; "
      f"publish delay p99 {p99.get('publish_delay', 0) / 1e3:.0f} ms, pacer lateness p99 {p99.get('pacer_lateness', 0) / 1e3:.0f} ms; "
      f"peak RSS {int(rss) // 1024} MiB; {float(wall):.1f} s wall")
print("  warned: " + ("yes" if any("fell behind" in w for w in s["warnings"]) else "no"))
PY
  kill "${pids[-1]}" 2>/dev/null || true
done
echo "written: $out"

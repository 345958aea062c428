"""What a publish run did, from its events.jsonl and `/usr/bin/time -f "%U %S %M"` (plus, optionally, the
instructions `perf stat -x, -e instructions:u` counted): the sustained publish rate, the pacer's lateness
(p50/p99/p99.9/max), the publish delay from the intended instant to the ack, and the harness's CPU and instructions
per published message.

    python3 benches/rate.py EVENTS.JSONL TIME.TXT RATE SECS "INTO" [PERF.CSV]
"""
import json, sys

log, timing, rate, secs, into = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
perf = sys.argv[6] if len(sys.argv) > 6 else None
intended, acks, late = {}, [], []
for line in open(log):
    e = json.loads(line)
    if e["event"] == "scheduled":
        intended[e["seq"]] = e["intended_us"]
    elif e["event"] == "published":
        acks.append((e["t_us"], e["t_us"] - intended[e["seq"]]))
        late.append(e["lateness_us"])
acks.sort()
n = len(acks)
span = max((acks[-1][0] - acks[0][0]) / 1e6, 1e-6) if acks else 1e-6
delay = sorted(d for _, d in acks)
late.sort()
user, sys_, rss = open(timing).read().split()[-3:]
q = lambda v, p: v[min(len(v) - 1, int(len(v) * p))] if v else 0
print(f"run → {into}, 1 KiB payloads, offered {rate:,}/s for {secs}s: published {n:,} in {span:.2f}s "
      f"= {n / span:,.0f} msg/s sustained")
print(f"  pacer lateness µs p50 {q(late, .5)} p99 {q(late, .99)} p99.9 {q(late, .999)} max {late[-1] if late else 0}; "
      f"publish delay (intended → ack) p50 {q(delay, .5) / 1000:.1f} ms p99 {q(delay, .99) / 1000:.1f} ms")
cpu = float(user) + float(sys_)
line = f"  harness CPU {cpu / max(n, 1) * 1e6:.1f} µs/message ({cpu:.1f} s); peak RSS {int(rss) // 1024} MiB"
if perf:
    for row in open(perf):
        parts = row.strip().split(",")
        if len(parts) > 2 and parts[2].startswith("instructions") and parts[0].isdigit():
            line += f"; {int(parts[0]) / max(n, 1):,.0f} instructions/message"
print(line)

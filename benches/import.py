#!/usr/bin/env python3
"""`imagen-load import` of a busy namespace's day in Cloud Logging: 100,000 event entries.

The entries are fixtures/kube/events/gke-l4-scale-up.cloud-logging.json (one GPU cold start, 12 entries)
repeated for new pods and nodes every few seconds of a day: the shape `gcloud logging read
'logName="projects/P/logs/events"' --format=json` writes. Prints the wall time and the peak resident memory.

    python3 benches/import.py [path/to/imagen-load] [ENTRIES]
"""
import copy, json, os, resource, subprocess, sys, tempfile, time

root = os.path.join(os.path.dirname(__file__), "..")
binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/imagen-load/target")), "release", "imagen-load")
entries = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
base = json.load(open(os.path.join(root, "fixtures/kube/events/gke-l4-scale-up.cloud-logging.json")))


def shift(value, seconds, i):
    """Every timestamp moved by `seconds`, every pod and node name and uid made the i-th one's."""
    text = json.dumps(value)
    for old in ["q4x8z", "q7zt"]:
        text = text.replace(old, f"{old}{i:06d}")
    text = text.replace('"uid": "', f'"uid": "{i:06d}-')
    out = json.loads(text)

    def move(v):
        if isinstance(v, dict):
            return {k: move(x) for k, x in v.items()}
        if isinstance(v, list):
            return [move(x) for x in v]
        if isinstance(v, str) and len(v) >= 20 and v[4] == "-" and v[10] == "T" and v.endswith("Z"):
            from datetime import datetime, timedelta, timezone
            frac = v[19:-1]
            t = datetime.strptime(v[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc) + timedelta(seconds=seconds)
            return t.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"
        return v
    return move(out)


with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "events.json")
    with open(path, "w") as f:
        f.write("[\n")
        n, i = 0, 0
        while n < entries:
            for e in shift(base, 8 * i, i):
                if n == entries:
                    break
                f.write((",\n" if n else "") + json.dumps(e))
                n += 1
            i += 1
        f.write("\n]\n")
    size = os.path.getsize(path) / 2**20
    start = time.time()
    subprocess.run([binary, "import", path, "--quiet", "--out", tmp, "--run-id", "bench"], check=True)
    wall = time.time() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    summary = json.load(open(os.path.join(tmp, "bench", "summary.json")))
    print(f"import: {entries} Cloud Logging entries ({size:.0f} MiB, {len(summary['pods'])} pods) in {wall:.2f} s, "
          f"peak RSS {peak:.0f} MiB (goal: < 5 s, < 200 MiB)")

"""Peak memory (max RSS) of whole commands, for the simulator and the analysis benchmarks.

Usage: python3 benches/memory.py PATH/TO/imagen-load
"""
import json, os, resource, subprocess, sys, tempfile, time

bin_ = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="imagen-load-bench-")

def measure(args):
    """Run a command in a fresh child; return (seconds, max RSS bytes of that child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    # A fresh Python child isolates ru_maxrss per command (RUSAGE_CHILDREN is a running maximum).
    code = ("import resource,subprocess,sys;subprocess.run(sys.argv[1:],check=True,stdout=subprocess.DEVNULL);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    rss_kb = int(subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True).stdout)
    return time.perf_counter() - t, rss_kb * 1024

busy = os.path.join(tmp, "busy-day.toml")
with open(busy, "w") as f:
    f.write('[run]\nname = "busy-day"\nseed = 9\n[sim.keda]\nmax_replicas = 8\n[sim.autoscaler]\nmax_nodes = 40\n')
    for s in ["upscale", "enhance", "comic", "background-remove"]:
        f.write(f'[[stream]]\nname = "{s}"\n[[stream.phase]]\nkind = "diurnal"\nbase = "44/m"\namplitude = "30/m"\n'
                f'duration = "24h"\narrivals = "poisson"\n')

secs, rss = measure([bin_, "run", "workloads/diurnal.toml", "--quiet", "--out", tmp, "--run-id", "diurnal"])
events = sum(1 for _ in open(os.path.join(tmp, "diurnal", "events.jsonl")))
msgs = json.load(open(os.path.join(tmp, "diurnal", "summary.json")))["delivery"]["scheduled"]
print(f"sim: run workloads/diurnal.toml (a simulated day, {msgs} messages, {events} events, all outputs): "
      f"{secs:.2f} s wall, peak RSS {rss/2**20:.1f} MiB")

measure([bin_, "run", busy, "--quiet", "--out", tmp, "--run-id", "busy"])
events = sum(1 for _ in open(os.path.join(tmp, "busy", "events.jsonl")))
msgs = json.load(open(os.path.join(tmp, "busy", "summary.json")))["delivery"]["scheduled"]
secs, rss = measure([bin_, "analyze", os.path.join(tmp, "busy"), "--quiet"])
# Baseline: the same command on a tiny log (binary, allocator, fixed-size histograms).
measure([bin_, "run", "workloads/burst.toml", "--quiet", "--out", tmp, "--run-id", "tiny"])
_, base = measure([bin_, "analyze", os.path.join(tmp, "tiny"), "--quiet"])
print(f"analysis: analyze {events} events ({msgs} messages) from events.jsonl, all outputs: {secs:.2f} s wall, "
      f"peak RSS {rss/2**20:.1f} MiB (tiny-log baseline {base/2**20:.1f} MiB) -> "
      f"{(rss-base)/msgs:.0f} bytes per tracked message above baseline")

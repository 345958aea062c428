"""Decode a run's e2e_latency.hlog with HdrHistogram_py, an independent implementation, and compare it with
summary.json: counts and percentiles must match exactly, for all streams and per tag.

    pip install hdrhistogram
    python3 tests/interop/check_hlog.py results/<run-id>

Optional (needs a PyPI package); `cargo test` checks the same file with the Rust crate's reader.
"""
import json, os, sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

def reference_percentile(h, p):
    """The reference (Java) convention: the value at the ceil(p% x total)-th recording, as its highest equivalent.
    HdrHistogram_py's own get_value_at_percentile rounds the count instead, which differs on small samples."""
    target = max(1, -(-p * h.get_total_count() // 100))
    seen = 0
    for item in h.get_recorded_iterator():
        seen += item.count_added_in_this_iter_step
        if seen >= target:
            return h.get_highest_equivalent_value(item.value_iterated_to)
    return h.get_max_value()


run = sys.argv[1]
new = lambda: HdrHistogram(1, 86_400_000_000, 3)
reader = HistogramLogReader(os.path.join(run, "e2e_latency.hlog"), new())
total, tags = new(), {}
while (h := reader.get_next_interval_histogram()) is not None:
    (tags.setdefault(h.get_tag(), new()) if h.get_tag() else total).add(h)
rows = {(r["scope"]): r for r in json.load(open(os.path.join(run, "summary.json")))["series"]
        if r["metric"] == "e2e_latency" and r["cold"] is None}
failures = 0
for scope, h in [("all", total)] + [(t.split(".", 1)[1], h) for t, h in sorted(tags.items())]:
    want = rows[scope]
    got = {"count": h.get_total_count(), "p50_us": reference_percentile(h, 50),
           "p99_us": reference_percentile(h, 99), "max_us": h.get_max_value()}
    ok = all(got[k] == want[k] for k in got)
    failures += not ok
    print(f"{'ok ' if ok else 'BAD'} {scope}: {got}" + ("" if ok else f" != summary {dict((k, want[k]) for k in got)}"))
sys.exit(1 if failures else 0)

#!/usr/bin/env bash
# Fuzzes the parsers that read what users and clusters hand us, each for a bounded time (libFuzzer through
# cargo-fuzz, nightly Rust): the workload language, the threshold grammar, the kubelet/autoscaler/KEDA message
# parsers (and whole Event objects), and the event-log reader with the analysis after it.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s each, all four targets)
#
# Limits per input: 10 s (a hang), 2 GiB of memory (unbounded growth); any panic is a failure. Inputs that fail
# are saved under tests/fuzz/artifacts/<target>/ and the script exits 1: turn each into a regression test.
# The corpus (seeded from workloads/, fixtures/ and ci/) grows under ~/.cache/imagen-load/fuzz-corpus/.
# SANITIZER=address builds with AddressSanitizer (slower); the default is none (the crate has no unsafe code).
set -euo pipefail
cd "$(dirname "$0")"
here="$(pwd)"
root="$(cd ../.. && pwd)"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(workload thresholds kube_messages event_log)
fi
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzzing needs the nightly toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo +nightly fuzz --version > /dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/imagen-load/fuzz-target}"
corpus_root="${FUZZ_CORPUS_DIR:-$HOME/.cache/imagen-load/fuzz-corpus}"

# Seed corpora from the repository's own inputs.
seed() {
  local t="$1" dir="$corpus_root/$1"
  mkdir -p "$dir"
  case "$t" in
    workload)
      cp "$root"/workloads/*.toml "$root"/fixtures/bad-workloads/*.toml "$dir"/ ;;
    thresholds)
      printf 'e2e_latency{stream:upscale,cold:true}\np(95) < 5m' > "$dir/a"
      printf 'lost\ncount == 0' > "$dir/b"
      printf 'cold_start.model_load\navg <= 90s' > "$dir/c"
      printf 'publish_delay{stream:enhance}\np(99.9) < 250ms' > "$dir/d"
      printf 'delivery.completed_ratio\nrate >= 0.999' > "$dir/e" ;;
    kube_messages)
      python3 - "$root" "$dir" <<'PY'
import json, sys, pathlib
root, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
n = 0
for f in (root / "fixtures/kube").glob("*.json"):
    d = json.loads(f.read_text())
    objs = d.get("items") or [s["object"] for s in d.get("timeline", [])]
    for o in objs:
        if o.get("kind") == "Event":
            (out / f"m{n}").write_text(f'{o.get("reason","")}\n{o.get("message","")}')
            (out / f"e{n}").write_text(json.dumps(o))
            n += 1
PY
      ;;
    event_log)
      cp "$root"/fixtures/events/*.jsonl "$dir"/ ;;
  esac
}

failed=0
for t in "${targets[@]}"; do
  seed "$t"
  mkdir -p "$here/artifacts/$t"
  echo "== $t: ${secs}s"
  if ! cargo +nightly fuzz run --fuzz-dir "$here" --sanitizer "${SANITIZER:-none}" --debug-assertions \
      "$t" "$corpus_root/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$here/artifacts/$t/" -print_final_stats=1 2> "$here/artifacts/$t.log"; then
    failed=1
    echo "   FAILED: see $here/artifacts/$t.log and the inputs in $here/artifacts/$t/"
  fi
  grep -E '^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::peak_rss_mb|stat::new_units_added)' \
    "$here/artifacts/$t.log" | sed 's/^/   /' || true
done
exit "$failed"

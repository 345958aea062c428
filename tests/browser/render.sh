#!/usr/bin/env bash
# Renders a run's report.html in headless Chromium (Debian's `chromium` package), fails on any console message or
# network request, and saves a screenshot.
#   apt-get install chromium            # once
#   tests/browser/render.sh results/<run-id> [screenshot.png]     # the run's report.html
#   tests/browser/render.sh nightly.html [screenshot.png]         # any page the harness wrote
# The Rust test `browser::every_page_renders_its_charts_in_headless_chromium` runs it on every page the harness writes.
set -euo pipefail
target="$1"
if [ -d "$target" ]; then page="$target/report.html"; else page="$target"; fi
shot="${2:-${page%.html}.png}"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
log="$profile/chromium.log"
# The flags keep Chromium off the network (this machine has none) and quiet.
timeout 90 chromium --headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$profile" \
  --hide-scrollbars --window-size=1100,3000 --enable-logging=stderr --v=0 \
  --screenshot="$shot" "file://$(realpath "$page")" 2>"$log" || { cat "$log" >&2; exit 1; }
if grep -E "CONSOLE|Uncaught|Failed to load resource|net::ERR" "$log" >&2; then
  echo "$page logged console errors or tried to load something" >&2
  exit 1
fi
test -s "$shot"
echo "rendered $page without console errors; screenshot $shot"

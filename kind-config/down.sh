#!/usr/bin/env bash
# Removes what kind-config/up.sh created: the kind cluster (and with it KEDA and everything in it). The image
# imagen-load:dev stays in the local Docker; results/ stays too.
set -euo pipefail
CLUSTER="imagen"
if ! command -v kind >/dev/null 2>&1; then
  echo "down.sh: kind is not installed" >&2
  exit 2
fi
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  kind delete cluster --name "$CLUSTER"
else
  echo "no kind cluster named $CLUSTER"
fi

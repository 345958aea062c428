#!/usr/bin/env bash
# Creates the local stack of kind-config/ from nothing: a kind cluster, KEDA (Helm, pinned), the imagen-load image
# built and loaded into the cluster, the emulator, one reference worker per pipeline and the ScaledObjects.
#   kind-config/up.sh [all-cold|hybrid]     (default all-cold)
#   kind-config/up.sh shards                (then: the in-cluster 4-shard Job, waited for, and merged)
# Needs docker, kind, kubectl and helm on PATH. kind-config/down.sh removes everything.
set -euo pipefail
cd "$(dirname "$0")/.."

KEDA_VERSION="2.18.1"
CLUSTER="imagen"
IMAGE="imagen-load:dev"
setup="${1:-all-cold}"

need() { command -v "$1" >/dev/null 2>&1 || { echo "up.sh: $1 is not installed (needed: docker, kind, kubectl, helm)" >&2; exit 2; }; }
for tool in docker kind kubectl helm; do need "$tool"; done

if [[ "$setup" == "shards" ]]; then
  run_id="kind-shards-$(date -u +%Y%m%dT%H%M%SZ)"
  kubectl -n imagen delete job imagen-load-shards --ignore-not-found
  kubectl -n imagen create configmap imagen-load-workload --from-file=workloads/kind-burst.toml \
    --dry-run=client -o yaml | kubectl apply -f -
  # The start barrier: two minutes ahead, time for every shard's pod to be scheduled and to connect.
  start_at="$(date -u -d '+2 minutes' +%Y-%m-%dT%H:%M:%SZ)"
  sed -e "s/value: kind-shards$/value: ${run_id}/" -e "s/value: \"\"$/value: \"${start_at}\"/" \
    kind-config/shard-job.yaml | kubectl apply -f -
  kubectl -n imagen wait --for=condition=complete --timeout=15m job/imagen-load-shards
  cargo run --release --quiet -- merge results/kind/"${run_id}"-shard-*-of-4 --out results --run-id "$run_id"
  exit 0
fi
case "$setup" in
  all-cold | hybrid) ;;
  *) echo "up.sh: unknown setup '$setup' (all-cold, hybrid or shards)" >&2; exit 2 ;;
esac

mkdir -p results/kind
# The shard Job runs as a non-root user and writes here through the node's mount.
chmod 1777 results/kind

if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  config="$(mktemp)"
  trap 'rm -f "$config"' EXIT
  sed "s#hostPath: ./results#hostPath: $PWD/results#" kind-config/cluster.yaml > "$config"
  kind create cluster --config "$config" --wait 120s
fi
kubectl config use-context "kind-$CLUSTER"

helm repo add kedacore https://kedacore.github.io/charts >/dev/null
helm repo update kedacore >/dev/null
helm upgrade --install keda kedacore/keda --version "$KEDA_VERSION" \
  --namespace keda --create-namespace --wait --timeout 5m

docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

kubectl apply -f kind-config/namespace.yaml
kubectl apply -f kind-config/rbac.yaml
kubectl apply -f kind-config/emulator.yaml
kubectl -n imagen rollout status deployment/pubsub-emulator --timeout=120s

# Topics and subscriptions first: KEDA polls each subscription's backlog, and a topic without a subscription drops
# what is published to it. (`run` would create them too; the workers and KEDA start earlier.)
emulator="http://127.0.0.1:8085/v1/projects/imagen-load"
for _ in $(seq 30); do curl -sf "http://127.0.0.1:8085/healthz" >/dev/null && break; sleep 1; done
for pipeline in upscale enhance comic background-remove; do
  curl -sf -X PUT "$emulator/topics/imagen-$pipeline" >/dev/null || true
  curl -sf -X PUT -H 'content-type: application/json' \
    -d "{\"topic\": \"projects/imagen-load/topics/imagen-$pipeline\", \"ackDeadlineSeconds\": 60}" \
    "$emulator/subscriptions/imagen-$pipeline-sub" >/dev/null || true
done
curl -sf -X PUT "$emulator/topics/imagen-load-results" >/dev/null || true

kubectl apply -f kind-config/workers.yaml
kubectl apply -f "kind-config/scaledobjects-$setup.yaml"
kubectl -n imagen wait --for=condition=Ready --timeout=120s scaledobject --all

echo "ready: kind cluster '$CLUSTER', KEDA $KEDA_VERSION, setup $setup."
echo "next:  cargo run --release -- run workloads/kind-burst.toml --gates ci/gates.toml"

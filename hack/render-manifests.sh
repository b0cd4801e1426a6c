#!/usr/bin/env bash
# Regenerates every file derived from one source, so each fact has a single home:
#   crds/*.yaml                        -> charts/jobqueue-operator/files/crds/ (the chart's CRD copies)
#   operator RBAC rules                -> charts/jobqueue-operator/files/rbac-rules.yaml
#   charts/.../files/dashboard.json    -> manifests/grafana/jobqueue-operator.json
#   charts/.../files/alerts.yaml       -> manifests/prometheus/jobqueue-alerts.yaml
#   the chart (helm template)          -> manifests/install.yaml (for kubectl apply -f)
# Usage: hack/render-manifests.sh [--check]   (--check: change nothing, exit 1 when a file is stale)
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
[ "${1:-}" = "--check" ] && check=true
helm=${HELM:-$(hack/build-tools.sh --print-bin)/helm}
[ -x "$helm" ] || { echo "render-manifests: helm not found at $helm (run make tools)" >&2; exit 2; }

chart=charts/jobqueue-operator
namespace=jobqueue-system
# helm template has no server to ask; render for the Kubernetes version this repository pins.
kube_version=$(sed -n 's/^K8S_VERSION=//p' hack/build-tools.sh)
rbac_source=operator/jobqueue_operator/rbac.yaml
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Stage every derived file under $out with the same relative path it has in the repository.
mkdir -p "$out/$chart/files/crds" "$out/manifests/grafana" "$out/manifests/prometheus"
cp crds/*.yaml "$out/$chart/files/crds/"
if [ -f "$rbac_source" ]; then
  cp "$rbac_source" "$out/$chart/files/rbac-rules.yaml"
else
  cp "$chart/files/rbac-rules.yaml" "$out/$chart/files/rbac-rules.yaml"
fi
cp "$chart/files/dashboard.json" "$out/manifests/grafana/jobqueue-operator.json"
cp "$chart/files/alerts.yaml" "$out/manifests/prometheus/jobqueue-alerts.yaml"

# Render from a copy of the chart that already carries the fresh CRD and RBAC copies.
cp -r "$chart" "$out/chart"
rm -rf "$out/chart/files/crds"
cp -r "$out/$chart/files/crds" "$out/chart/files/crds"
cp "$out/$chart/files/rbac-rules.yaml" "$out/chart/files/rbac-rules.yaml"
{
  echo "# jobqueue-operator: everything to run the operator with plain kubectl, rendered from"
  echo "# charts/jobqueue-operator by hack/render-manifests.sh (make manifests). Do not edit."
  echo "#   kubectl apply --server-side -f manifests/install.yaml"
  echo "# Before deleting it, delete your JobQueues (kubectl delete jq --all -A) while the"
  echo "# operator still runs, so none is left behind its finalizer."
  echo "---"
  echo "apiVersion: v1"
  echo "kind: Namespace"
  echo "metadata:"
  echo "  name: $namespace"
  echo "  labels:"
  echo "    app.kubernetes.io/part-of: jobqueue-operator"
  "$helm" template jobqueue-operator "$out/chart" --namespace "$namespace" --no-hooks \
    --kube-version "$kube_version" \
    --set crds.keep=false
} >"$out/manifests/install.yaml"

stale=0
while IFS= read -r file; do
  rel=${file#"$out/"}
  if $check; then
    if ! cmp -s "$file" "$rel"; then
      echo "stale: $rel (run make manifests)" >&2
      stale=1
    fi
  else
    mkdir -p "$(dirname "$rel")"
    cmp -s "$file" "$rel" || { cp "$file" "$rel"; echo "wrote $rel"; }
  fi
done < <(find "$out/$chart" "$out/manifests" -type f | sort)
if $check; then
  # CRD copies for CRDs that no longer exist are stale too.
  for f in "$chart"/files/crds/*.yaml; do
    [ -e "$f" ] || continue
    [ -e "$out/$f" ] || { echo "stale: $f (its source in crds/ is gone)" >&2; stale=1; }
  done
  exit $stale
fi
for f in "$chart"/files/crds/*.yaml; do
  [ -e "$f" ] && [ ! -e "$out/$f" ] && { rm "$f"; echo "removed $f"; }
done
exit 0

#!/usr/bin/env bash
# Builds the pinned Kubernetes control plane, the node's kubelet and kube-proxy, kubectl,
# etcd, CoreDNS, the pods' pause binary, helm and kind from Go modules into a per-version
# cache outside the work tree, once per machine.
# Usage: hack/build-tools.sh [--print-bin]   (prints the bin directory on its last line)
#
# Everything runs inside main(), which bash parses completely before running it:
# editing this file while a (long) build runs cannot derail the running copy.
set -euo pipefail

K8S_VERSION=v1.34.4
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.21.4
KIND_VERSION=v0.33.0
COREDNS_VERSION=v1.14.1  # hack/tools/coredns/go.mod pins it; keep the two in step

k8s_ldflags() {
  local v=$K8S_VERSION minor
  minor=$(echo "$v" | cut -d. -f2)
  local f="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f="$f -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    f="$f -X $pkg.gitTreeState=clean -X $pkg.buildDate=2025-01-01T00:00:00Z"
  done
  echo "$f"
}

build() {  # build NAME DIR PACKAGE [LDFLAGS]
  local name=$1 dir=$2 pkg=$3 ldflags=${4:-"-s -w"}
  [ -x "$bin/$name" ] && return 0
  echo "building $name (first run on this machine only) ..." >&2
  local t0=$SECONDS
  (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$bin/$name.tmp" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
  echo "built $name in $((SECONDS - t0)) s" >&2
}

go_install() {  # go_install NAME MODULE@VERSION: plain `go install` works for these
  local name=$1 module=$2
  [ -x "$bin/$name" ] && return 0
  echo "building $name (first run on this machine only) ..." >&2
  local t0=$SECONDS
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "$module"
  echo "built $name in $((SECONDS - t0)) s" >&2
}

main() {
  local here cache
  here=$(cd "$(dirname "$0")" && pwd)
  cache=${JOBQUEUE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jobqueue-operator}
  bin="$cache/k8s-$K8S_VERSION-etcd-$ETCD_VERSION/bin"
  if [ "${1:-}" = "--print-bin" ]; then echo "$bin"; return 0; fi
  mkdir -p "$bin"
  export CGO_ENABLED=0 GOFLAGS=-mod=mod

  if [ ! -x "$bin/kube-apiserver" ]; then
    echo "Building Kubernetes $K8S_VERSION and etcd $ETCD_VERSION from Go modules into $bin." >&2
    echo "A cold build takes roughly 15-30 minutes on 2 cores; later runs reuse it." >&2
  fi
  local ld
  ld=$(k8s_ldflags)
  build etcd "$here/tools/etcd" go.etcd.io/etcd/server/v3
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
    build "$cmd" "$here/tools/k8s" "k8s.io/kubernetes/cmd/$cmd" "$ld"
  done
  build coredns "$here/tools/coredns" . \
    "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
  build pause "$here/tools/pause" .
  go_install helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  go_install kind "sigs.k8s.io/kind@$KIND_VERSION"
  echo "$bin"
}

main "$@"
exit $?

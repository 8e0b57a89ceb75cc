#!/usr/bin/env bash
# Builds the sandbox's binaries from the Go module proxy, cached by version:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (k8s.io/kubernetes),
#   etcd (the go.etcd.io/etcd/server/v3 version that Kubernetes release requires) and kwok.
# k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces every staging module with
# ./staging/... . We build it from a small wrapper module that replaces each staging module with its
# published v0.<minor>.<patch> twin, the list taken from the proxy's own go.mod of that release.
# Prints the bin directory on the last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${HAW_ICC_CACHE:-$HOME/.cache/haw-icc-llm}
bin="$cache/bin/k8s-$K8S_VERSION-kwok-$KWOK_VERSION"
if [ -f "$bin/.complete" ]; then echo "$bin"; exit 0; fi
start=$(date +%s)
mkdir -p "$bin"
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
minor=$(echo "$K8S_VERSION" | cut -d. -f2)
staging_version="v0.${K8S_VERSION#v1.}"

work="$cache/build/k8s-$K8S_VERSION"
mkdir -p "$work"
gomod=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
[ -f "$gomod" ] || { echo "build: cannot find go.mod of k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
gover=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")
{
  echo "module haw-icc-llm/sandbox-build"
  echo
  echo "go $gover"
  echo
  # Every requirement of the release, so the build uses exactly the versions Kubernetes tested.
  awk '/^require \(/{r=1;next} r&&/^\)/{r=0} r&&NF>=2{print "require "$1" "$2}' "$gomod"
  echo "require k8s.io/kubernetes $K8S_VERSION"
  awk '/^replace \(/{r=1;next} r&&/^\)/{r=0} r&&/=> \.\/staging/{print "replace "$1" => "$1" '"$staging_version"'"}' "$gomod"
} > "$work/go.mod"
# A staging module listed in replace but not in require still needs a require line.
awk '/^replace /{print $2}' "$work/go.mod" | while read -r m; do
  grep -q "^require $m " "$work/go.mod" || echo "require $m $staging_version" >> "$work/go.mod"
done
etcd_version=$(awk '$1=="require" && $2=="go.etcd.io/etcd/server/v3"{print $3}' "$work/go.mod")
[ -n "$etcd_version" ] || { echo "build: k8s.io/kubernetes@$K8S_VERSION does not name go.etcd.io/etcd/server/v3" >&2; exit 1; }

ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
cd "$work"
echo "build: Kubernetes $K8S_VERSION (go $gover in go.mod, $(go version | awk '{print $3}') here), etcd $etcd_version, kwok $KWOK_VERSION into $bin" >&2
go mod download 2>&1 | tail -5 >&2 || true
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  go build -mod=mod -trimpath -ldflags "$ldflags" -o "$bin/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  echo "build: $cmd done ($(( $(date +%s) - start ))s)" >&2
done
go build -mod=mod -trimpath -ldflags "-s -w" -o "$bin/etcd" "go.etcd.io/etcd/server/v3"
echo "build: etcd done ($(( $(date +%s) - start ))s)" >&2
GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
echo "$etcd_version" > "$bin/etcd.version"
echo "build: kwok done ($(( $(date +%s) - start ))s)" >&2
touch "$bin/.complete"
echo "$bin"

#!/usr/bin/env bash
# Builds Helm 4 from its Go module (helm.sh/helm/v4, pinned in tools/helm/go.mod) for the chart's
# lint and golden tests, into a bin dir keyed by a hash of what determines the binary (Go version,
# GOOS/GOARCH, tools/helm/go.mod and go.sum, this recipe):
#
#   ${GATEHOUSE_HELM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse/helm}/<hash>/helm
#
# An existing binary is reused (a second run takes well under a second). Prints the binary's path
# on stdout; progress goes to stderr. Cold: a few minutes (niced, BUILD_NICE, default 10).
#
# Usage: helm.sh [--cached-only]   (--cached-only: exit 3 instead of building)
set -euo pipefail
cached_only=0
[[ "${1:-}" == "--cached-only" ]] && cached_only=1
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/tools/helm"
recipe=1

command -v go >/dev/null || { echo "helm.sh: go not found in PATH" >&2; exit 1; }
export GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0

key="$(
  {
    echo "recipe=$recipe go=$(go env GOVERSION) os=$(go env GOOS) arch=$(go env GOARCH)"
    cat "$tools/go.mod" "$tools/go.sum"
  } | sha256sum | cut -c1-16
)"
dir="${GATEHOUSE_HELM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse/helm}/$key"
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [[ ! -x "$dir/helm" ]]; then
  (( cached_only )) && { echo "helm.sh: helm is not built yet (run charts/helm.sh)" >&2; exit 3; }
  start=$SECONDS
  version="$(cd "$tools" && go list -m -f '{{.Version}}' helm.sh/helm/v4)"
  echo "helm.sh: building helm $version ..." >&2
  (
    cd "$tools"
    go mod download
    nice -n "${BUILD_NICE:-10}" go build -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.gitTreeState=archive" \
      -o "$dir/.helm.$$" helm.sh/helm/v4/cmd/helm
  )
  mv -f "$dir/.helm.$$" "$dir/helm"
  echo "helm.sh: built helm in $((SECONDS - start)) s" >&2
fi
echo "$dir/helm"

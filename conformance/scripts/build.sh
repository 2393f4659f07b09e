#!/usr/bin/env bash
# Build the binaries of the conformance mini-cluster from pinned Go modules:
#
#   kube-apiserver, kube-controller-manager, kubectl   (conformance/tools/k8s)
#   etcd                                               (conformance/tools/etcd)
#   echo-basic                                         (conformance/tools/echo)
#   coredns                                            (conformance/tools/coredns)
#   lwepp                                              (conformance/tools/inference)
#
# Binaries go to a bin dir keyed by a hash of everything that determines them
# (Go version, GOOS/GOARCH, the tool modules' go.mod/go.sum, this recipe):
#
#   ${GATEHOUSE_MINICLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse/minicluster}/<hash>/bin
#
# Binaries that already exist there are not rebuilt, so a second run takes well
# under a second. The Go build cache ($GOCACHE) and module cache ($GOMODCACHE)
# are used as usual. The bin dir is printed on stdout at the end; everything
# else goes to stderr, so callers can do:  BIN="$(conformance/scripts/build.sh)"
#
# Usage: build.sh [-f|--force] [BINARY...]
#   -f, --force  rebuild the requested binaries even if they exist
#   BINARY       build only these (default: all)
#
# Environment:
#   GATEHOUSE_MINICLUSTER_CACHE  cache root (see above)
#   BUILD_NICE                   niceness for `go build` (default 10; 0 = off)
#
# Needs only Go (see tools/*/go.mod for the minimum) and a module proxy.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$(cd "$here/../tools" && pwd)"

# Bump when the build recipe (flags, tags, ldflags) changes, so that the cache
# key changes too.
recipe=3

# name|module dir (under tools/)|package|flavour
binaries=(
  "kube-apiserver|k8s|k8s.io/kubernetes/cmd/kube-apiserver|kube"
  "kube-controller-manager|k8s|k8s.io/kubernetes/cmd/kube-controller-manager|kube"
  "kubectl|k8s|k8s.io/kubernetes/cmd/kubectl|kube"
  "etcd|etcd|go.etcd.io/etcd/server/v3|etcd"
  "echo-basic|echo|sigs.k8s.io/gateway-api/conformance/echo-basic|plain"
  "coredns|coredns|github.com/coredns/coredns|coredns"
  "lwepp|inference|sigs.k8s.io/gateway-api-inference-extension/cmd/lwepp|plain"
)

force=0
want=()
for arg in "$@"; do
  case "$arg" in
    -f|--force) force=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
    -*) echo "build.sh: unknown option $arg" >&2; exit 2 ;;
    *) want+=("$arg") ;;
  esac
done

log() { echo "build.sh: $*" >&2; }

command -v go >/dev/null || { log "go not found in PATH"; exit 1; }

# Builds must see exactly the pinned modules: no workspace, no implicit
# go.mod/go.sum updates, no VCS stamping (module zips have no .git).
export GOWORK=off
export GOFLAGS="-mod=readonly -buildvcs=false"
export CGO_ENABLED=0

goversion="$(go env GOVERSION)"
goos="$(go env GOOS)"
goarch="$(go env GOARCH)"

# --- cache key --------------------------------------------------------------
key="$(
  {
    echo "recipe=$recipe go=$goversion os=$goos arch=$goarch"
    for m in k8s etcd echo coredns inference; do
      echo "== $m"
      cat "$tools/$m/go.mod" "$tools/$m/go.sum"
    done
  } | sha256sum | cut -c1-16
)"
cache_root="${GATEHOUSE_MINICLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse/minicluster}"
root="$cache_root/$key"
bin="$root/bin"
mkdir -p "$bin"

# One build per cache dir at a time; a second caller waits, then finds the
# binaries already there.
exec 9>"$root/.lock"
if command -v flock >/dev/null; then flock 9; fi

# --- helpers ----------------------------------------------------------------
# Version of a module as resolved in one of the tool modules (no network).
modversion() { (cd "$tools/$1" && go list -m -f '{{.Version}}' "$2"); }
# Commit time of a module version (from the module cache's .info), RFC 3339.
modtime() { (cd "$tools/$1" && go list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' "$2"); }

ldflags_for() {
  local flavour="$1" v t major minor flags=()
  case "$flavour" in
    kube)
      v="$(modversion k8s k8s.io/kubernetes)"
      t="$(modtime k8s k8s.io/kubernetes)"
      [[ "$v" =~ ^v([0-9]+)\.([0-9]+)\. ]] || { log "unexpected k8s.io/kubernetes version $v"; exit 1; }
      major="${BASH_REMATCH[1]}" minor="${BASH_REMATCH[2]}"
      # Same variables as kubernetes' hack/lib/version.sh sets. gitCommit is
      # unknown (module zips carry no commit); "archive" is what upstream uses
      # for builds from a source archive. buildDate is the release's commit
      # time, which keeps builds reproducible.
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=("-X" "$pkg.gitVersion=$v" "-X" "$pkg.gitMajor=$major" "-X" "$pkg.gitMinor=$minor"
                "-X" "$pkg.gitTreeState=archive" "-X" "$pkg.buildDate=${t:-1970-01-01T00:00:00Z}")
      done
      ;;
    etcd)
      # The etcd version is a constant in go.etcd.io/etcd/api/v3/version;
      # GitSHA is "Not provided" unless set.
      v="$(modversion etcd go.etcd.io/etcd/server/v3)"
      flags+=("-X" "go.etcd.io/etcd/api/v3/version.GitSHA=module-$v")
      ;;
    coredns)
      v="$(modversion coredns github.com/coredns/coredns)"
      flags+=("-X" "github.com/coredns/coredns/coremain.GitCommit=module-$v")
      ;;
    plain) ;;
  esac
  echo "-s -w ${flags[*]-}"
}

tags_for() {
  case "$1" in
    # As kubernetes' hack/lib/golang.sh does for non-debug builds.
    kube) echo "selinux,notest,grpcnotrace" ;;
    *) echo "" ;;
  esac
}

nice_cmd=()
if [[ "${BUILD_NICE:-10}" != 0 ]] && command -v nice >/dev/null; then
  nice_cmd=(nice -n "${BUILD_NICE:-10}")
fi

# --- build --------------------------------------------------------------------
selected=()
for entry in "${binaries[@]}"; do
  name="${entry%%|*}"
  if (( ${#want[@]} )); then
    for w in "${want[@]}"; do [[ "$w" == "$name" ]] && selected+=("$entry"); done
  else
    selected+=("$entry")
  fi
done
if (( ${#want[@]} )) && (( ${#selected[@]} != ${#want[@]} )); then
  log "unknown binary in: ${want[*]} (known: $(for e in "${binaries[@]}"; do printf '%s ' "${e%%|*}"; done))"
  exit 2
fi

total_start=$SECONDS
built=0
for entry in "${selected[@]}"; do
  IFS='|' read -r name moddir pkg flavour <<<"$entry"
  out="$bin/$name"
  if [[ -x "$out" ]] && (( ! force )); then
    continue
  fi
  start=$SECONDS
  log "building $name ($pkg) ..."
  ldflags="$(ldflags_for "$flavour")"
  tags="$(tags_for "$flavour")"
  tmp="$bin/.$name.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  (
    cd "$tools/$moddir"
    # `go mod download` first so a fresh machine gets a clear error if the
    # proxy is unreachable, rather than one in the middle of the build.
    go mod download
    "${nice_cmd[@]}" go build -trimpath ${tags:+-tags "$tags"} -ldflags "$ldflags" -o "$tmp" "$pkg"
  )
  mv -f "$tmp" "$out"
  trap - EXIT
  built=$((built + 1))
  log "built $name in $((SECONDS - start))s"
done

# Human-readable record of what is in this cache dir (skipped on a no-op run).
if (( built > 0 )) || [[ ! -f "$root/versions.txt" ]]; then
  {
    echo "go=$goversion $goos/$goarch recipe=$recipe"
    echo "k8s.io/kubernetes $(modversion k8s k8s.io/kubernetes)"
    echo "go.etcd.io/etcd/server/v3 $(modversion etcd go.etcd.io/etcd/server/v3)"
    echo "sigs.k8s.io/gateway-api/conformance $(modversion echo sigs.k8s.io/gateway-api/conformance)"
    echo "github.com/coredns/coredns $(modversion coredns github.com/coredns/coredns)"
    echo "sigs.k8s.io/gateway-api-inference-extension $(modversion inference sigs.k8s.io/gateway-api-inference-extension)"
  } >"$root/versions.txt.tmp"
  mv -f "$root/versions.txt.tmp" "$root/versions.txt"
fi
if (( built > 0 )); then
  log "built $built binaries in $((SECONDS - total_start))s"
fi

echo "$bin"

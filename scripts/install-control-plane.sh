#!/usr/bin/env bash
# Installs the binaries of the real test control plane used by the integration tests
# (test/support/control-plane.ts): etcd (Debian package etcd-server) and kube-apiserver (built from the
# k8s.io/kubernetes Go module through the wrapper module in tools/kube-apiserver).
#
# Idempotent and non-interactive: what is already there is never installed or built again.
#   VPSIE_RUNBOOK_CACHE  per-machine cache (default: $HOME/.cache/vpsie-runbook); kube-apiserver goes to
#                        $VPSIE_RUNBOOK_CACHE/bin/kube-apiserver-<version>
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WRAPPER="$ROOT/tools/kube-apiserver"
CACHE="${VPSIE_RUNBOOK_CACHE:-$HOME/.cache/vpsie-runbook}"
BIN_DIR="$CACHE/bin"

LOG_TAG=install-control-plane
# shellcheck source=scripts/install-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/install-lib.sh"
hold_install_lock "$BIN_DIR/.install.lock"

# --- etcd -------------------------------------------------------------------------------------------------
find_etcd() {
  if command -v etcd >/dev/null 2>&1; then
    command -v etcd
  elif [ -x /usr/bin/etcd ]; then
    echo /usr/bin/etcd
  else
    return 1
  fi
}

if ETCD="$(find_etcd)"; then
  log "etcd already installed: $ETCD"
else
  command -v apt-get >/dev/null 2>&1 || die "etcd is not installed and apt-get is not available; install etcd 3.4+"
  log "installing Debian package etcd-server"
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends etcd-server; }
  if ! apt_install; then
    log "apt-get install failed; running apt-get update and retrying"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    apt_install
  fi
  ETCD="$(find_etcd)" || die "etcd-server was installed but no etcd binary was found"
  log "installed etcd: $ETCD"
fi

# --- kube-apiserver ---------------------------------------------------------------------------------------
KUBE_VERSION="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3 }' "$WRAPPER/go.mod")"
[ -n "$KUBE_VERSION" ] || die "cannot read the k8s.io/kubernetes version from $WRAPPER/go.mod"
APISERVER="$BIN_DIR/kube-apiserver-$KUBE_VERSION"

if [ -x "$APISERVER" ]; then
  log "kube-apiserver $KUBE_VERSION already built: $APISERVER"
else
  GO="$(command -v go || true)"
  if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then
    GO=/usr/local/go/bin/go
  fi
  [ -n "$GO" ] || die "go not found in PATH or /usr/local/go/bin; install Go 1.24+"
  mkdir -p "$BIN_DIR"
  TMP_OUT="$(mktemp "$BIN_DIR/.kube-apiserver-$KUBE_VERSION.XXXXXX")"
  trap 'rm -f "$TMP_OUT"' EXIT
  log "building kube-apiserver $KUBE_VERSION with $("$GO" version) (a cold build takes several minutes)"
  START=$SECONDS
  (
    cd "$WRAPPER"
    export GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 GOTOOLCHAIN=local
    # What hack/lib/version.sh stamps in a release build, so that GET /version answers the real version
    # (otherwise v0.0.0-master+$Format:%H$). The module proxy does not know the commit; the date is the tag's.
    BUILD_DATE="$("$GO" list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes)"
    MAJOR="${KUBE_VERSION#v}"
    MINOR="${MAJOR#*.}"
    MAJOR="${MAJOR%%.*}"
    MINOR="${MINOR%%.*}"
    LDFLAGS="-s -w"
    for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
      LDFLAGS+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$MAJOR -X $pkg.gitMinor=$MINOR"
      LDFLAGS+=" -X $pkg.gitCommit= -X $pkg.gitTreeState=clean -X $pkg.buildDate=${BUILD_DATE:-1970-01-01T00:00:00Z}"
    done
    "$GO" build -trimpath -ldflags "$LDFLAGS" -o "$TMP_OUT" k8s.io/kubernetes/cmd/kube-apiserver
  )
  chmod 0755 "$TMP_OUT"
  mv -f "$TMP_OUT" "$APISERVER"
  trap - EXIT
  log "built $APISERVER in $((SECONDS - START))s"
fi

log "done"
echo "ETCD_BIN=$ETCD"
echo "KUBE_APISERVER_BIN=$APISERVER"

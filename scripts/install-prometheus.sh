#!/usr/bin/env bash
# Installs the Prometheus tools the alert-rule tests use (test/integration/prometheus-rules.test.ts, found by
# test/support/prometheus-tools.ts): `promtool` from Debian's package `prometheus`, and the real Alertmanager
# (`/usr/bin/prometheus-alertmanager`, as Debian names it) and `amtool` from `prometheus-alertmanager`.
#
# Installed with apt-get like etcd (scripts/install-control-plane.sh), not merely unpacked: Debian's Alertmanager
# reads its notification templates and UI from /usr/share/prometheus/alertmanager and exits without them.
# Both packages would start their service (Prometheus on :9090, Alertmanager on :9093) from their maintainer
# scripts; the tests want neither, and in a container without an init system the start fails. So the install
# runs under a policy-rc.d that forbids starting services (invoke-rc.d and deb-systemd-invoke both obey it),
# unless the machine already has one; a policy-rc.d this script wrote is removed again.
#
# Idempotent and non-interactive: tools already installed are used as they are.
set -euo pipefail

CACHE="${VPSIE_RUNBOOK_CACHE:-$HOME/.cache/vpsie-runbook}"
POLICY=/usr/sbin/policy-rc.d

LOG_TAG=install-prometheus
# shellcheck source=scripts/install-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/install-lib.sh"
hold_install_lock "$CACHE/bin/.install-prometheus.lock"

# PATH first, then /usr/bin, where the Debian packages put them.
find_tool() {
  local name
  for name in "$@"; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    elif [ -x "/usr/bin/$name" ]; then
      echo "/usr/bin/$name"
      return 0
    fi
  done
  return 1
}

wrote_policy=""
remove_policy() {
  if [ -n "$wrote_policy" ]; then
    as_root rm -f "$POLICY"
    wrote_policy=""
  fi
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "$* not installed and apt-get is not available; install $*"
  if [ ! -e "$POLICY" ]; then
    # shellcheck disable=SC2016 # a literal script
    as_root sh -c 'printf "#!/bin/sh\n# written by vpsie-runbook scripts/install-prometheus.sh during an install\nexit 101\n" > "$1" && chmod 0755 "$1"' sh "$POLICY"
    wrote_policy=1
    trap remove_policy EXIT
  fi
  log "installing Debian packages $* (services not started)"
  local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@")
  if ! as_root "${install[@]}"; then
    log "apt-get install failed; running apt-get update and retrying"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root "${install[@]}"
  fi
  remove_policy
  trap - EXIT
}

missing=()
if PROMTOOL="$(find_tool promtool)"; then
  log "promtool already installed: $PROMTOOL"
else
  missing+=(prometheus)
fi
if ALERTMANAGER="$(find_tool prometheus-alertmanager alertmanager)" && AMTOOL="$(find_tool amtool)"; then
  log "alertmanager and amtool already installed: $ALERTMANAGER, $AMTOOL"
else
  missing+=(prometheus-alertmanager)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  apt_install "${missing[@]}"
fi

PROMTOOL="$(find_tool promtool)" || die "promtool not found after installing prometheus"
ALERTMANAGER="$(find_tool prometheus-alertmanager alertmanager)" || die "alertmanager not found after install"
AMTOOL="$(find_tool amtool)" || die "amtool not found after installing prometheus-alertmanager"
for tool in "$PROMTOOL" "$ALERTMANAGER" "$AMTOOL"; do
  "$tool" --version >/dev/null 2>&1 || die "$tool --version failed"
done

log "done"
echo "PROMTOOL_BIN=$PROMTOOL"
echo "ALERTMANAGER_BIN=$ALERTMANAGER"
echo "AMTOOL_BIN=$AMTOOL"

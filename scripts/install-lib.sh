# Shared by the install scripts (sourced, not run): logging, one install at a time per lock file, and running a
# command as root (directly, or through sudo without a password prompt). The caller sets LOG_TAG first.

log() { printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; }

die() {
  log "ERROR: $*"
  exit 1
}

# Two installs at once (a test run and `npm run setup`) wait for each other instead of racing (apt's lock, or
# building twice). The lock is held on file descriptor 9 until the script exits.
hold_install_lock() {
  mkdir -p "$(dirname "$1")"
  exec 9>"$1"
  if ! flock -n 9; then
    log "another install is running; waiting for it"
    flock 9
  fi
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

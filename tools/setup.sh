#!/usr/bin/env bash
# Create (or refresh) the Twister virtual environment with a pinned, checked stack.
#
# Usage:
#   bash tools/setup.sh            # venv at tools/venv, Debian packages, Python packages
#   TWISTER_VENV=/path bash tools/setup.sh
#   TWISTER_SKIP_APT=1 bash tools/setup.sh   # no apt-get (packages already there)
#
# Re-running is fast and safe: apt-get and pip skip what is installed; a stamp file records the
# requirement hash so an unchanged stack is not re-resolved.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${TWISTER_VENV:-$root/tools/venv}
py=${TWISTER_PYTHON:-}
log() { echo "[setup $(date +%H:%M:%S)] $*"; }

apt_pkgs="espeak-ng sox flac libsndfile1 munge slurm-wlm slurmctld slurmd chromium fonts-wqy-microhei"
if [ -z "${TWISTER_SKIP_APT:-}" ] && command -v apt-get >/dev/null; then
  missing=$(for p in $apt_pkgs; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    log "apt-get install $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi

if [ -z "$py" ]; then
  for c in python3.11 "$HOME/.pyenv/versions/3.11.7/bin/python3"; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; assert sys.version_info[:2]==(3,11)' 2>/dev/null; then
      py=$c; break
    fi
  done
fi
[ -n "$py" ] || { echo "setup: Python 3.11 not found (set TWISTER_PYTHON)" >&2; exit 1; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating venv $venv with $py"
  "$py" -m venv "$venv"
fi
stamp=$venv/.twister-stack
want=$(cat "$root/tools/requirements.txt" "$root/setup.py" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing pinned stack (tools/requirements.txt)"
  "$venv/bin/python" -m pip install -q "pip==25.3"
  "$venv/bin/python" -m pip install -q -r "$root/tools/requirements.txt"
  "$venv/bin/python" -m pip install -q --no-deps -e "$root"
  "$venv/bin/python" -m twister_plugin.utils.check_stack
  echo "$want" > "$stamp"
else
  log "stack up to date ($venv)"
fi
log "done: source $venv/bin/activate"

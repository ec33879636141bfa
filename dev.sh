#!/usr/bin/env bash
# Set up everything hello-chatops needs on a Debian machine, then run it.
#
#   ./dev.sh sandbox [--port N]   the whole system locally; open the console URL it prints
#   ./dev.sh test [pytest args]   lint and the whole test suite
#   ./dev.sh setup                only install (Debian packages when missing, the virtualenv)
#
# Debian packages are installed with apt-get when missing (as root, or through sudo);
# Python packages go into ./.venv.
set -euo pipefail
cd "$(dirname "$0")"

VENV=${HELLO_VENV:-.venv}
# Debian installs haproxy in /usr/sbin, which a user's PATH often lacks; the sandbox looks it up on PATH
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin" ;; esac
PYTHON=${PYTHON:-python3}

need_apt=()
want() {  # want <command> <debian package>
  command -v "$1" >/dev/null 2>&1 || need_apt+=("$2")
}

apt_install() {
  [ ${#need_apt[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "==> installing Debian packages: ${need_apt[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
}

setup() {
  local mode=$1
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' 2>/dev/null || {
    echo "Python 3.11 or newer is needed as '$PYTHON' (set PYTHON=...)" >&2; exit 1; }
  "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || need_apt+=("python3-venv")
  want prometheus prometheus
  # Debian names the binary prometheus-alertmanager; upstream's tarball calls it alertmanager
  command -v alertmanager >/dev/null 2>&1 || want prometheus-alertmanager prometheus-alertmanager
  # the load tool behind /hello loadtest and load during analysis (the sandbox runs its Jobs)
  want hey hey
  want haproxy haproxy  # the sandbox's proxy in front of each service's tracks
  if [ "$mode" = test ]; then
    want chromium chromium
  fi
  apt_install
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  echo "==> installing Python packages into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  # the versions the suite was run with (constraints.txt), so a fresh set-up matches what was tested
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test]"
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
  setup)
    setup test ;;
  sandbox)
    setup sandbox
    exec "$VENV/bin/python" -m bot sandbox "$@" ;;
  test)
    setup test
    echo "==> ruff"
    "$VENV/bin/ruff" check .
    echo "==> import-linter (the layers in pyproject.toml)"
    "$VENV/bin/lint-imports" --no-cache
    echo "==> pytest"
    # three workers on two cores: most of the suite waits on servers, sockets and timers, not on the CPU
    exec "$VENV/bin/python" -m pytest -n 3 --dist loadfile "$@" ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2 ;;
esac

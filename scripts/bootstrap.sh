#!/usr/bin/env bash
# Creates .venv with hauler installed (plus the test tools with `bootstrap.sh test`).
# Installs python3-venv through apt-get on a fresh Debian machine when it is missing.
# PYTHON picks the interpreter (default python3), VENV another venv directory (default .venv):
#   PYTHON=/usr/bin/python3 VENV=.venv-debian scripts/bootstrap.sh   (see bench/README.md)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
extra="${1:-}"
sudo_cmd() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
    sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive sudo_cmd apt-get install -y -qq "$@"
}
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "hauler needs Python 3.11 or newer ($python is older or missing)" >&2
    exit 1
fi
if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' 2>/dev/null; then
    apt_install python3-venv
fi
venv="${VENV:-$root/.venv}"
stamp="$venv/.installed-$extra"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    "$venv/bin/pip" install -q --upgrade pip
    if [ "$extra" = test ]; then
        "$venv/bin/pip" install -q -e "$root[test]"
    else
        "$venv/bin/pip" install -q -e "$root[media]"
    fi
    touch "$stamp"
fi

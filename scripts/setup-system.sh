#!/usr/bin/env bash
# Install the system tools amsc needs on Debian bookworm (run as root). Idempotent:
# a second run finds everything present and installs nothing.
#   ngspice 46 + libngspice0-dev  from bookworm-backports (bookworm's ngspice 39 has no KLU solver)
#   iverilog, verilator, yosys    Verilog lint / simulation / synthesis
#   python3-venv                  the Makefile installs the Python side into a venv (PEP 668)
set -euo pipefail

need_ngspice_major=46

have_tools() {
    command -v iverilog >/dev/null && command -v verilator >/dev/null && command -v yosys >/dev/null || return 1
    command -v ngspice >/dev/null || return 1
    local major
    major=$(dpkg-query -W -f='${Version}' ngspice 2>/dev/null | sed -E 's/^([0-9]+).*/\1/')
    [ "${major:-0}" -ge "$need_ngspice_major" ] || return 1
    ls /usr/lib/*/libngspice.so >/dev/null 2>&1 || ls /usr/lib/libngspice.so >/dev/null 2>&1 || return 1
    python3 -c 'import venv, ensurepip' 2>/dev/null || return 1
}

if have_tools; then
    echo "setup-system: ngspice $(dpkg-query -W -f='${Version}' ngspice), iverilog, verilator, yosys already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-system: missing system packages; run 'sudo make setup' (needs root for apt-get)" >&2
    exit 1
fi

src=/etc/apt/sources.list.d/debian.sources
if [ -f "$src" ] && ! grep -q 'bookworm-backports' "$src"; then
    sed -i 's/^Suites: bookworm bookworm-updates$/& bookworm-backports/' "$src"
fi
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/amsc-backports.list
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q -t bookworm-backports ngspice libngspice0 libngspice0-dev
apt-get install -y -q --no-install-recommends iverilog verilator yosys python3-venv make
have_tools || { echo "setup-system: tools still missing after apt-get install" >&2; exit 1; }
echo "setup-system: ngspice $(dpkg-query -W -f='${Version}' ngspice) installed"

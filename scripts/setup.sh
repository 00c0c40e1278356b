#!/usr/bin/env bash
# Install everything silkwatch's tests and demo need, from nothing, on Debian 12 as root:
# Debian packages (Prometheus, nfdump, softflowd, Chromium, tshark, Java and
# Maven for the Kafka broker), the .venv with silkwatch editable, the Kafka broker jars.
#
# Idempotent and quick to re-run: apt runs only when a package is missing, pip only when
# pyproject.toml or a C source changed since the last install, the jars only when
# docker/kafka/pom.xml did.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
APT_PACKAGES=(prometheus nfdump softflowd chromium tshark)

say() { echo "setup: $*" >&2; }

missing_packages() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
            echo "$pkg"
    done
}

# Tools the script itself needs: asked for by command, so a JDK or Python from elsewhere
# (a pyenv Python, a Temurin JDK) counts as present.
tool_packages() {
    command -v java >/dev/null || echo openjdk-17-jre-headless
    command -v mvn >/dev/null || echo maven
    command -v cc >/dev/null || echo gcc
    if ! command -v "$PYTHON" >/dev/null; then
        echo python3 python3-venv python3-dev
        return
    fi
    "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || echo python3-venv
    # the C kernels (connectors/_fieldmoves.c, detectors/_hashgroup.c) compile against Python.h
    "$PYTHON" -c 'import os, sysconfig; os.stat(sysconfig.get_paths()["include"] + "/Python.h")' \
        2>/dev/null || echo python3-dev
}

install_debian_packages() {
    local missing
    mapfile -t missing < <(missing_packages "${APT_PACKAGES[@]}"; tool_packages)
    if ((${#missing[@]} == 0)); then
        say "Debian packages present"
        return
    fi
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2068  # tool_packages may print several names on one line
    apt-get install -y -q --no-install-recommends ${missing[@]}
}

install_venv() {
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        { say "$PYTHON is $("$PYTHON" --version 2>&1); silkwatch needs Python 3.11+"; exit 1; }
    local stamp="$VENV/.silkwatch-setup" want
    # the C sources count too: an editable install compiles them only when it runs
    want="$(cat "$ROOT/pyproject.toml" "$ROOT"/*/*.c | sha256sum | cut -d' ' -f1)"
    want="$want $("$PYTHON" --version 2>&1)"
    if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        say ".venv up to date"
        return
    fi
    [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
    say "pip install -e '.[dev]'"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[dev]"
    echo "$want" >"$stamp"
}

install_debian_packages
install_venv
# bytecode for our own modules too (pip compiles only what it installs): every command
# starts ~30 ms sooner, PYTHONDONTWRITEBYTECODE or not
say "compile bytecode"
"$VENV/bin/python" -m compileall -q "$ROOT"/{connectors,detectors,streams,silkwatch,grafana} >/dev/null
say "Kafka broker jars"
"$ROOT/docker/kafka/kafka.sh" fetch
say "done"

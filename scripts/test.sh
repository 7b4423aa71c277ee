#!/usr/bin/env bash
# The project's one test command (CI runs it through .ci/run, as root, on a
# fresh Debian bookworm machine):
#   1. install the tools the integration tests drive, if any is missing;
#   2. cargo fmt --check, cargo clippy -D warnings, cargo test.
# Add further steps at the end; keep each one a plain command.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# rustup's default location, in case the caller's PATH lacks it.
if ! command -v cargo >/dev/null && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

step() { printf '\n==> %s\n' "$*"; }

# --- 1. Tools used by tests/common ------------------------------------------
# docker-registry: a real registry (CNCF distribution) per test
# skopeo:          pushes generated images into it, inspects what it serves
# containerd/ctr:  checks that generated layers unpack
# openssl:         test CA and server certificates, HTTPS probes
# htpasswd:        bcrypt password files (package apache2-utils)
# node, npm:       run and install Stoplight Prism, the validating mock of Harbor's API
declare -A package_of=(
    [docker-registry]=docker-registry
    [skopeo]=skopeo
    [containerd]=containerd
    [ctr]=containerd
    [openssl]=openssl
    [htpasswd]=apache2-utils
    [node]=nodejs
    [npm]=npm
)
missing=()
for tool in docker-registry skopeo containerd ctr openssl htpasswd node npm; do
    if ! command -v "$tool" >/dev/null; then
        # Only the missing packages: installing a present one would upgrade it.
        package="${package_of[$tool]}"
        [[ " ${missing[*]} " == *" $package "* ]] || missing+=("$package")
    fi
done
if ((${#missing[@]})); then
    step "installing ${missing[*]}"
    sudo=()
    if ((EUID != 0)); then sudo=(sudo); fi
    export DEBIAN_FRONTEND=noninteractive
    # Keep the packages' init scripts from starting system-wide services
    # (the tests start their own): a temporary policy-rc.d, if none exists.
    created_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
        created_policy=yes
        trap '"${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
    if [[ -n "$created_policy" ]]; then
        "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
fi

# Stoplight Prism (tests/common/prism.rs), pinned by tests/tools/package-lock.json and
# installed into tests/tools/node_modules (git-ignored) only when missing or not the pinned
# version. Needs the npm registry once; the tests themselves run offline.
prism="$PWD/tests/tools/node_modules/.bin/prism"
prism_pinned="$(node -p 'require("./tests/tools/package.json").dependencies["@stoplight/prism-cli"]')"
if [[ ! -x "$prism" || "$("$prism" --version 2>/dev/null)" != "$prism_pinned" ]]; then
    step "installing Stoplight Prism $prism_pinned (npm ci in tests/tools)"
    npm ci --prefix tests/tools --no-audit --no-fund
fi
export FERRY_PRISM="$prism"

# helm-python-sdk (Helm v4's Go SDK as a library, for tests/charts.rs), pinned by
# tests/tools/requirements.txt, in a project-local virtualenv (git-ignored), installed only
# when missing or not the pinned version. Needs PyPI once; the tests run offline.
helm_venv="$PWD/tests/tools/venv"
helm_pinned="$(sed -n 's/^helm-python-sdk==//p' tests/tools/requirements.txt)"
if [[ ! -x "$helm_venv/bin/python" ]] \
    || ! "$helm_venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('helm-python-sdk') != '$helm_pinned')" 2>/dev/null; then
    step "installing helm-python-sdk $helm_pinned (pip, into tests/tools/venv)"
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        # Debian's python3 needs its venv package for `python3 -m venv`.
        sudo=()
        if ((EUID != 0)); then sudo=(sudo); fi
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends python3-venv
    fi
    python3 -m venv "$helm_venv"
    "$helm_venv/bin/pip" install --quiet --disable-pip-version-check -r tests/tools/requirements.txt
fi
export FERRY_HELM_PYTHON="$helm_venv/bin/python"
# apt tests (tests/apt.rs): dpkg-deb builds the test packages, gpg signs the test
# repository, gpgv and sqv check the mirror's signatures, apt-get installs from it, curl
# probes. sqv is optional (Debian bookworm and later have it): without it gpgv checks alone.
apt_missing=()
for pair in dpkg-deb:dpkg gpg:gnupg gpgconf:gnupg gpgv:gpgv apt-get:apt curl:curl; do
    tool="${pair%%:*}" package="${pair#*:}"
    if ! command -v "$tool" >/dev/null && [[ " ${apt_missing[*]} " != *" $package "* ]]; then
        apt_missing+=("$package")
    fi
done
if ((${#apt_missing[@]})) || ! command -v sqv >/dev/null; then
    step "installing ${apt_missing[*]} sqv (apt tests)"
    sudo=()
    if ((EUID != 0)); then sudo=(sudo); fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q
    if ((${#apt_missing[@]})); then
        "${sudo[@]}" apt-get install -y -q --no-install-recommends "${apt_missing[@]}"
    fi
    "${sudo[@]}" apt-get install -y -q --no-install-recommends sqv ||
        echo "sqv is not available here: the apt tests check signatures with gpgv only"
fi

step "tool versions"
cargo --version
docker-registry --version
skopeo --version
ctr --version
openssl version
echo "node $(node --version), prism $("$FERRY_PRISM" --version)"
"$FERRY_HELM_PYTHON" tests/tools/helm_sdk.py version

# --- 2. Format, lint, test ---------------------------------------------------
step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test --all-targets"
cargo test --all-targets

step "all checks passed in ${SECONDS}s"

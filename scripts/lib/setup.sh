# shellcheck shell=bash
# Installers shared by scripts/test.sh, scripts/demo.sh and scripts/bench.sh: what they need on
# a fresh Debian machine, installed only when missing. Sourced (bash 4+), from the repository
# root; the caller defines `step MESSAGE` (a progress line).
#
# A caller resolves a tool (`command -v`, a path kept in a variable) only after these have run:
# on a new machine the tool is not there before, and a name resolved too early stays wrong.

# The command prefix for root-only commands: nothing as root, else sudo.
setup_sudo() {
    SETUP_SUDO=()
    if ((EUID != 0)); then SETUP_SUDO=(sudo); fi
}

# setup_packages TOOL=PACKAGE...: apt-get installs the package of each missing tool (only the
# missing ones: installing a present one would upgrade it), keeping the packages' init scripts
# from starting system-wide services (the callers start their own) with a temporary
# policy-rc.d, if none exists.
setup_packages() {
    local missing=() pair tool package
    for pair in "$@"; do
        tool="${pair%%=*}" package="${pair#*=}"
        if ! command -v "$tool" >/dev/null; then
            [[ " ${missing[*]} " == *" $package "* ]] || missing+=("$package")
        fi
    done
    ((${#missing[@]})) || return 0
    step "installing ${missing[*]}"
    setup_sudo
    export DEBIAN_FRONTEND=noninteractive
    local created_policy="" previous_trap
    previous_trap="$(trap -p EXIT)"
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${SETUP_SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${SETUP_SUDO[@]}" chmod 755 /usr/sbin/policy-rc.d
        created_policy=yes
        trap '"${SETUP_SUDO[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    "${SETUP_SUDO[@]}" apt-get update -q
    "${SETUP_SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
    if [[ -n "$created_policy" ]]; then
        "${SETUP_SUDO[@]}" rm -f /usr/sbin/policy-rc.d
        if [[ -n "$previous_trap" ]]; then eval "$previous_trap"; else trap - EXIT; fi
    fi
    # Forget the command paths bash remembered, then check that every tool is there now.
    hash -r
    for pair in "$@"; do
        tool="${pair%%=*}" package="${pair#*=}"
        command -v "$tool" >/dev/null || {
            echo "setup: $tool is still missing after installing $package; install it by hand (apt-get install $package) and run again" >&2
            return 1
        }
    done
}

# The servers and clients of the integration tests and the demo:
# docker-registry: a real registry (CNCF distribution)
# skopeo:          pushes generated images into it, inspects what it serves
# containerd/ctr:  pulls and unpacks images as a node does
# openssl:         test CA and server certificates, HTTPS probes
# htpasswd:        bcrypt password files (package apache2-utils)
# node, npm:       run and install Stoplight Prism, the validating mock of Harbor's API
# nginx:           serves what ferry wrote as a site's web server does, workers as www-data
#                  (tests/modes.rs; package nginx-light, /usr/sbin/nginx)
# python3:         runs the virtualenv of helm-python-sdk (setup_helm_sdk)
# git:             ferry carries Git repositories with it; `git daemon` (in the same package)
#                  is the upstream Git server of tests/git.rs
# ceph-mon, ceph-mgr, ceph-osd, radosgw, ceph-authtool/monmaptool (ceph-common): the one-node
#                  Ceph with an S3 gateway of tests/s3.rs (scripts/lib/ceph.sh)
# curl:            signs S3 requests (--aws-sigv4) to read the bucket independently of ferry
setup_test_tools() {
    setup_packages docker-registry=docker-registry skopeo=skopeo containerd=containerd \
        ctr=containerd openssl=openssl htpasswd=apache2-utils node=nodejs npm=npm \
        nginx=nginx-light python3=python3 git=git curl=curl ceph-mon=ceph-mon \
        ceph-mgr=ceph-mgr ceph-osd=ceph-osd radosgw=radosgw ceph-authtool=ceph-common \
        monmaptool=ceph-common radosgw-admin=ceph-common
}

# Stoplight Prism (tests/common/prism.rs), pinned by tests/tools/package-lock.json and
# installed into tests/tools/node_modules (git-ignored) only when missing or not the pinned
# version. Needs the npm registry once; the tests themselves run offline. Exports FERRY_PRISM.
setup_prism() {
    local prism prism_pinned
    prism="$PWD/tests/tools/node_modules/.bin/prism"
    prism_pinned="$(node -p 'require("./tests/tools/package.json").dependencies["@stoplight/prism-cli"]')"
    if [[ ! -x "$prism" || "$("$prism" --version 2>/dev/null)" != "$prism_pinned" ]]; then
        step "installing Stoplight Prism $prism_pinned (npm ci in tests/tools)"
        npm ci --prefix tests/tools --no-audit --no-fund
    fi
    export FERRY_PRISM="$prism"
}

# helm-python-sdk (Helm v4's Go SDK as a library), pinned by tests/tools/requirements.txt, in
# a project-local virtualenv (git-ignored), installed only when missing or not the pinned
# version. Needs PyPI once; the tests run offline. Exports FERRY_HELM_PYTHON.
setup_helm_sdk() {
    local helm_venv helm_pinned cdx_pinned spdx_pinned
    helm_venv="$PWD/tests/tools/venv"
    helm_pinned="$(sed -n 's/^helm-python-sdk==//p' tests/tools/requirements.txt)"
    cdx_pinned="$(sed -n 's/^cyclonedx-python-lib\[json-validation\]==//p' tests/tools/requirements.txt)"
    spdx_pinned="$(sed -n 's/^spdx-tools==//p' tests/tools/requirements.txt)"
    if [[ ! -x "$helm_venv/bin/python" ]] \
        || ! "$helm_venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('helm-python-sdk') != '$helm_pinned' or m.version('cyclonedx-python-lib') != '$cdx_pinned' or m.version('spdx-tools') != '$spdx_pinned')" 2>/dev/null; then
        step "installing helm-python-sdk $helm_pinned, cyclonedx-python-lib $cdx_pinned and spdx-tools $spdx_pinned (pip, into tests/tools/venv)"
        if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
            # Debian's python3 needs its venv package for `python3 -m venv`.
            setup_sudo
            DEBIAN_FRONTEND=noninteractive "${SETUP_SUDO[@]}" apt-get install -y -q --no-install-recommends python3-venv
        fi
        python3 -m venv "$helm_venv"
        "$helm_venv/bin/pip" install --quiet --disable-pip-version-check -r tests/tools/requirements.txt
    fi
    export FERRY_HELM_PYTHON="$helm_venv/bin/python"
}

# apt tools: dpkg-deb builds packages, gpg signs a repository, gpgv and sqv check signatures,
# apt-get installs, curl probes. sqv is optional (Debian bookworm and later have it): without
# it gpgv checks alone.
setup_apt_tools() {
    local apt_missing=() pair tool package
    for pair in dpkg-deb:dpkg gpg:gnupg gpgconf:gnupg gpgv:gpgv apt-get:apt curl:curl; do
        tool="${pair%%:*}" package="${pair#*:}"
        if ! command -v "$tool" >/dev/null && [[ " ${apt_missing[*]} " != *" $package "* ]]; then
            apt_missing+=("$package")
        fi
    done
    if ((${#apt_missing[@]})) || ! command -v sqv >/dev/null; then
        step "installing ${apt_missing[*]} sqv (apt tests)"
        setup_sudo
        export DEBIAN_FRONTEND=noninteractive
        "${SETUP_SUDO[@]}" apt-get update -q
        if ((${#apt_missing[@]})); then
            "${SETUP_SUDO[@]}" apt-get install -y -q --no-install-recommends "${apt_missing[@]}"
        fi
        "${SETUP_SUDO[@]}" apt-get install -y -q --no-install-recommends sqv ||
            echo "sqv is not available here: the apt tests check signatures with gpgv only"
        hash -r
    fi
}

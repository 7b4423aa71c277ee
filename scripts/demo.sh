#!/usr/bin/env bash
# ferry's whole flow, offline, on this machine, in a couple of minutes.
#
#   scripts/demo.sh [--keep] [--no-setup]
#
# 1. Installs what it needs on a fresh Debian machine, if missing (scripts/lib/setup.sh, shared
#    with scripts/test.sh: apt-get, and pip for helm-python-sdk), and builds ferry. Every tool
#    is looked up only after that, where it is used.
# 2. Upstream, on 127.0.0.1: a docker-registry with 40 images (multi-arch indexes, shared base
#    layers; examples/bench_corpus.rs --scale demo, pushed with skopeo), and a web server with a
#    Helm chart repository (packaged by Helm through helm-python-sdk), a K3s-like release
#    (binary, airgap images, install.sh, sha256sum file) and an apt repository signed with a
#    throwaway gpg key (dpkg-deb + gpg).
# 3. The connected side, as a release engineer runs it: ferry key generate, a release manifest,
#    ferry lock, build, verify, pack --volume-size (several volumes, the ferry binary beside
#    them, SHA256SUMS signed with the release key).
# 4. The air gap: the upstream servers are stopped. On site, as on-site staff run it: the stick
#    checked (SHA256SUMS.sig with openssl, sha256sum -c) and its ferry used from then on, ferry
#    verify from the volumes, the site's apt key, ferry install --site into a
#    second docker-registry (the Harbor stand-in) and mirror directories, with a harmless install
#    command in place of the Ansible run; then ferry serve from the volumes.
# 5. Pulls as the site does: containerd (`ctr`) from the site registry and through ferry serve
#    as a mirror, Helm from both chart repositories, apt-get --download-only from both apt
#    mirrors, the K3s binary from /files/.
# 6. A report, one line per step (ok / FAILED / skipped, seconds); exit 1 if any step failed.
#
# Options and environment:
#   --keep                      keep the work directory (printed at the end) with every log
#   --no-setup                  install nothing (also FERRY_DEMO_SKIP_SETUP=1); the tools must be there
#   FERRY_BIN                   a built ferry binary (default: cargo build --bin ferry)
#   FERRY_DEMO_CORPUS_BIN       a built examples/bench_corpus (default: cargo build --example bench_corpus)
#   FERRY_HELM_PYTHON           a python with helm-python-sdk (default: tests/tools/venv, set up by step 1)
#   FERRY_DEMO_SKIP_INSTALL=1   report `ferry install` as skipped and fill the site's targets with
#                               the per-target imports instead (for a ferry without `install`)
#
# Every server it starts listens on 127.0.0.1 on a free port and is stopped on exit. containerd
# needs root (sudo is used otherwise).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
if ! command -v cargo >/dev/null && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

KEEP=""
SETUP="yes"
[[ "${FERRY_DEMO_SKIP_SETUP:-}" == 1 ]] && SETUP=""
for arg in "$@"; do
    case "$arg" in
    --keep) KEEP=yes ;;
    --no-setup) SETUP="" ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "demo.sh: unknown argument $arg (see --help)" >&2
        exit 2
        ;;
    esac
done

step() { printf '==> %s\n' "$*"; }
die() {
    echo "demo.sh: $*" >&2
    exit 1
}

# --- Work directory, servers, cleanup ----------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo.XXXXXX")"
mkdir -p "$WORK/logs" "$WORK/run"
SUDO=()
((EUID == 0)) || SUDO=(sudo)

# Stops the server NAME (SIGTERM, then SIGKILL after 10 s) if it runs.
stop_server() {
    stop_pidfile "$WORK/run/$1.pid" "${SUDO[@]}"
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    local pidfile
    for pidfile in "$WORK"/run/*.pid; do
        [[ -e "$pidfile" ]] && stop_server "$(basename "$pidfile" .pid)"
    done
    [[ -d "$WORK/upstream/gnupg" ]] && GNUPGHOME="$WORK/upstream/gnupg" gpgconf --kill all 2>/dev/null
    if [[ -n "$KEEP" ]]; then
        echo "kept $WORK (logs in $WORK/logs)"
    else
        "${SUDO[@]}" rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=scripts/lib/servers.sh disable=SC1091
source "$REPO/scripts/lib/servers.sh"

# fails COMMAND...: succeeds when COMMAND fails.
fails() {
    if "$@"; then
        echo "expected to fail: $*" >&2
        return 1
    fi
}

# The port a server started by this script listens on.
port_of() { cat "$WORK/run/$1.port"; }

# start_registry NAME STORAGE: a docker-registry on a free port; waits until /v2/ answers.
start_registry() {
    run_registry "$WORK/run" "$1" "$2"
    echo "$1: docker-registry on http://127.0.0.1:$(port_of "$1")"
}

# start_web NAME DIR: a static web server (python3 http.server) over DIR on a free port.
start_web() {
    local name="$1" dir="$2" port
    mkdir -p "$dir"
    for _ in 1 2 3 4 5; do
        port="$(pick_port)"
        python3 -m http.server "$port" --bind 127.0.0.1 --directory "$dir" \
            </dev/null >"$WORK/run/$name.log" 2>&1 &
        echo $! >"$WORK/run/$name.pid"
        echo "$port" >"$WORK/run/$name.port"
        if wait_until 30 curl -fsS -o /dev/null "http://127.0.0.1:$port/"; then
            echo "$name: web server on http://127.0.0.1:$port/ over $dir"
            return 0
        fi
        stop_server "$name"
        grep -q "Address already in use" "$WORK/run/$name.log" || break
    done
    cat "$WORK/run/$name.log" >&2
    die "web server $name did not start"
}

# --- Steps and the report -----------------------------------------------------------------------
REPORT=()
FAILED=""

# run_step NAME FUNCTION [ARGS...]: runs FUNCTION in a subshell with `set -e`, its output in
# logs/NN-FUNCTION.log, and records a report line. After a failed step the rest are skipped.
run_step() {
    local name="$1" fn="$2"
    shift 2
    local log
    log="$WORK/logs/$(printf '%02d' $((${#REPORT[@]} + 1)))-$fn.log"
    if [[ -n "$FAILED" ]]; then
        REPORT+=("$(printf '%-7s %8s  %s' skipped - "$name")")
        return 0
    fi
    step "$name"
    local start="${EPOCHREALTIME/./}" status=ok
    # Not in a condition: there bash would ignore `set -e` inside the step too.
    set +e
    (
        set -euo pipefail
        "$fn" "$@"
    ) >"$log" 2>&1
    local rc=$?
    set -e
    if ((rc != 0)); then
        status=FAILED
        FAILED=yes
        echo "--- the last lines of $log:" >&2
        tail -n 40 "$log" >&2
    fi
    local tenths=$(((${EPOCHREALTIME/./} - start) / 100000))
    REPORT+=("$(printf '%-7s %5d.%ds  %s' "$status" $((tenths / 10)) $((tenths % 10)) "$name")")
}

# skip_step NAME WHY: a report line for a step that does not run.
skip_step() {
    step "$1: skipped ($2)"
    REPORT+=("$(printf '%-7s %8s  %s (%s)' skipped - "$1" "$2")")
}

report() {
    echo
    echo "ferry demo: $(printf '%s\n' "${REPORT[@]}" | grep -c '^ok') steps ok in ${SECONDS}s"
    printf '  %s\n' "${REPORT[@]}"
    if [[ -n "$FAILED" ]]; then
        echo "ferry demo: FAILED (logs: $WORK/logs; run with --keep to keep them)"
        return 1
    fi
    echo "ferry demo: all steps ok"
}

# --- 1. Tools and binaries ----------------------------------------------------------------------
setup_tools() {
    # shellcheck source=scripts/lib/setup.sh disable=SC1091
    source scripts/lib/setup.sh
    setup_packages docker-registry=docker-registry skopeo=skopeo containerd=containerd \
        ctr=containerd curl=curl python3=python3 openssl=openssl
    setup_apt_tools
    setup_helm_sdk
}

build_binaries() {
    local targets=() built=""
    [[ -n "${FERRY_BIN:-}" ]] || targets+=(--bin ferry)
    [[ -n "${FERRY_DEMO_CORPUS_BIN:-}" ]] || targets+=(--example bench_corpus)
    if ((${#targets[@]})); then
        # The paths of what cargo built, from its JSON messages.
        built="$(cargo build "${targets[@]}" --message-format=json-render-diagnostics |
            sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')"
        echo "$built"
    fi
    echo "${FERRY_BIN:-$(grep '/ferry$' <<<"$built")}" >"$WORK/run/ferry.bin"
    echo "${FERRY_DEMO_CORPUS_BIN:-$(grep '/bench_corpus$' <<<"$built")}" >"$WORK/run/corpus.bin"
    "$(cat "$WORK/run/ferry.bin")" --version
    [[ -x "$(cat "$WORK/run/corpus.bin")" ]]
}

# ferry ARGS...: the ferry under test, with the demo's key password.
ferry() {
    FERRY_KEY_PASSWORD=demo-password NO_COLOR=1 "$(cat "$WORK/run/ferry.bin")" "$@"
}

helm_sdk() {
    "${FERRY_HELM_PYTHON:-$REPO/tests/tools/venv/bin/python}" "$REPO/tests/tools/helm_sdk.py" "$@"
}

# --- 2. Upstream --------------------------------------------------------------------------------
UP="$WORK/upstream"
WWW="$UP/www"

upstream_images() {
    "$(cat "$WORK/run/corpus.bin")" --scale demo --out "$UP/corpus"
    start_registry upstream-registry "$UP/registry"
    local src
    src="127.0.0.1:$(port_of upstream-registry)"
    mkdir -p "$UP/skopeo-tmp"
    echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$UP/policy.json"
    # Two pushes at a time; --preserve-digests keeps the generated indexes byte for byte.
    # shellcheck disable=SC2016 # the inner shell expands them
    cut -f1-3 "$UP/corpus/images.tsv" | xargs -P 2 -L 1 sh -c '
        skopeo --policy "$0" --tmpdir "$1" copy -q --all --preserve-digests \
            --dest-tls-verify=false --dest-no-creds "oci:$2/layout:$4" "docker://$3/$5:$6"' \
        "$UP/policy.json" "$UP/skopeo-tmp" "$UP/corpus" "$src"
    wc -l <"$UP/corpus/images.tsv"
}

upstream_charts() {
    local chart name version
    for chart in web:1.4.2 worker:0.9.1; do
        IFS=: read -r name version <<<"$chart"
        helm_sdk create "$name" "$UP/chart-src"
        helm_sdk package "$UP/chart-src/$name" "$WWW/charts" "$version"
    done
    helm_sdk index "$WWW/charts"
    cat "$WWW/charts/index.yaml"
}

K3S_PATH="k3s-io/k3s/releases/download/v1.31.4+k3s1"

upstream_files() {
    local dir="$WWW/$K3S_PATH"
    mkdir -p "$dir" "$WWW/get.k3s.io"
    # A K3s-like binary (ELF magic, then noise) and airgap images, larger than one volume.
    { printf '\177ELF\002\001\001'; head -c 1500000 /dev/urandom; } >"$dir/k3s"
    head -c 700000 /dev/urandom >"$dir/k3s-airgap-images-amd64.tar.zst"
    (cd "$dir" && sha256sum k3s k3s-airgap-images-amd64.tar.zst >sha256sum-amd64.txt)
    printf '#!/bin/sh\n# the K3s install script (demo)\necho "installing k3s (demo)"\n' >"$WWW/get.k3s.io/install.sh"
    cat "$dir/sha256sum-amd64.txt"
}

# An apt repository like tests/apt.rs makes: packages built with dpkg-deb, Packages and Release
# written here, InRelease clearsigned with a throwaway key.
upstream_apt() {
    local gnupg="$UP/gnupg" build="$UP/debs" repo="$WWW/debian"
    mkdir -p "$gnupg" "$build" "$repo"
    chmod 700 "$gnupg"
    local gpg=(gpg --homedir "$gnupg" --batch --yes --pinentry-mode loopback --passphrase "")
    "${gpg[@]}" --quick-gen-key "demo archive <archive@ferry.invalid>" ed25519 sign 0
    "${gpg[@]}" --export -o "$UP/archive-keyring.gpg"
    local stanzas="" spec name version arch extra dir deb
    for spec in "node-tools|1.2|amd64|Depends: libdemo (>= 2), demo-data" \
        "libdemo|2.1|amd64|" "demo-data|3|all|" "unrelated|1|amd64|"; do
        IFS='|' read -r name version arch extra <<<"$spec"
        dir="$build/${name}_$version"
        mkdir -p "$dir/DEBIAN" "$dir/usr/share/doc/$name"
        {
            echo "Package: $name"
            echo "Version: $version"
            echo "Architecture: $arch"
            echo "Maintainer: ferry demo <demo@ferry.invalid>"
            echo "Priority: optional"
            echo "Section: misc"
            [[ -z "$extra" ]] || echo "$extra"
            echo "Description: ferry demo package $name"
            echo " Made by scripts/demo.sh."
        } >"$dir/DEBIAN/control"
        echo "$name $version" >"$dir/usr/share/doc/$name/README"
        deb="pool/main/${name}_${version}_$arch.deb"
        mkdir -p "$repo/pool/main"
        dpkg-deb --build --root-owner-group -Zgzip "$dir" "$repo/$deb" >/dev/null
        stanzas+="$(cat "$dir/DEBIAN/control")"$'\n'"Filename: $deb"$'\n'
        stanzas+="Size: $(stat -c %s "$repo/$deb")"$'\n'"SHA256: $(sha256sum "$repo/$deb" | cut -d' ' -f1)"$'\n\n'
    done
    local dists="$repo/dists/stable"
    mkdir -p "$dists/main/binary-amd64"
    printf '%s' "$stanzas" >"$dists/main/binary-amd64/Packages"
    gzip -9nk "$dists/main/binary-amd64/Packages"
    {
        echo "Origin: ferry-demo"
        echo "Label: ferry-demo"
        echo "Suite: stable"
        echo "Codename: stable"
        echo "Date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S UTC')"
        echo "Architectures: amd64"
        echo "Components: main"
        echo "SHA256:"
        local f
        for f in Packages Packages.gz; do
            echo " $(sha256sum "$dists/main/binary-amd64/$f" | cut -d' ' -f1) $(stat -c %s "$dists/main/binary-amd64/$f") main/binary-amd64/$f"
        done
    } >"$dists/Release"
    "${gpg[@]}" --digest-algo SHA512 --clearsign -o "$dists/InRelease" "$dists/Release"
    cat "$dists/InRelease"
}

upstream_web() {
    start_web upstream-web "$WWW"
}

# --- 3. The connected side ----------------------------------------------------------------------
REL="$WORK/release"

key_generate() {
    ferry key generate --output-dir "$REL/keys"
}

write_manifest() {
    local src web
    src="127.0.0.1:$(port_of upstream-registry)"
    web="http://127.0.0.1:$(port_of upstream-web)"
    mkdir -p "$REL"
    {
        echo "apiVersion: ferry.dev/v1"
        echo "kind: Release"
        echo "metadata: {name: demo-platform, version: \"2026.11.0\"}"
        echo "spec:"
        echo "  images:"
        local name repository tag platforms
        while IFS=$'\t' read -r name repository tag platforms _; do
            echo "    - ref: $src/$repository:$tag"
            echo "      platforms: [${platforms//,/, }]"
        done <"$UP/corpus/images.tsv"
        echo "  charts:"
        echo "    - {name: web, repo: $web/charts, version: \"~1.4.0\"}"
        echo "    - {name: worker, repo: $web/charts, version: 0.9.1}"
        echo "  files:"
        echo "    - url: $web/${K3S_PATH/+/%2B}/k3s"
        echo "      checksums: $web/${K3S_PATH/+/%2B}/sha256sum-amd64.txt"
        echo "      mode: \"0755\""
        echo "    - url: $web/${K3S_PATH/+/%2B}/k3s-airgap-images-amd64.tar.zst"
        echo "      checksums: $web/${K3S_PATH/+/%2B}/sha256sum-amd64.txt"
        echo "    - url: $web/get.k3s.io/install.sh"
        echo "      sha256: $(sha256sum "$WWW/get.k3s.io/install.sh" | cut -d' ' -f1)"
        echo "      mode: \"0755\""
        echo "  apt:"
        echo "    sources:"
        echo "      - url: $web/debian"
        echo "        suites: [stable]"
        echo "        components: [main]"
        echo "        architectures: [amd64]"
        echo "        keyring: $UP/archive-keyring.gpg"
        echo "    packages: [node-tools]"
    } >"$REL/platform.yaml"
    cat "$REL/platform.yaml"
}

lock() {
    # The charts are rendered to find their images: tests/tools/helm is Helm v4's engine
    # (helm-python-sdk, set up by step 1) behind the `helm` command line; a real `helm` works
    # the same.
    ferry lock "$REL/platform.yaml" --helm "$REPO/tests/tools/helm"
    grep -c 'digest' "$REL/platform.lock"
}

build() {
    ferry build "$REL/platform.yaml" -o "$REL/bundle" --key "$REL/keys/cosign.key" --locked
    ferry inspect "$REL/bundle"
}

verify_bundle() {
    ferry verify "$REL/bundle" --key "$REL/keys/cosign.pub"
}

pack() {
    mkdir -p "$WORK/usb"
    # The volumes, this ferry binary beside them, SHA256SUMS over both, signed with the
    # release key into SHA256SUMS.sig.
    ferry pack "$REL/bundle" -o "$WORK/usb/demo-platform-2026.11.0" --volume-size 2M \
        --key "$REL/keys/cosign.key"
    ls -l "$WORK/usb"
    [[ -x "$WORK/usb/ferry" && -s "$WORK/usb/SHA256SUMS.sig" ]]
    local volumes
    volumes="$(find "$WORK/usb" -name '*.tar' | wc -l)"
    ((volumes >= 3)) || die "expected several volumes, got $volumes"
}

air_gap() {
    stop_server upstream-registry
    stop_server upstream-web
    fails curl -fsS "http://127.0.0.1:$(port_of upstream-registry)/v2/"
    fails curl -fsS "http://127.0.0.1:$(port_of upstream-web)/"
    echo "upstream servers stopped: from here on, only the volumes and the public key"
}

# --- 4. On site ---------------------------------------------------------------------------------
SITE="$WORK/site"
USB="$WORK/usb"

# As README's "First day on site": the release's public key reaches the site on its own path,
# not on the sticks. With it, openssl checks SHA256SUMS.sig, sha256sum -c every volume and the
# ferry binary; from here on the demo runs the ferry from the stick, as staff do.
check_sticks() {
    mkdir -p "$SITE"
    cp "$REL/keys/cosign.pub" "$SITE/cosign.pub"
    (
        cd "$USB"
        openssl dgst -sha256 -verify "$SITE/cosign.pub" -signature <(base64 -d SHA256SUMS.sig) SHA256SUMS
        sha256sum -c SHA256SUMS
        ./ferry --version
    )
    echo "$USB/ferry" >"$WORK/run/ferry.bin"
}

verify_volumes() {
    ferry verify "$USB" --key "$SITE/cosign.pub"
}

site_apt_key() {
    mkdir -p "$SITE"
    ferry key generate --apt --output-dir "$SITE/keys"
}

# The site's registry (a docker-registry standing in for Harbor), its web server over the
# mirror directories, site.yaml, and the install step's script (in place of Ansible's run.sh).
site_targets() {
    start_registry site-registry "$SITE/registry-storage"
    mkdir -p "$SITE/mirror" "$SITE/ansible"
    start_web site-web "$SITE/mirror"
    local registry web
    registry="127.0.0.1:$(port_of site-registry)"
    web="http://127.0.0.1:$(port_of site-web)"
    cat >"$SITE/site.yaml" <<EOF
apiVersion: ferry.dev/v1
kind: Site
metadata: {name: demo}
spec:
  registry: {host: "$registry", insecure: true, systemDefaultRegistry: true}
  apt: {dir: mirror/apt, signingKey: keys/ferry-apt-secret.asc, suite: ferry, url: "$web/apt"}
  charts: {dir: mirror/charts, baseUrl: "$web/charts"}
  files: {dir: mirror/files, k3sAirgapDir: airgap}
  install: {command: ["./run.sh"], workdir: ansible}
  output: site-config
EOF
    cat >"$SITE/ansible/run.sh" <<'EOF'
#!/bin/sh
# Stands in for the k3s-ansible run: checks that what ferry rendered is there and says
# what the playbook would be given.
set -eu
for f in "$FERRY_REGISTRIES_YAML" "$FERRY_ANSIBLE_VARS" "$FERRY_APT_SOURCES" "$FERRY_HELM_REPOSITORIES"; do
    test -s "$f" || { echo "missing $f" >&2; exit 1; }
done
test -x "$FERRY_AIRGAP_DIR/k3s" || { echo "no k3s in $FERRY_AIRGAP_DIR" >&2; exit 1; }
echo "ansible-playbook playbooks/site.yml -e @$FERRY_ANSIBLE_VARS  (demo: not run)"
cat >install-ran.env <<VARS
FERRY_SITE_DIR=$FERRY_SITE_DIR
FERRY_REGISTRIES_YAML=$FERRY_REGISTRIES_YAML
FERRY_ANSIBLE_VARS=$FERRY_ANSIBLE_VARS
FERRY_APT_SOURCES=$FERRY_APT_SOURCES
FERRY_HELM_REPOSITORIES=$FERRY_HELM_REPOSITORIES
FERRY_AIRGAP_DIR=$FERRY_AIRGAP_DIR
VARS
EOF
    chmod +x "$SITE/ansible/run.sh"
    cat "$SITE/site.yaml"
}

install() {
    ferry install "$USB" --site "$SITE/site.yaml" --key "$SITE/cosign.pub"
    cat "$SITE/ansible/install-ran.env"
    ls -l "$SITE/site-config"
}

# What `ferry install` does, one target at a time, for a ferry without `install`.
import_per_target() {
    local registry web
    registry="127.0.0.1:$(port_of site-registry)"
    web="http://127.0.0.1:$(port_of site-web)"
    local bundle=("$USB" --key "$SITE/cosign.pub")
    ferry import registry "${bundle[@]}" --to "$registry"
    ferry import charts "${bundle[@]}" --to "$SITE/mirror/charts" --base-url "$web/charts"
    ferry import files "${bundle[@]}" --to "$SITE/mirror/files" --k3s-airgap-dir "$SITE/airgap"
    ferry import apt "${bundle[@]}" --to "$SITE/mirror/apt" --signing-key "$SITE/keys/ferry-apt-secret.asc" \
        --suite ferry --url "$web/apt"
    mkdir -p "$SITE/site-config"
    ferry registries-config --to "$registry" --scheme http "$USB" >"$SITE/site-config/registries.yaml"
    cp "$SITE/mirror/apt/ferry.sources" "$SITE/mirror/apt/ferry-apt.gpg" "$SITE/site-config/"
    printf 'apiVersion: ""\nrepositories:\n- name: demo\n  url: %s/charts\n' "$web" >"$SITE/site-config/helm-repositories.yaml"
}

serve() {
    local port
    for _ in 1 2 3 4 5; do
        port="$(pick_port)"
        # The binary itself in the background (not the `ferry` function, whose subshell's pid
        # would be the one recorded and stopped).
        FERRY_KEY_PASSWORD=demo-password NO_COLOR=1 "$(cat "$WORK/run/ferry.bin")" serve "$USB" --key "$SITE/cosign.pub" --listen "127.0.0.1:$port" \
            --apt-signing-key "$SITE/keys/ferry-apt-secret.asc" --apt-suite ferry \
            </dev/null >"$WORK/run/serve.log" 2>&1 &
        echo $! >"$WORK/run/serve.pid"
        echo "$port" >"$WORK/run/serve.port"
        if wait_until 60 curl -fsS "http://127.0.0.1:$port/v2/"; then
            head -n 3 "$WORK/run/serve.log"
            return 0
        fi
        stop_server serve
        grep -qi "address already in use" "$WORK/run/serve.log" || break
    done
    cat "$WORK/run/serve.log"
    return 1
}

# --- 5. Pulls as the site does ------------------------------------------------------------------
CTR_DIR="$WORK/containerd"

start_containerd() {
    mkdir -p "$CTR_DIR/tmp"
    cat >"$CTR_DIR/config.toml" <<EOF
version = 2
root = "$CTR_DIR/root"
state = "$CTR_DIR/state"
temp = "$CTR_DIR/tmp"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTR_DIR/containerd.sock"
[ttrpc]
  address = "$CTR_DIR/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTR_DIR/opt"
EOF
    "${SUDO[@]}" containerd --config "$CTR_DIR/config.toml" </dev/null >"$WORK/run/containerd.log" 2>&1 &
    echo $! >"$WORK/run/containerd.pid"
    wait_until 30 ctr version || {
        cat "$WORK/run/containerd.log"
        return 1
    }
}

# ctr on the demo's containerd, in the namespace CTR_NS (one per pull step, so that each
# step fetches everything itself). The binary is looked up at each call (`type -P` finds files
# only, never this function), not when the script starts: on a new machine containerd is not
# installed until the setup step, and a name looked up before that would resolve to this very
# function, which would then call itself until memory runs out.
CTR_NS=ferry-demo
ctr() {
    local bin
    bin="$(type -P ctr)" || {
        echo "demo.sh: ctr is not installed: install containerd (the setup step does, unless --no-setup)" >&2
        return 127
    }
    "${SUDO[@]}" "$bin" --address "$CTR_DIR/containerd.sock" --namespace "$CTR_NS" "$@"
}

# An image with two platforms and one with a shared base layer, as the upstream names them,
# each with its digest (what the release pinned): "REFERENCE DIGEST" lines.
demo_images() {
    local src
    src="127.0.0.1:$(port_of upstream-registry)"
    awk -F'\t' -v src="$src" '$2 == "cilium/cilium" || $2 == "grafana/grafana" {print src "/" $2 ":" $3, $5}' \
        "$UP/corpus/images.tsv"
}

# The digest containerd recorded for an image name.
ctr_digest() {
    ctr images ls | awk -v ref="$1" '$1 == ref {print $3}'
}

pull_site_registry() {
    local registry image digest upstream_host mapped
    registry="127.0.0.1:$(port_of site-registry)"
    upstream_host="127.0.0.1:$(port_of upstream-registry)"
    CTR_NS=site-registry
    while read -r image digest; do
        # Where ferry put it: HOST/<upstream host with _ for :>/<path>, as registries.yaml rewrites.
        mapped="$registry/${upstream_host/:/_}/${image#*/}"
        ctr images pull --plain-http --platform linux/amd64 "$mapped"
        echo "$mapped $(ctr_digest "$mapped") (released: $digest)"
        [[ "$(ctr_digest "$mapped")" == "$digest" ]]
    done < <(demo_images)
    grep -q "$upstream_host" "$SITE/site-config/registries.yaml"
}

pull_through_serve() {
    local serve image digest upstream_host hosts="$WORK/hosts.d"
    serve="127.0.0.1:$(port_of serve)"
    upstream_host="127.0.0.1:$(port_of upstream-registry)"
    # A mirror for the (stopped) upstream registry, as K3s configures one from registries.yaml.
    mkdir -p "$hosts/$upstream_host"
    printf 'server = "http://%s"\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' \
        "$upstream_host" "$serve" >"$hosts/$upstream_host/hosts.toml"
    CTR_NS=ferry-serve
    while read -r image digest; do
        ctr images pull --hosts-dir "$hosts" --all-platforms "$image"
        echo "$image $(ctr_digest "$image") (released: $digest)"
        [[ "$(ctr_digest "$image")" == "$digest" ]]
    done < <(demo_images)
    # containerd asked ferry serve, naming the upstream registry in `ns`.
    grep -F "HEAD /v2/cilium/cilium/manifests/v1.16.5?ns=${upstream_host/:/%3A} 200" "$WORK/run/serve.log"
}

helm_pull() {
    local repo="$1" dest="$2"
    mkdir -p "$dest"
    helm_sdk repo-index "$repo" >"$dest.index.json"
    helm_sdk pull-http web "$repo" 1.4.2 "$dest"
    helm_sdk pull-http worker "$repo" 0.9.1 "$dest"
    ls -l "$dest"
    [[ -s "$dest/web-1.4.2.tgz" && -s "$dest/worker-0.9.1.tgz" ]]
}

# The repository helm-repositories.yaml names (what `helm repo add` would be given).
helm_site() {
    local url
    url="$(sed -n 's/^ *url: *//p' "$SITE/site-config/helm-repositories.yaml" | head -n 1)"
    [[ -n "$url" ]]
    helm_pull "$url" "$WORK/pulled/charts-site"
}

helm_serve() {
    helm_pull "http://127.0.0.1:$(port_of serve)/charts" "$WORK/pulled/charts-serve"
}

# apt-get in its own state, cache and configuration (no change to this machine's apt), with
# the sources and keyring the site hands to its hosts.
apt_download() {
    local work="$1" sources="$2" keyring="$3"
    mkdir -p "$work/etc" "$work/empty.d" "$work/state/lists/partial" "$work/cache/archives/partial"
    : >"$work/status"
    sed "s|^Signed-By: .*|Signed-By: $keyring|" "$sources" >"$work/etc/ferry.sources"
    cat "$work/etc/ferry.sources"
    local options=(
        -o "Dir::Etc::SourceList=$work/etc/ferry.sources" -o "Dir::Etc::SourceParts=$work/empty.d"
        -o "Dir::Etc::Preferences=$work/empty.d/none" -o "Dir::Etc::PreferencesParts=$work/empty.d"
        -o "Dir::Etc::TrustedParts=$work/empty.d" -o "Dir::Etc::Trusted=$work/empty.d/none.gpg"
        -o "Dir::State=$work/state" -o "Dir::State::status=$work/status" -o "Dir::Cache=$work/cache"
        -o Debug::NoLocking=1 -o APT::Sandbox::User=root -o APT::Architecture=amd64
        -o Acquire::Languages=none
    )
    apt-get "${options[@]}" update 2>&1 | tee "$work/update.log"
    fails grep -q '^[WE]:' "$work/update.log"
    apt-get "${options[@]}" install -y --download-only --no-install-recommends node-tools
    ls "$work/cache/archives"
    local deb
    for deb in node-tools_1.2_amd64.deb libdemo_2.1_amd64.deb demo-data_3_all.deb; do
        [[ -s "$work/cache/archives/$deb" ]]
    done
}

apt_site() {
    apt_download "$WORK/pulled/apt-site" "$SITE/site-config/ferry.sources" "$SITE/site-config/ferry-apt.gpg"
}

apt_serve() {
    local url
    url="http://127.0.0.1:$(port_of serve)/apt"
    mkdir -p "$WORK/pulled"
    curl -fsS -o "$WORK/pulled/served.sources" "$url/ferry.sources"
    curl -fsS -o "$WORK/pulled/served-apt.gpg" "$url/ferry-apt.gpg"
    # The keyring the hosts trust is the site's own, not the one the server hands out.
    cmp "$WORK/pulled/served-apt.gpg" "$SITE/site-config/ferry-apt.gpg"
    apt_download "$WORK/pulled/apt-serve" "$WORK/pulled/served.sources" "$SITE/site-config/ferry-apt.gpg"
}

files() {
    local url
    url="http://127.0.0.1:$(port_of serve)/files"
    mkdir -p "$WORK/pulled/files"
    curl -fsS -o "$WORK/pulled/files/k3s" "$url/k3s"
    cmp "$WORK/pulled/files/k3s" "$WWW/$K3S_PATH/k3s"
    (cd "$SITE/mirror/files" && sha256sum -c SHA256SUMS)
    ls -l "$SITE/airgap"
    [[ -x "$SITE/airgap/k3s" && -s "$SITE/airgap/k3s-airgap-images-amd64.tar.zst" ]]
}

# --- The run ------------------------------------------------------------------------------------
echo "ferry demo in $WORK"
if [[ -n "$SETUP" ]]; then
    run_step "setup: tools (scripts/lib/setup.sh)" setup_tools
else
    skip_step "setup: tools" "--no-setup"
fi
run_step "build ferry and the image generator (cargo)" build_binaries

run_step "upstream: docker-registry with 40 images (multi-arch, shared layers)" upstream_images
run_step "upstream: Helm chart repository (helm-python-sdk)" upstream_charts
run_step "upstream: K3s-like release files and sha256sum file" upstream_files
run_step "upstream: apt repository signed with a throwaway key" upstream_apt
run_step "upstream: web server for charts, files and apt" upstream_web

run_step "ferry key generate" key_generate
run_step "release manifest (images, charts, files, apt)" write_manifest
run_step "ferry lock" lock
run_step "ferry build --locked" build
run_step "ferry verify (bundle)" verify_bundle
run_step "ferry pack --volume-size 2M" pack
run_step "air gap: upstream servers stopped" air_gap

run_step "on site: check the stick (SHA256SUMS.sig, sha256sum -c) and run its ferry" check_sticks
run_step "on site: ferry verify (the volumes)" verify_volumes
run_step "on site: ferry key generate --apt" site_apt_key
run_step "on site: site registry (Harbor stand-in), web server, site.yaml" site_targets
if [[ "${FERRY_DEMO_SKIP_INSTALL:-}" == 1 ]]; then
    skip_step "on site: ferry install --site" "FERRY_DEMO_SKIP_INSTALL=1"
    run_step "on site: ferry import registry|charts|files|apt (in place of install)" import_per_target
else
    run_step "on site: ferry install --site" install
fi
run_step "on site: ferry serve (the volumes)" serve

run_step "pull: start containerd" start_containerd
run_step "pull: ctr pull from the site registry" pull_site_registry
run_step "pull: ctr pull through ferry serve as a mirror" pull_through_serve
run_step "pull: helm pull from the site chart repository" helm_site
run_step "pull: helm pull from ferry serve /charts/" helm_serve
run_step "pull: apt-get --download-only from the site mirror" apt_site
run_step "pull: apt-get --download-only from ferry serve /apt/" apt_serve
run_step "pull: files from ferry serve /files/ and the airgap dir" files

report

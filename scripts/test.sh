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
# The installers are shared with scripts/demo.sh (scripts/lib/setup.sh): docker-registry,
# skopeo, containerd/ctr, openssl, htpasswd, node, npm, python3 and nginx (nginx-light,
# tests/modes.rs); Stoplight Prism for the Harbor API mock (tests/common/prism.rs);
# helm-python-sdk for tests/charts.rs, tests/chart_images.rs and tests/tools/helm; and for the
# apt tests (tests/apt.rs) dpkg-deb, gpg, gpgv, sqv, apt-get and curl.
# shellcheck source=scripts/lib/setup.sh
source scripts/lib/setup.sh
setup_test_tools
setup_prism
setup_helm_sdk
setup_apt_tools

step "tool versions"
cargo --version
docker-registry --version
skopeo --version
ctr --version
openssl version
nginx -v 2>&1
echo "node $(node --version), prism $("$FERRY_PRISM" --version)"
"$FERRY_HELM_PYTHON" tests/tools/helm_sdk.py version

# --- 2. Format, lint, test ---------------------------------------------------
step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test --all-targets"
cargo test --all-targets

# The fuzz targets' seeds and kept crashes run in cargo test (tests/fuzz_seeds.rs). Fuzzing
# itself needs cargo-fuzz (about 75 s to install) and a nightly build of ferry and all its
# dependencies with sanitizers (measured on 2 shared cores: 39 min from scratch, 5 min to
# rebuild ferry and the targets), more than this script's budget allows: opt in with
# FERRY_FUZZ_SECONDS (seconds per target; 14 targets).
if [[ -n "${FERRY_FUZZ_SECONDS:-}" ]]; then
    step "scripts/fuzz.sh $FERRY_FUZZ_SECONDS"
    scripts/fuzz.sh "$FERRY_FUZZ_SECONDS"
fi

step "all checks passed in ${SECONDS}s"

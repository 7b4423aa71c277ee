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

# Fuzzing, briefly, so that a regression in a parser is caught: every target for
# FERRY_FUZZ_SECONDS seconds (default 10; 0 skips it), one per core at a time, from the
# committed seeds.
# The quick build (no sanitizer, unoptimised, no debug info; see RELIABILITY.md for the
# figures) is what makes this fit: the AddressSanitizer build took 39 min from scratch here.
# The seeds and kept crashes also run on stable in cargo test (tests/fuzz_seeds.rs).
fuzz_seconds="${FERRY_FUZZ_SECONDS:-10}"
if [[ "$fuzz_seconds" != 0 ]]; then
    step "scripts/fuzz.sh --quick $fuzz_seconds"
    scripts/fuzz.sh --quick "$fuzz_seconds"
fi

step "all checks passed in ${SECONDS}s"

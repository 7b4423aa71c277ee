#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/*.rs, cargo-fuzz + libFuzzer) for SECONDS each
# (default 60), starting from the committed seeds (fuzz/seeds/<target>/) and the corpus earlier
# runs grew (fuzz/corpus/<target>/, not committed).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Installs what it needs when missing: the nightly toolchain (rustup) and cargo-fuzz (from
# crates.io, pinned). A crash stops that target, leaves the input in fuzz/artifacts/<target>/
# and makes the script fail at the end; replay it with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
# and keep it as a unit test beside the parser with the fix.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

CARGO_FUZZ_VERSION=0.13.1
seconds="${1:-60}"
shift || true

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cd fuzz/fuzz_targets && ls ./*.rs | sed 's|^\./||; s|\.rs$||')
fi

start=$SECONDS
cd fuzz
cargo +nightly fuzz build -O
echo "fuzz: built ${#targets[@]} targets in $((SECONDS - start)) s"

failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "seeds/$target"
    log="corpus/$target.log"
    t0=$SECONDS
    if cargo +nightly fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1; then
        runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' || echo "?")
        echo "fuzz: $target: $runs runs in $((SECONDS - t0)) s, corpus $(ls "corpus/$target" | wc -l) inputs"
    else
        echo "fuzz: $target: FAILED after $((SECONDS - t0)) s; input in fuzz/artifacts/$target/:"
        grep -E 'ERROR|panicked|SUMMARY' "$log" | head -5 || tail -20 "$log"
        failed+=("$target")
    fi
done
echo "fuzz: ${#targets[@]} targets, ${seconds} s each, done in $((SECONDS - start)) s"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: crashes in: ${failed[*]}" >&2
    exit 1
fi

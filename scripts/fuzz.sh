#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/*.rs, cargo-fuzz + libFuzzer) for SECONDS each
# (default 60), starting from the committed seeds (fuzz/seeds/<target>/) and the corpus earlier
# runs grew (fuzz/corpus/<target>/, not committed).
#
#   scripts/fuzz.sh [--quick] [SECONDS] [TARGET...]
#
# By default the targets are built optimised with AddressSanitizer (slow to build from scratch:
# ferry and every dependency on nightly with a sanitizer) and run one after the other: for long
# runs. --quick is what CI runs (scripts/test.sh): an unoptimised build without sanitizer and
# without debug info (coverage-guided all the same; Rust's own checks catch what ASan would in
# safe code), and as many targets at a time as there are cores.
#
# Installs what it needs when missing: the nightly toolchain (rustup) and cargo-fuzz (from
# crates.io, pinned). A crash stops that target, leaves the input in fuzz/artifacts/<target>/
# and makes the script fail at the end; replay it with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
# and keep it in fuzz/regressions/<target>/ (tests/fuzz_seeds.rs replays it in every
# cargo test) with the fix.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

CARGO_FUZZ_VERSION=0.13.1
quick=false
if [[ "${1:-}" == "--quick" ]]; then
    quick=true
    shift
fi
seconds="${1:-60}"
shift || true
if $quick; then
    # One build for all targets, reused by every run (same flags, same profile).
    build_flags=(--dev -s none)
    export CARGO_PROFILE_DEV_DEBUG=0
    parallel=$(nproc)
    # Slower per input than the optimised build: more time before an input counts as a hang.
    input_timeout=30
else
    build_flags=(-O)
    parallel=1
    input_timeout=10
fi

# libfuzzer-sys builds libFuzzer (C++).
if ! command -v c++ >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "fuzz: installing g++"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ >/dev/null
fi
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
cargo +nightly fuzz build "${build_flags[@]}"
echo "fuzz: built the targets in $((SECONDS - start)) s (${build_flags[*]})"

# Runs one target; its summary goes to corpus/<target>.result, its output to corpus/<target>.log.
run_target() {
    local target=$1 t0=$SECONDS
    mkdir -p "corpus/$target" "seeds/$target"
    local log="corpus/$target.log"
    if cargo +nightly fuzz run "${build_flags[@]}" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout="$input_timeout" -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1; then
        local runs
        runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' || echo "?")
        echo "fuzz: $target: $runs runs in $((SECONDS - t0)) s, corpus $(find "corpus/$target" -type f | wc -l) inputs" >"corpus/$target.result"
    else
        {
            echo "fuzz: $target: FAILED after $((SECONDS - t0)) s; input in fuzz/artifacts/$target/:"
            grep -E 'ERROR|panicked|SUMMARY' "$log" | head -5 || tail -20 "$log"
        } >"corpus/$target.result"
        return 1
    fi
}

failed=()
running=0
for target in "${targets[@]}"; do
    rm -f "corpus/$target.result"
    run_target "$target" &
    running=$((running + 1))
    if [[ $running -ge $parallel ]]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true
for target in "${targets[@]}"; do
    if [[ -f "corpus/$target.result" ]]; then
        cat "corpus/$target.result"
        grep -q FAILED "corpus/$target.result" && failed+=("$target")
    else
        echo "fuzz: $target: no result" && failed+=("$target")
    fi
done
echo "fuzz: ${#targets[@]} targets, ${seconds} s each, $parallel at a time, done in $((SECONDS - start)) s"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: crashes in: ${failed[*]}" >&2
    exit 1
fi

#!/usr/bin/env bash
# Kill trials at length (tests/kill_trials.rs): each command (build, pack, unpack, import
# registry, import --site, import apt, import files, import git, import trees) is killed with
# SIGKILL at a random moment until N runs were killed mid-run, and run again each time; the
# result must equal an uninterrupted run's.
#
#   scripts/soak.sh [--trials N] [--seed S] [--commands 'build,import apt']
#
# The seed is printed; rerun with --seed S (and --commands NAME) to replay the same delays.
# The log goes to target/soak/soak-<seed>.log; its summary is a Markdown table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

trials=50
seed=""
commands=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --trials) trials="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        --commands) commands="$2"; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ -n "$seed" ]] || seed=$(( $(date +%s%N) % 1000000000 ))

export FERRY_KILL_TRIALS="$trials" FERRY_KILL_SEED="$seed"
[[ -z "$commands" ]] || export FERRY_KILL_COMMANDS="$commands"
mkdir -p target/soak
log="target/soak/soak-$seed.log"
echo "soak: $trials killed runs per command, seed $seed, log $log"
start=$SECONDS
status=0
cargo test --test kill_trials -- --nocapture 2>&1 | tee "$log" || status=$?
echo "soak: exit $status after $((SECONDS - start)) s (scripts/soak.sh --trials $trials --seed $seed${commands:+ --commands '$commands'})"
exit "$status"

#!/usr/bin/env bash
# `ferry import --site` from packed volumes through one "USB port": wall time, bytes read and
# insertions, for one or more ferry binaries (e.g. before and after a change).
#
#   scripts/bench_site.sh [--runs N] [--work DIR] NAME=FERRY_BINARY [NAME=FERRY_BINARY ...]
#
# The inputs come from scripts/demo.sh --keep (a signed bundle with images, a chart, K3s files
# and apt packages, packed into volumes of 2 MiB, the site's apt key), made once with the
# first binary unless --work names a kept demo directory. Each run gets a fresh docker-registry
# and fresh mirror directories; scripts/bench_site.py answers ferry's "insert volume N"
# prompts by putting that volume alone in the port and counts them. Never part of
# scripts/test.sh.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS=3
WORK=""
BINS=()
while (($#)); do
    case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    *=*) BINS+=("$1"); shift ;;
    *) echo "usage: $0 [--runs N] [--work DIR] NAME=FERRY_BINARY..." >&2; exit 2 ;;
    esac
done
((${#BINS[@]})) || { echo "give at least one NAME=FERRY_BINARY" >&2; exit 2; }

if [[ -z "$WORK" ]]; then
    first="${BINS[0]#*=}"
    log="$(mktemp)"
    FERRY_BIN="$first" "$REPO/scripts/demo.sh" --keep 2>&1 | tee "$log" >&2
    WORK="$(sed -n 's/^kept \([^ ]*\) (logs in .*/\1/p' "$log" | tail -1)"
    rm -f "$log"
    [[ -d "$WORK/usb" ]] || { echo "cannot find the demo's work directory" >&2; exit 1; }
fi
args=()
for b in "${BINS[@]}"; do args+=(--bin "$b"); done
exec python3 "$REPO/scripts/bench_site.py" --usb "$WORK/usb" --site "$WORK/site" --runs "$RUNS" "${args[@]}"

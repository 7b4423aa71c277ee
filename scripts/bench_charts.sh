#!/usr/bin/env bash
# Times `ferry lock` (every chart rendered with Helm) and `ferry check` on a release made of
# every chart of a local chart repository, and the `helm template` runs alone, with peak memory.
#
#   scripts/bench_charts.sh --repo DIR [--helm PATH] [--kube-version V] [--runs N]
#
#   --repo DIR          a chart repository directory (index.yaml and the .tgz files), e.g. the
#                       platform's charts packaged from their sources (manifests/README.md)
#   --helm PATH         the helm to render with (default: tests/tools/helm, Helm v4's engine
#                       through helm-python-sdk, installed here if missing)
#   --kube-version V    spec.kubernetes.version of the release (default 1.36.4)
#   --runs N            runs of each command; the median is reported (default 3)
#   --values DIR        NAME.yaml in DIR is the valuesFiles entry of chart NAME (default
#                       scripts/bench-chart-values: the platform's values for Loki and Cilium)
#
# The repository is served on loopback; the release takes the newest version of every chart
# in its index.yaml. Not part of scripts/test.sh.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
if ! command -v cargo >/dev/null && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
step() { printf '\n==> %s\n' "$*" >&2; }

CHARTS="" HELM="" KUBE="1.36.4" RUNS=3 VALUES="$REPO_ROOT/scripts/bench-chart-values"
while (($#)); do
    case "$1" in
    --repo) CHARTS="$2"; shift 2 ;;
    --helm) HELM="$2"; shift 2 ;;
    --kube-version) KUBE="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --values) VALUES="$(cd "$2" && pwd)"; shift 2 ;;
    *) echo "bench_charts.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ -n "$CHARTS" && -f "$CHARTS/index.yaml" ]] || {
    echo "bench_charts.sh: --repo DIR must be a chart repository directory with an index.yaml" >&2
    exit 2
}
CHARTS="$(cd "$CHARTS" && pwd)"

# shellcheck source=scripts/lib/setup.sh
source scripts/lib/setup.sh
setup_packages time=time python3=python3
if [[ -z "$HELM" ]]; then
    setup_helm_sdk
    HELM="$REPO_ROOT/tests/tools/helm"
fi
TIME_BIN="$(command -v time)"
[[ "$TIME_BIN" == /* ]] || TIME_BIN=/usr/bin/time

step "building ferry (release)"
cargo build --release --quiet
FERRY="$REPO_ROOT/target/release/ferry"

WORK="$(mktemp -d)"
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$CHARTS" >"$WORK/http.log" 2>&1 &
SERVER=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$PORT/index.yaml" >/dev/null 2>&1 && break; sleep 0.1; done

# The release: every chart archive of the repository (NAME-VERSION.tgz, as Helm names them).
python3 - "$CHARTS" "http://127.0.0.1:$PORT" "$KUBE" "$VALUES" >"$WORK/release.yaml" <<'EOF'
import os, re, sys
root, url, kube, values = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
print("apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {name: bench, version: '1'}\nspec:")
print(f"  kubernetes: {{version: '{kube}', apiVersions: [monitoring.coreos.com/v1]}}\n  charts:")
for file in sorted(os.listdir(root)):
    m = re.fullmatch(r"(.+)-(v?\d+\.\d+\.\d+[^/]*)\.tgz", file)
    if m:
        name, version = m.groups()
        extra = ""
        if os.path.exists(os.path.join(values, name + ".yaml")):
            extra = f", valuesFiles: ['{os.path.join(values, name + '.yaml')}']"
        print(f"    - {{name: {name}, repo: '{url}', version: '{version}', namespace: {name}{extra}}}")
EOF
COUNT="$(grep -c 'repo:' "$WORK/release.yaml")"
step "$COUNT charts from $CHARTS, Kubernetes $KUBE, helm $("$HELM" version --short)"

# median SECONDS_LIST
median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# measure NAME COMMAND...: RUNS runs; prints the median wall time and the peak memory.
measure() {
    local name="$1" times=() peak=0 out
    shift
    for _ in $(seq "$RUNS"); do
        out="$("$TIME_BIN" -f '%e %M' "$@" 2>&1 >/dev/null | tail -1)"
        times+=("${out%% *}")
        ((${out##* } > peak)) && peak="${out##* }"
    done
    printf '| %s | %s s | %s MiB |\n' "$name" "$(echo "${times[*]}" | median)" "$((peak / 1024))"
}

lock() { rm -f "$WORK/release.lock"; "$FERRY" lock "$WORK/release.yaml" --helm "$HELM" 2>/dev/null; }
check() { "$FERRY" check "$WORK/release.yaml" >/dev/null 2>&1 || true; }
helm_only() {
    local tgz
    for tgz in "$CHARTS"/*.tgz; do
        "$HELM" template bench "$tgz" --kube-version "v$KUBE" --include-crds --skip-tests \
            -a monitoring.coreos.com/v1 >/dev/null 2>&1 || true
    done
}
export -f lock check helm_only
export FERRY HELM WORK CHARTS KUBE

lock || { echo "bench_charts.sh: ferry lock failed:" >&2; "$FERRY" lock "$WORK/release.yaml" --helm "$HELM" >&2; exit 1; }
echo
echo "| command ($COUNT charts, median of $RUNS) | wall | peak memory |"
echo "| --- | --- | --- |"
measure "ferry lock (download, render, scan)" bash -c lock
measure "ferry check" bash -c check
measure "helm template of each chart, one after another" bash -c helm_only

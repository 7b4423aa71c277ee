#!/usr/bin/env bash
# Two concurrent builds of overlapping releases sharing a blob cache on S3 (`ferry build
# --cache s3://...`, a one-node Ceph RGW from scripts/lib/ceph.sh), against the same two builds
# without a cache: bytes fetched from upstream versus the sum of both builds' blob bytes, wall
# time, peak memory of each build; then a third build with the cache warm.
#
#   scripts/bench_s3_cache.sh [--scale small|full] [--work-dir DIR]
#
# The corpus is scripts/bench.sh's (examples/bench_corpus.rs), cached under the same work dir
# (default target/bench), served by a docker-registry on loopback. Release A holds the first
# two thirds of its images, release B the last two thirds (plus the base layers every image
# shares). Not part of scripts/test.sh. Prints a Markdown table for BENCHMARKS.md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v cargo >/dev/null && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
step() { printf '\n==> %s\n' "$*" >&2; }
die() {
    printf 'bench_s3_cache.sh: %s\n' "$*" >&2
    exit 1
}

SCALE=small WORK_DIR="$REPO/target/bench"
while (($#)); do
    case "$1" in
    --scale) SCALE="$2"; shift 2 ;;
    --work-dir) WORK_DIR="$2"; shift 2 ;;
    *) die "unknown argument $1" ;;
    esac
done

# shellcheck source=scripts/lib/servers.sh disable=SC1091
source "$REPO/scripts/lib/servers.sh"
# shellcheck source=scripts/lib/setup.sh disable=SC1091
source "$REPO/scripts/lib/setup.sh"
setup_packages docker-registry=docker-registry skopeo=skopeo /usr/bin/time=time curl=curl \
    python3=python3 ceph-mon=ceph-mon ceph-mgr=ceph-mgr ceph-osd=ceph-osd radosgw=radosgw \
    ceph-authtool=ceph-common monmaptool=ceph-common radosgw-admin=ceph-common

step "cargo build --release (ferry and the corpus generator)"
(cd "$REPO" && cargo build --release --bin ferry --example bench_corpus)
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
FERRY="$TARGET_DIR/release/ferry"
GENERATOR="$TARGET_DIR/release/examples/bench_corpus"
GENERATOR_VERSION="$("$GENERATOR" --version)"

mkdir -p "$WORK_DIR"
WORK_DIR="$(cd "$WORK_DIR" && pwd)"
RUN="$WORK_DIR/run-s3-cache"
rm -rf "$RUN"
mkdir -p "$RUN/servers" "$RUN/out" "$RUN/client/docker"
CEPH_DIR="$RUN/ceph"
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for f in "$RUN"/servers/*.pid "$CEPH_DIR"/run/*.pid; do
        [[ -f "$f" ]] && stop_pidfile "$f"
    done
    rm -rf "$RUN/out" "$CEPH_DIR"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export DOCKER_CONFIG="$RUN/client/docker" HOME="$RUN/client" FERRY_KEY_PASSWORD=bench
echo '{"auths":{}}' >"$DOCKER_CONFIG/config.json"
unset REGISTRY_AUTH_FILE

# A docker-registry NAME on STORAGE; its address in $RUN/servers/NAME.addr.
start_registry() {
    local name="$1" storage="$2" port
    port="$(pick_port)"
    cat >"$RUN/servers/$name.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: "$storage"}, maintenance: {uploadpurging: {enabled: false}}}
http: {addr: "127.0.0.1:$port", secret: ferry-bench}
EOF
    env -u REGISTRY_AUTH_FILE docker-registry serve "$RUN/servers/$name.yml" </dev/null \
        >"$RUN/servers/$name.log" 2>&1 &
    echo $! >"$RUN/servers/$name.pid"
    for _ in $(seq 600); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && {
            echo "127.0.0.1:$port" >"$RUN/servers/$name.addr"
            return
        }
        sleep 0.05
    done
    cat "$RUN/servers/$name.log" >&2
    die "docker-registry $name did not start"
}

CORPUS="$WORK_DIR/corpus/$SCALE-v$GENERATOR_VERSION"
if [[ ! -f "$CORPUS/.complete" ]]; then
    step "corpus: generating $SCALE into $CORPUS (shared with scripts/bench.sh)"
    rm -rf "$CORPUS" "$CORPUS.partial"
    mkdir -p "$CORPUS.partial"
    "$GENERATOR" --scale "$SCALE" --out "$CORPUS.partial" >/dev/null
    start_registry corpus-push "$CORPUS.partial/registry"
    addr="$(cat "$RUN/servers/corpus-push.addr")"
    echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$RUN/client/policy.json"
    while IFS=$'\t' read -r name repository tag _ _; do
        skopeo --policy "$RUN/client/policy.json" copy --all --preserve-digests \
            --dest-tls-verify=false --dest-no-creds -q \
            "oci:$CORPUS.partial/layout:$name" "docker://$addr/$repository:$tag"
    done <"$CORPUS.partial/images.tsv"
    stop_pidfile "$RUN/servers/corpus-push.pid"
    mv "$CORPUS.partial" "$CORPUS"
    touch "$CORPUS/.complete"
fi

step "starting the source registry and Ceph (mon, mgr, memstore OSD, RGW)"
start_registry source "$CORPUS/registry"
SRC="$(cat "$RUN/servers/source.addr")"
# A shared disk may run low: the monitor refuses to start under 5% free, which is not what
# this measures (the OSD keeps everything in memory).
CEPH_ARGS="--mon-data-avail-crit=1" CEPH_MEMSTORE_BYTES=$((6 << 30)) bash "$REPO/scripts/lib/ceph.sh" "$CEPH_DIR" >/dev/null
set -a
# shellcheck disable=SC1091
source "$CEPH_DIR/env"
set +a
export AWS_REGION=us-east-1
s3() { curl -fsS --aws-sigv4 aws:amz:us-east-1:s3 --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"; }
s3 -X PUT "$AWS_ENDPOINT_URL/bench" >/dev/null

# Release A: the first two thirds of the images; B: the last two thirds.
total="$(wc -l <"$CORPUS/images.tsv")"
third=$((total / 3))
manifest() { # NAME FIRST LAST (1-based lines of images.tsv)
    {
        echo "apiVersion: ferry.dev/v1"
        echo "kind: Release"
        echo "metadata: {name: $1, version: \"1\"}"
        echo "spec:"
        echo "  images:"
        sed -n "$2,$3p" "$CORPUS/images.tsv" | while IFS=$'\t' read -r _ repository tag platforms _; do
            echo "    - ref: $SRC/$repository:$tag"
            echo "      platforms: [${platforms//,/, }]"
        done
    } >"$RUN/$1.yaml"
}
manifest a 1 $((total - third))
manifest b $((third + 1)) "$total"
"$FERRY" -q key generate --output-dir "$RUN/keys" >/dev/null
# Locks first (untimed), so the timed builds fetch blobs only.
"$FERRY" -q lock "$RUN/a.yaml" >/dev/null
"$FERRY" -q lock "$RUN/b.yaml" >/dev/null

# build NAME MANIFEST [ARGS...]: in the background; time and peak RSS to $RUN/NAME.time.
build() {
    local name="$1" manifest="$2"
    shift 2
    /usr/bin/time -f '%e %M' -o "$RUN/$name.time" \
        "$FERRY" --output json build "$manifest" -o "$RUN/out/$name" --locked --key "$RUN/keys/cosign.key" "$@" \
        >"$RUN/$name.json" 2>"$RUN/$name.log" &
    BUILDS+=($!)
}
BUILDS=()
# Waits for the builds started (not for the servers, also children of this shell).
wait_builds() {
    local pid
    for pid in "${BUILDS[@]}"; do wait "$pid" || die "a build failed: see $RUN/*.log"; done
    BUILDS=()
}
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
v=d
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$RUN/$1.json" "$2"; }
wall() { # the wall time of a pair started together
    python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$1" "$2"
}
mib() { python3 -c 'import sys; print(f"{int(sys.argv[1]) / 1048576:.1f}")' "$1"; }
rss() { awk '{printf "%.0f", $2 / 1024}' "$RUN/$1.time"; }
secs() { awk '{print $1}' "$RUN/$1.time"; }

sync
step "two concurrent builds without a cache"
t0=$(date +%s.%N)
build nocache-a "$RUN/a.yaml"
build nocache-b "$RUN/b.yaml"
wait_builds
t1=$(date +%s.%N)
rm -rf "$RUN/out"/nocache-*

step "two concurrent builds sharing --cache s3://bench/cache (empty)"
t2=$(date +%s.%N)
build cache-a "$RUN/a.yaml" --cache s3://bench/cache
build cache-b "$RUN/b.yaml" --cache s3://bench/cache
wait_builds
t3=$(date +%s.%N)
for b in cache-a cache-b; do "$FERRY" -q verify "$RUN/out/$b" --key "$RUN/keys/cosign.pub" >/dev/null; done
rm -rf "$RUN/out"/cache-*

step "release A again, the cache warm"
build warm-a "$RUN/a.yaml" --cache s3://bench/cache
wait_builds

blobs_a=$(field nocache-a fetched_bytes)
blobs_b=$(field nocache-b fetched_bytes)
up_a=$(field cache-a cache.upstream_bytes)
up_b=$(field cache-b cache.upstream_bytes)
union=$((up_a + up_b))
cat <<EOF

Measured $(date -u '+%Y-%m-%d %H:%M UTC') with \`scripts/bench_s3_cache.sh --scale $SCALE\` ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)); release build, upstream a docker-registry and Ceph RGW on loopback.
Release A: $(field nocache-a blobs) blobs, $(mib "$blobs_a") MiB; release B: $(field nocache-b blobs) blobs, $(mib "$blobs_b") MiB; sum $(mib $((blobs_a + blobs_b))) MiB.

| run | wall | fetched from upstream | taken from the cache | waited for the other's lease | peak RSS A / B |
| --- | ---: | ---: | ---: | ---: | ---: |
| A and B at once, no cache | $(wall "$t0" "$t1") s (A $(secs nocache-a) s, B $(secs nocache-b) s) | $(mib $((blobs_a + blobs_b))) MiB | — | — | $(rss nocache-a) / $(rss nocache-b) MiB |
| A and B at once, \`--cache\` empty | $(wall "$t2" "$t3") s (A $(secs cache-a) s, B $(secs cache-b) s) | $(mib "$union") MiB (A $(mib "$up_a"), B $(mib "$up_b")) | $(mib $(($(field cache-a cache.cache_bytes) + $(field cache-b cache.cache_bytes)))) MiB | $(($(field cache-a cache.waited_blobs) + $(field cache-b cache.waited_blobs))) blobs, $(mib $(($(field cache-a cache.waited_bytes) + $(field cache-b cache.waited_bytes)))) MiB | $(rss cache-a) / $(rss cache-b) MiB |
| A again, \`--cache\` warm | $(secs warm-a) s | $(mib "$(field warm-a cache.upstream_bytes)") MiB | $(mib "$(field warm-a cache.cache_bytes)") MiB | — | $(rss warm-a) MiB |
EOF

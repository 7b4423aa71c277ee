#!/usr/bin/env bash
# ferry's performance benchmark: ferry against the tools people use without it, side by side,
# on the same data, in the same run. Writes BENCHMARKS.md and benchmarks.json.
#
#   scripts/bench.sh [--scale small|full] [--runs N] [--steps LIST] [--work-dir DIR] [--keep]
#
#   --scale small   about 400 MiB of images, largest layer ~110 MiB: 8-10 minutes (default)
#   --scale full    about 4 GiB, one 1 GiB layer: needs ~45 GiB of free disk in the work dir
#   --runs N        timed runs per command (after one warm-up run); the median counts (default 5)
#   --steps LIST    which steps to measure (default pull,verify,pack,push,serve; the others'
#                   inputs are still made, untimed)
#   --work-dir DIR  corpus cache and scratch space (default target/bench)
#   --keep          keep the scratch outputs (bundle, copies, registries) after the run
#
# What it does:
#   1. installs missing tools (apt-get): hyperfine, docker-registry, skopeo, containerd, time,
#      curl, python3 (the report);
#   2. builds ferry and the corpus generator (examples/bench_corpus.rs) in release mode;
#   3. generates the corpus (40 images, shared base layers, multi-arch indexes, gzip'd tar
#      layers of text and random data) as an OCI layout and pushes it with skopeo into a
#      docker-registry; both are cached under the work dir, keyed by scale and generator version;
#   4. times each step with hyperfine, the two sides' runs interleaved (a warm-up run first, so
#      both sides read from a hot page cache; --prepare resets the state before every run), and
#      records the peak resident memory of every run with /usr/bin/time:
#        pull    ferry build                       vs skopeo sync --src yaml --dest dir
#        verify  ferry verify --no-signature       vs sha256sum --check, openssl dgst (sequential)
#        pack    ferry pack (once it exists)       vs tar -cf
#        push    ferry import registry (twice)     vs skopeo sync --src dir --dest docker
#        serve   ctr pull from ferry serve         vs ctr pull from docker-registry
#                (and ctr content fetch, and curl of every blob: the server alone)
#   5. writes BENCHMARKS.md (the generated section for this scale; hand-written text such as the
#      "Analysis" section is kept) and benchmarks.json (this scale's numbers; other scales kept).
#
# Every server it starts (registries, containerd, ferry serve) is stopped on exit. It is never
# part of scripts/test.sh: it takes minutes, the test suite must stay fast.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$REPO/scripts/bench.sh"

# rustup's default location, in case the caller's PATH lacks it.
if ! command -v cargo >/dev/null && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

step() { printf '\n==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() {
    printf 'bench.sh: %s\n' "$*" >&2
    exit 1
}

# --- Servers ------------------------------------------------------------------------------------
# Each server is named; $RUN/servers/NAME.{pid,port,...} hold what is needed to stop it or to
# restart it empty. The internal commands below (__reset-*) are what hyperfine's --prepare runs,
# so the same bookkeeping works from there.

# shellcheck source=scripts/lib/servers.sh disable=SC1091
source "$REPO/scripts/lib/servers.sh"

# Stops the server NAME (SIGTERM, then SIGKILL after 10 s) if it runs.
stop_server() {
    stop_pidfile "$RUN/servers/$1.pid"
}

# Starts docker-registry NAME serving STORAGE on PORT (0: pick one); waits until /v2/ answers.
start_registry() {
    mkdir -p "$RUN/servers"
    echo "$3" >"$RUN/servers/$1.storage"
    run_registry "$RUN/servers" "$1" "$3" "$2"
}

# Restarts registry NAME on its port with empty storage.
reset_registry() {
    local name="$1" port storage
    port="$(cat "$RUN/servers/$name.port")"
    storage="$(cat "$RUN/servers/$name.storage")"
    stop_server "$name"
    rm -rf "$storage"
    start_registry "$name" "$port" "$storage"
}

# Starts a private containerd (own root, state, sockets; CRI off) with an empty content store.
start_containerd() {
    local dir="$RUN/servers/containerd"
    rm -rf "$dir"
    mkdir -p "$dir/tmp"
    cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
temp = "$dir/tmp"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCKETS/containerd.sock"
[ttrpc]
  address = "$SOCKETS/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
EOF
    containerd --config "$dir/config.toml" </dev/null >"$RUN/servers/containerd.log" 2>&1 &
    echo $! >"$RUN/servers/containerd.pid"
    for _ in $(seq 600); do
        if [[ -S "$SOCKETS/containerd.sock" ]] && ctr --address "$SOCKETS/containerd.sock" version >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$(cat "$RUN/servers/containerd.pid")" 2>/dev/null || break
        sleep 0.05
    done
    cat "$RUN/servers/containerd.log" >&2
    die "containerd did not start"
}

reset_containerd() {
    stop_server containerd
    start_containerd
}

stop_all_servers() {
    local pidfile
    for pidfile in "$RUN"/servers/*.pid; do
        [[ -e "$pidfile" ]] || continue
        stop_server "$(basename "$pidfile" .pid)"
    done
}

# Internal commands for hyperfine's --prepare (RUN and SOCKETS come from the environment).
case "${1:-}" in
__reset-registry)
    reset_registry "$2"
    exit 0
    ;;
__reset-containerd)
    reset_containerd
    exit 0
    ;;
esac

# --- Command line -------------------------------------------------------------------------------
SCALE=small
RUNS=5
WORK_DIR="$REPO/target/bench"
KEEP=""
STEPS=pull,verify,pack,push,serve
COMMAND_LINE="scripts/bench.sh $*"
while (($#)); do
    case "$1" in
    --scale) SCALE="${2:?--scale needs small or full}" && shift 2 ;;
    --runs) RUNS="${2:?--runs needs a number}" && shift 2 ;;
    --work-dir) WORK_DIR="${2:?--work-dir needs a directory}" && shift 2 ;;
    --steps) STEPS="${2:?--steps needs a list}" && shift 2 ;;
    --keep) KEEP=yes && shift ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
[[ "$SCALE" == small || "$SCALE" == full ]] || die "--scale is small or full, not $SCALE"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs is a positive number, not $RUNS"
[[ "$STEPS" =~ ^(pull|verify|pack|push|serve)(,(pull|verify|pack|push|serve))*$ ]] ||
    die "--steps is a comma-separated list of pull, verify, pack, push, serve; not $STEPS"
wanted() { [[ ",$STEPS," == *",$1,"* ]]; }
mkdir -p "$WORK_DIR"
WORK_DIR="$(cd "$WORK_DIR" && pwd)"
STARTED=$SECONDS

# --- 1. Tools -----------------------------------------------------------------------------------
# Installed when missing (scripts/lib/setup.sh, shared with test.sh and demo.sh); every tool is
# resolved only after this, where it is used.
# shellcheck source=scripts/lib/setup.sh disable=SC1091
source "$REPO/scripts/lib/setup.sh"
setup_packages hyperfine=hyperfine docker-registry=docker-registry skopeo=skopeo \
    containerd=containerd ctr=containerd /usr/bin/time=time openssl=openssl curl=curl \
    python3=python3 tar=tar sha256sum=coreutils

# --- 2. Build -----------------------------------------------------------------------------------
step "cargo build --release (ferry and the corpus generator)"
(cd "$REPO" && cargo build --release --bin ferry --example bench_corpus)
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
FERRY="$TARGET_DIR/release/ferry"
GENERATOR="$TARGET_DIR/release/examples/bench_corpus"
GENERATOR_VERSION="$("$GENERATOR" --version)"

# --- Scratch space and clean-up -----------------------------------------------------------------
export RUN="$WORK_DIR/run-$SCALE"
SOCKETS="$(mktemp -d /tmp/ferry-bench.XXXXXX)" # unix socket paths must stay short
export SOCKETS
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    [[ -n "${SERVE_PID:-}" ]] && kill -TERM "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
    stop_all_servers
    rm -rf "$SOCKETS"
    if [[ -z "$KEEP" && -d "$RUN" ]]; then
        # Keep the logs and raw results; drop the large outputs.
        rm -rf "$RUN/out" "$RUN/servers/containerd"
        rm -rf "$RUN"/storage
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$RUN"
mkdir -p "$RUN/servers" "$RUN/results" "$RUN/mem" "$RUN/out" "$RUN/storage"
# Other work on the machine skews the numbers: the report shows the load before and after.
cut -d' ' -f1-3 /proc/loadavg >"$RUN/results/loadavg.before.value"

# Client configuration isolated from the host: no credentials, no registries.conf mirrors,
# a policy accepting anything (the content is ours).
mkdir -p "$RUN/client/docker" "$RUN/client/tmp" "$RUN/client/registries.d"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$RUN/client/policy.json"
echo '{"auths":{}}' >"$RUN/client/auth.json"
echo '{"auths":{}}' >"$RUN/client/docker/config.json"
: >"$RUN/client/registries.conf"
export REGISTRY_AUTH_FILE="$RUN/client/auth.json"
export DOCKER_CONFIG="$RUN/client/docker"
export CONTAINERS_REGISTRIES_CONF="$RUN/client/registries.conf"
export XDG_RUNTIME_DIR="$RUN/client"
SKOPEO="skopeo --policy $RUN/client/policy.json --registries.d $RUN/client/registries.d --tmpdir $RUN/client/tmp --command-timeout 3600s"

# --- 3. Corpus (cached) -------------------------------------------------------------------------
CORPUS="$WORK_DIR/corpus/$SCALE-v$GENERATOR_VERSION"
if [[ -f "$CORPUS/.complete" ]]; then
    step "corpus: cached in $CORPUS"
else
    need_gib=$([[ $SCALE == full ]] && echo 45 || echo 6)
    free_gib=$(($(df -Pk "$WORK_DIR" | awk 'NR==2 {print $4}') / 1024 / 1024))
    ((free_gib >= need_gib)) || die "--scale $SCALE needs about $need_gib GiB free in $WORK_DIR, $free_gib GiB are"
    step "corpus: generating $SCALE (generator v$GENERATOR_VERSION) into $CORPUS"
    rm -rf "$CORPUS" "$CORPUS.partial"
    mkdir -p "$CORPUS.partial"
    /usr/bin/time -f '    generated in %e s, peak memory %M KiB' \
        "$GENERATOR" --scale "$SCALE" --out "$CORPUS.partial" >/dev/null
    # The source registry's storage is cached too: push once, with the digests preserved.
    step "corpus: pushing it into a docker-registry with skopeo copy --all --preserve-digests"
    start_registry corpus-push 0 "$CORPUS.partial/registry"
    port="$(cat "$RUN/servers/corpus-push.port")"
    while IFS=$'\t' read -r name repository tag _ _; do
        $SKOPEO copy --all --preserve-digests --retry-times 2 --dest-tls-verify=false --dest-no-creds \
            -q "oci:$CORPUS.partial/layout:$name" "docker://127.0.0.1:$port/$repository:$tag"
    done <"$CORPUS.partial/images.tsv"
    stop_server corpus-push
    mv "$CORPUS.partial" "$CORPUS"
    touch "$CORPUS/.complete"
fi
UNIQUE_BYTES="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["unique_bytes"])' "$CORPUS/corpus.json")"
note "$(tr -d '\n ' <"$CORPUS/corpus.json" | cut -c1-300)"

# --- The source registry and the inputs of both sides -------------------------------------------
step "starting the source registry"
# A copy of the cached storage would cost minutes at --scale full; the registry only reads it
# (pulls write nothing), so it serves the cache directly.
start_registry source 0 "$CORPUS/registry"
SRC="127.0.0.1:$(cat "$RUN/servers/source.port")"
note "source: http://$SRC"

# ferry's release manifest: every image with all its platforms (so indexes stay whole, as
# skopeo --all copies them).
{
    echo "apiVersion: ferry.dev/v1"
    echo "kind: Release"
    echo "metadata: {name: bench, version: \"$SCALE-v$GENERATOR_VERSION\"}"
    echo "spec:"
    echo "  images:"
    while IFS=$'\t' read -r _ repository tag platforms _; do
        echo "    - ref: $SRC/$repository:$tag"
        echo "      platforms: [${platforms//,/, }]"
    done <"$CORPUS/images.tsv"
} >"$RUN/manifest.yaml"

# skopeo sync's YAML source: the same images, by tag.
{
    echo "$SRC:"
    echo "  tls-verify: false"
    echo "  images:"
    while IFS=$'\t' read -r _ repository tag _ _; do
        echo "    $repository: [\"$tag\"]"
    done <"$CORPUS/images.tsv"
} >"$RUN/sync.yaml"

BUNDLE="$RUN/out/bundle"
SKOPEO_DIR="$RUN/out/skopeo-dir"

# Commands are measured in groups, interleaved: run 1 of every command of the group, then run 2
# of each, and so on, so that a change in the machine's load during a group (other work on a
# shared machine) weighs on both sides alike. `bench NAME PREPARE COMMAND` adds a command to the
# group, `measure` runs it: hyperfine times each run (--runs 1, plus a warm-up run in the first
# round; PREPARE resets the state before each run) and /usr/bin/time appends each run's peak
# resident memory (KiB) to $RUN/mem/NAME. Results: $RUN/results/NAME.runN.json. If a command
# fails, it runs once more with its output shown, and the benchmark stops.
GROUP=()
bench() {
    GROUP+=("$1"$'\x1f'"$2"$'\x1f'"$3")
    echo "$3" >"$RUN/results/$1.command"
    note "$1: $3"
}
measure() {
    local round entry name prepare command args
    for ((round = 1; round <= RUNS; round++)); do
        for entry in "${GROUP[@]}"; do
            IFS=$'\x1f' read -r name prepare command <<<"$entry"
            args=(--runs 1)
            ((round > 1)) || args+=(--warmup 1)
            [[ -z "$prepare" ]] || args+=(--prepare "$prepare")
            if ! hyperfine --style none "${args[@]}" --command-name "$name" \
                --export-json "$RUN/results/$name.run$round.json" \
                "/usr/bin/time -f %M -a -o $RUN/mem/$name $command" >"$RUN/results/$name.log" 2>&1; then
                cat "$RUN/results/$name.log" >&2
                note "running it once more, showing its output:"
                [[ -z "$prepare" ]] || bash -c "$prepare" || true
                bash -c "$command" >&2 || true
                die "benchmark $name failed"
            fi
        done
    done
    for entry in "${GROUP[@]}"; do
        python3 - "$RUN/results" "${entry%%$'\x1f'*}" <<'EOF' >&2
import glob, json, statistics, sys
results, name = sys.argv[1:]
times = [json.load(open(f))["results"][0]["times"][0] for f in sorted(glob.glob(f"{results}/{name}.run*.json"))]
print(f"      {name}: median {statistics.median(times):.3f} s of {len(times)} runs ({' '.join(f'{t:.3f}' for t in times)})")
EOF
    done
    GROUP=()
}

# Records a number for the report: record KEY VALUE.
record() { echo "$2" >"$RUN/results/$1.value"; }

# --- 4.1 pull -----------------------------------------------------------------------------------
# Its outputs are the other steps' inputs: without "pull" in --steps, both run once, untimed.
FERRY_PULL="$FERRY -q build $RUN/manifest.yaml -o $BUNDLE"
SKOPEO_PULL="$SKOPEO sync --all --preserve-digests --scoped --retry-times 2 --src yaml --dest dir $RUN/sync.yaml $SKOPEO_DIR"
if wanted pull; then
    step "pull: ferry build vs skopeo sync, $RUNS runs each"
    # Write-heavy steps sync before each run, so no run pays for the previous run's writeback.
    bench pull.ferry "rm -rf $BUNDLE $RUN/manifest.lock; sync" "$FERRY_PULL"
    bench pull.skopeo "rm -rf $SKOPEO_DIR; sync" "$SKOPEO_PULL"
    measure
else
    step "pull (untimed: the other steps' input)"
    $FERRY_PULL >/dev/null
    $SKOPEO_PULL >/dev/null
fi
record pull.ferry.bytes "$(du -sb "$BUNDLE" | cut -f1)"
record pull.skopeo.bytes "$(du -sb "$SKOPEO_DIR" | cut -f1)"
record unique_bytes "$UNIQUE_BYTES"
BUNDLE_BLOB_BYTES="$(du -sb "$BUNDLE/blobs/sha256" | cut -f1)"
record bundle_blob_bytes "$BUNDLE_BLOB_BYTES"
note "stored: ferry $(cat "$RUN/results/pull.ferry.bytes.value") bytes, skopeo $(cat "$RUN/results/pull.skopeo.bytes.value") bytes, unique $UNIQUE_BYTES bytes"

# --- 4.2 verify ---------------------------------------------------------------------------------
if wanted verify; then
    step "verify: ferry verify vs sha256sum and openssl dgst, $RUNS runs each"
    # The peers as small scripts: each hashes every blob file and compares it with its name.
    (cd "$BUNDLE/blobs/sha256" && for f in *; do echo "$f  $f"; done) >"$RUN/out/blobs.sha256sums"
    cat >"$RUN/out/verify-sha256sum.sh" <<EOF
set -eo pipefail
cd "$BUNDLE/blobs/sha256" && sha256sum --check --quiet "$RUN/out/blobs.sha256sums"
EOF
    # openssl prints "<hex> *<file>"; awk fails the run if any file hashes to another name.
    cat >"$RUN/out/verify-openssl.sh" <<EOF
set -eo pipefail
cd "$BUNDLE/blobs/sha256" && openssl dgst -sha256 -r -- * |
    awk '{ if (\$1 != substr(\$2, 2)) bad = 1 } END { exit bad }'
EOF
    bench verify.ferry "" "$FERRY -q verify $BUNDLE --no-signature"
    bench verify.sha256sum "" "bash $RUN/out/verify-sha256sum.sh"
    bench verify.openssl "" "bash $RUN/out/verify-openssl.sh"
    measure
fi

# --- 4.3 pack -----------------------------------------------------------------------------------
if wanted pack; then
    step "pack: ferry pack vs tar -cf, $RUNS runs each"
    mkdir -p "$RUN/out/pack"
    if "$FERRY" pack --help >/dev/null 2>&1; then
        bench pack.ferry "rm -rf $RUN/out/pack/ferry; sync" "$FERRY -q pack $BUNDLE -o $RUN/out/pack/ferry"
    else
        note "ferry pack is not implemented yet: measuring tar only"
        record pack.ferry.missing "not implemented yet (ferry pack --help fails)"
    fi
    bench pack.tar "rm -f $RUN/out/pack/bundle.tar; sync" "tar -cf $RUN/out/pack/bundle.tar -C $BUNDLE ."
    measure
    [[ ! -e "$RUN/out/pack/ferry" ]] || record pack.ferry.bytes "$(du -sb "$RUN/out/pack/ferry" | cut -f1)"
    rm -rf "$RUN/out/pack"
fi

# --- 4.4 push -----------------------------------------------------------------------------------
if wanted push; then
    step "push: ferry import registry vs skopeo sync into empty registries, $RUNS runs each"
    start_registry push-ferry 0 "$RUN/storage/push-ferry"
    start_registry push-skopeo 0 "$RUN/storage/push-skopeo"
    PUSH_FERRY="127.0.0.1:$(cat "$RUN/servers/push-ferry.port")"
    PUSH_SKOPEO="127.0.0.1:$(cat "$RUN/servers/push-skopeo.port")"
    bench push.ferry "bash $SELF __reset-registry push-ferry; sync" \
        "$FERRY -q import registry $BUNDLE --to $PUSH_FERRY --no-signature"
    # The registry now holds everything: the second import has nothing to upload.
    bench push-again.ferry "" "$FERRY -q import registry $BUNDLE --to $PUSH_FERRY --no-signature"
    # skopeo sync --scoped wrote SKOPEO_DIR/<source host>/<repository>:<tag>; from the host's
    # directory, dir->docker sync names each image by its path below it.
    bench push.skopeo "bash $SELF __reset-registry push-skopeo; sync" \
        "$SKOPEO sync --all --preserve-digests --retry-times 2 --src dir --dest docker --dest-tls-verify=false --dest-no-creds $SKOPEO_DIR/$SRC $PUSH_SKOPEO"
    measure
    stop_server push-ferry
    stop_server push-skopeo
    rm -rf "$RUN/storage"/push-*
fi

# --- 4.5 serve ----------------------------------------------------------------------------------
if wanted serve; then
    step "serve: pulls from ferry serve vs from docker-registry, $RUNS runs each"
    # Three views of the same content, each from the source registry and from ferry serve:
    #   serve        ctr images pull --all-platforms of every image, one after another (fetch and
    #                unpack, as a node does; needs root for containerd)
    #   serve-fetch  ctr content fetch --all-platforms (the fetch alone)
    #   serve-http   curl GETs every blob once over one connection (the server alone)
    SERVE_ADDR=""
    if "$FERRY" serve --help >/dev/null 2>&1; then
        # ferry serve prints its address (http://127.0.0.1:PORT) once it listens; -q turns its
        # request log off, as the registries here run with their access log off.
        "$FERRY" -q serve "$BUNDLE" --listen 127.0.0.1:0 </dev/null >"$RUN/servers/serve.log" 2>&1 &
        SERVE_PID=$!
        for _ in $(seq 1200); do
            SERVE_ADDR="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$RUN/servers/serve.log" | head -n1 | sed 's|http://||')" || true
            [[ -z "$SERVE_ADDR" ]] || break
            kill -0 "$SERVE_PID" 2>/dev/null || break
            sleep 0.05
        done
        if [[ -z "$SERVE_ADDR" ]] && grep -q "not implemented" "$RUN/servers/serve.log"; then
            note "ferry serve is not implemented in this build: measuring docker-registry only"
            record serve.missing "not available yet (ferry serve: not implemented yet)"
        elif [[ -z "$SERVE_ADDR" ]]; then
            cat "$RUN/servers/serve.log" >&2
            die "ferry serve did not print its address (log: $RUN/servers/serve.log)"
        fi
    else
        note "ferry serve is not available yet in this build: measuring docker-registry only"
        record serve.missing "not available yet (ferry serve --help fails)"
    fi
    # ferry serve names repositories as in the site registry: the source host mapped into the path
    # (127.0.0.1:PORT -> 127.0.0.1_PORT/), then the repository. Fall back to the short name if
    # that is all it answers.
    SERVE_PREFIX="${SRC/:/_}/"
    if [[ -n "$SERVE_ADDR" ]]; then
        IFS=$'\t' read -r _ first_repo first_tag _ _ <"$CORPUS/images.tsv"
        accept="application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
        if ! curl -fsS -o /dev/null -H "Accept: $accept" \
            "http://$SERVE_ADDR/v2/$SERVE_PREFIX$first_repo/manifests/$first_tag" 2>/dev/null; then
            SERVE_PREFIX=""
        fi
        note "ferry serve: http://$SERVE_ADDR/v2/$SERVE_PREFIX..."
    fi

    # Every distinct blob (configs and layers) with a repository that holds it, from the corpus.
    python3 - "$CORPUS" >"$RUN/out/blobs.list" <<'EOF'
import json, sys
corpus = sys.argv[1]
blobs = f"{corpus}/layout/blobs/sha256/"
repo_of = {}
for line in open(f"{corpus}/images.tsv"):
    name, repository, *_ = line.rstrip("\n").split("\t")
    repo_of[name] = repository
seen = set()
def walk(digest, repository):
    doc = json.load(open(blobs + digest.split(":")[1]))
    for child in doc.get("manifests", []):
        walk(child["digest"], repository)
    for blob in ([doc["config"]] + doc["layers"]) if "config" in doc else []:
        if blob["digest"] not in seen:
            seen.add(blob["digest"])
            print(repository, blob["digest"])
for entry in json.load(open(f"{corpus}/layout/index.json"))["manifests"]:
    walk(entry["digest"], repo_of[entry["annotations"]["org.opencontainers.image.ref.name"]])
EOF

    # scripts SIDE HOST PREFIX: writes $RUN/out/{pull,fetch}-SIDE.sh (one ctr call per image, one
    # after another, as a node fetches a release) and $RUN/out/http-SIDE.curl (a curl config).
    scripts() {
        local side="$1" host="$2" prefix="$3" ctr="ctr --address $SOCKETS/containerd.sock -n bench"
        {
            echo "set -e"
            while IFS=$'\t' read -r _ repository tag _ _; do
                echo "$ctr images pull --plain-http --all-platforms $host/$prefix$repository:$tag >/dev/null"
            done <"$CORPUS/images.tsv"
        } >"$RUN/out/pull-$side.sh"
        sed 's/ images pull / content fetch /' "$RUN/out/pull-$side.sh" >"$RUN/out/fetch-$side.sh"
        awk -v base="http://$host/v2/$prefix" \
            '{ printf "url = \"%s%s/blobs/%s\"\noutput = \"/dev/null\"\n", base, $1, $2 }' \
            "$RUN/out/blobs.list" >"$RUN/out/http-$side.curl"
    }
    scripts registry "$SRC" ""
    [[ -z "$SERVE_ADDR" ]] || scripts ferry "$SERVE_ADDR" "$SERVE_PREFIX"

    if ((EUID != 0)); then
        note "containerd needs root: the ctr rows are not measured"
        record serve.missing "not measured: containerd needs root"
    else
        start_containerd
        for mode in pull fetch; do
            name="serve"
            [[ "$mode" == pull ]] || name="serve-$mode"
            bench "$name.registry" "bash $SELF __reset-containerd" "bash $RUN/out/$mode-registry.sh"
            [[ -z "$SERVE_ADDR" ]] ||
                bench "$name.ferry" "bash $SELF __reset-containerd" "bash $RUN/out/$mode-ferry.sh"
            measure
        done
        stop_server containerd
    fi
    bench serve-http.registry "" "curl -fsS -K $RUN/out/http-registry.curl"
    [[ -z "$SERVE_ADDR" ]] || bench serve-http.ferry "" "curl -fsS -K $RUN/out/http-ferry.curl"
    measure

    # The servers' own peak memory (the runs above measured the clients).
    awk '/VmHWM/ {print $2}' "/proc/$(cat "$RUN/servers/source.pid")/status" >"$RUN/mem/serve.registry.server"
    if [[ -n "$SERVE_ADDR" ]]; then
        awk '/VmHWM/ {print $2}' "/proc/$SERVE_PID/status" >"$RUN/mem/serve.ferry.server"
    fi
    if [[ -n "${SERVE_PID:-}" ]]; then
        kill -TERM "$SERVE_PID" 2>/dev/null || true
        wait "$SERVE_PID" 2>/dev/null || true
        SERVE_PID=""
    fi
fi

# --- 5. Report ----------------------------------------------------------------------------------
step "writing BENCHMARKS.md and benchmarks.json"
record duration_seconds "$((SECONDS - STARTED))"
python3 "$REPO/scripts/bench_report.py" \
    --run "$RUN" --corpus "$CORPUS" --scale "$SCALE" --runs "$RUNS" \
    --command "$COMMAND_LINE" --ferry "$FERRY" --repo "$REPO" \
    --markdown "$REPO/BENCHMARKS.md" --json "$REPO/benchmarks.json"
step "done in $((SECONDS - STARTED)) s"

#!/usr/bin/env bash
# Bundles on S3 (issue 19): `ferry build` of one large image to a directory and to a Ceph RGW
# bucket, then `ferry pack --volume-size fat32` from each, with wall time and peak memory.
#
#   scripts/bench_s3.sh [--size-mib N] [--runs N] [--dir DIR]
#
#   --size-mib N   size of the image's one layer (random bytes, uncompressed tar; default 1024)
#   --runs N       runs of each step (default 3); every run starts from an empty bundle
#   --dir DIR      where to work (default: a temporary directory; it needs about 4x the
#                  layer's size free: the registry, the bundle, the volumes)
#
# Starts a docker-registry holding the image and a one-node Ceph (scripts/lib/ceph.sh, memory
# store sized for the run) on 127.0.0.1; both are stopped on exit. Not part of
# scripts/test.sh. Prints a Markdown table for BENCHMARKS.md.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
if ! command -v cargo >/dev/null && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
step() { printf '\n==> %s\n' "$*" >&2; }
die() {
    printf 'bench_s3.sh: %s\n' "$*" >&2
    exit 1
}

SIZE_MIB=1024 RUNS=3 DIR=""
while (($#)); do
    case "$1" in
    --size-mib) SIZE_MIB="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --dir) DIR="$2"; shift 2 ;;
    *) die "unknown argument $1" ;;
    esac
done

# shellcheck source=scripts/lib/setup.sh
source scripts/lib/setup.sh
setup_packages time=time python3=python3 curl=curl skopeo=skopeo \
    docker-registry=docker-registry ceph-mon=ceph-mon ceph-mgr=ceph-mgr ceph-osd=ceph-osd \
    radosgw=radosgw ceph-authtool=ceph-common radosgw-admin=ceph-common
TIME_BIN="$(command -v time)"
[[ "$TIME_BIN" == /* ]] || TIME_BIN=/usr/bin/time
# shellcheck source=scripts/lib/servers.sh
source scripts/lib/servers.sh

# FERRY_BENCH_BIN: a ferry binary to use instead of building the release one (trial runs).
if [[ -n "${FERRY_BENCH_BIN:-}" ]]; then
    FERRY="$FERRY_BENCH_BIN"
else
    step "building ferry (release)"
    cargo build --release --quiet
    FERRY="$REPO_ROOT/target/release/ferry"
fi

if [[ -n "$DIR" ]]; then
    mkdir -p "$DIR"
    WORK="$(mktemp -d "$DIR/bench-s3.XXXXXX")"
else
    WORK="$(mktemp -d)"
fi
cleanup() {
    [[ -f "$WORK/registry.pid" ]] && stop_pidfile "$WORK/registry.pid"
    for f in "$WORK"/ceph/run/*.pid; do [[ -f "$f" ]] && stop_pidfile "$f"; done
    rm -rf "$WORK"
}
trap cleanup EXIT
export HOME="$WORK/home" FERRY_KEY_PASSWORD=bench
mkdir -p "$HOME"

step "starting docker-registry and Ceph (RGW)"
REG_PORT="$(pick_port)"
mkdir -p "$WORK/registry"
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: "$WORK/registry"}}
http: {addr: "127.0.0.1:$REG_PORT", secret: bench}
EOF
env -u REGISTRY_AUTH_FILE docker-registry serve "$WORK/registry.yml" </dev/null >"$WORK/registry.log" 2>&1 &
echo $! >"$WORK/registry.pid"
# The memory store holds one bundle per run (a fresh prefix each) plus headroom.
CEPH_MEMSTORE_BYTES=$(((SIZE_MIB * (RUNS + 1) + 1024) << 20)) bash scripts/lib/ceph.sh "$WORK/ceph" >/dev/null
# shellcheck disable=SC1091
set -a && source "$WORK/ceph/env" && set +a
for _ in $(seq 200); do curl -fsS -o /dev/null "http://127.0.0.1:$REG_PORT/v2/" && break; sleep 0.05; done
s3() { # s3 METHOD PATH: a signed request to the RGW
    curl -fsS --aws-sigv4 aws:amz:us-east-1:s3 --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X "$1" "$AWS_ENDPOINT_URL/$2" >/dev/null
}
s3 PUT bench

step "making a ${SIZE_MIB} MiB image (one layer of random bytes) and pushing it"
python3 - "$WORK/oci" "$SIZE_MIB" <<'EOF'
import hashlib, json, os, sys, tarfile, io
root, size = sys.argv[1], int(sys.argv[2]) << 20
blobs = os.path.join(root, "blobs", "sha256"); os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
# The layer: a tar holding one file of random bytes, streamed to disk and hashed on the way.
tmp = os.path.join(root, "layer.tar")
with open(tmp, "wb") as out:
    info = tarfile.TarInfo("data.bin"); info.size = size
    out.write(info.tobuf(format=tarfile.USTAR_FORMAT))
    left = size
    while left:
        n = min(left, 8 << 20); out.write(os.urandom(n)); left -= n
    pad = (512 - size % 512) % 512
    out.write(b"\0" * (pad + 1024))
h = hashlib.sha256()
with open(tmp, "rb") as f:
    for chunk in iter(lambda: f.read(8 << 20), b""): h.update(chunk)
layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar",
         "digest": "sha256:" + h.hexdigest(), "size": os.path.getsize(tmp)}
os.rename(tmp, os.path.join(blobs, h.hexdigest()))
config = put(json.dumps({"architecture": "amd64", "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
config["mediaType"] = "application/vnd.oci.image.config.v1+json"
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": config, "layers": [layer]}).encode()
m = put(manifest); m["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
m["annotations"] = {"org.opencontainers.image.ref.name": "1"}
json.dump({"schemaVersion": 2, "manifests": [m]}, open(os.path.join(root, "index.json"), "w"))
open(os.path.join(root, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
EOF
skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/oci:1" "docker://127.0.0.1:$REG_PORT/bench/big:1"
rm -rf "$WORK/oci"
cat >"$WORK/m.yaml" <<EOF
apiVersion: ferry.dev/v1
kind: Release
metadata: {name: bench-s3, version: "1"}
spec:
  images:
    - 127.0.0.1:$REG_PORT/bench/big:1
EOF
"$FERRY" key generate --output-dir "$WORK/keys" >/dev/null
"$FERRY" lock "$WORK/m.yaml" --insecure-registry "127.0.0.1:$REG_PORT" >/dev/null 2>&1 ||
    "$FERRY" lock "$WORK/m.yaml" >/dev/null

# measure NAME COMMAND...: wall seconds and peak RSS (KiB), appended to $WORK/NAME.times.
measure() {
    local name="$1"
    shift
    sync
    echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
    "$TIME_BIN" -f '%e %M' -o "$WORK/$name.one" "$@" >/dev/null 2>"$WORK/$name.err" ||
        { cat "$WORK/$name.err" >&2; die "$name failed"; }
    cat "$WORK/$name.one" >>"$WORK/$name.times"
}

build_args=(build "$WORK/m.yaml" --locked --key "$WORK/keys/cosign.key")
for run in $(seq "$RUNS"); do
    step "run $run of $RUNS"
    rm -rf "$WORK/bundle" "$WORK/usb-disk" "$WORK/usb-s3"
    # A fresh prefix per run: nothing to skip.
    measure build-disk "$FERRY" "${build_args[@]}" -o "$WORK/bundle"
    measure build-s3 "$FERRY" "${build_args[@]}" -o "s3://bench/run$run"
    mkdir -p "$WORK/usb-disk" "$WORK/usb-s3"
    measure pack-disk "$FERRY" pack "$WORK/bundle" -o "$WORK/usb-disk/r" --volume-size fat32
    measure pack-s3 "$FERRY" pack "s3://bench/run$run" -o "$WORK/usb-s3/r" --volume-size fat32
    du -sb "$WORK/usb-disk" "$WORK/usb-s3" | sed 's/^/    volumes: /' >&2
done

printf '\n| step (%s MiB layer, %s runs) | seconds (each run) | peak RSS (max) |\n| --- | ---: | ---: |\n' \
    "$SIZE_MIB" "$RUNS"
for name in build-disk build-s3 pack-disk pack-s3; do
    secs="$(awk '{printf "%s%.1f", (NR>1?", ":""), $1}' "$WORK/$name.times")"
    rss="$(awk 'BEGIN{m=0} {if ($2>m) m=$2} END{printf "%d MiB", m/1024}' "$WORK/$name.times")"
    # shellcheck disable=SC2016
    case "$name" in
    build-disk) label='`ferry build -o DIR`' ;;
    build-s3) label='`ferry build -o s3://bench/runN`' ;;
    pack-disk) label='`ferry pack DIR --volume-size fat32`' ;;
    pack-s3) label='`ferry pack s3://bench/runN --volume-size fat32`' ;;
    esac
    printf '| %s | %s | %s |\n' "$label" "$secs" "$rss"
done

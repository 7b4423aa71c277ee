#!/usr/bin/env bash
# Peak memory of a site import's registry upload against the size of the blob: one image whose
# layer is SIZE MiB (random bytes), built into a signed bundle and imported with
# `ferry import --site` into a fresh docker-registry; prints the peak RSS (GNU time's maximum
# resident set size) per size. A flat column means the upload holds a few chunks, not the blob.
#
#   scripts/bench_upload_memory.sh [--bin FERRY_BINARY] [SIZE_MIB ...]   (default: 40 640)
#
# Needs docker-registry, skopeo, python3 and /usr/bin/time (scripts/lib/setup.sh installs the
# first three). Never part of scripts/test.sh.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FERRY="$REPO/target/debug/ferry"
SIZES=()
while (($#)); do
    case "$1" in
    --bin) FERRY="$2"; shift 2 ;;
    *) SIZES+=("$1"); shift ;;
    esac
done
((${#SIZES[@]})) || SIZES=(40 640)
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A docker-registry on a free port, storage under $WORK/$1; prints its address.
start_registry() {
    local dir="$WORK/$1" port
    port="$(free_port)"
    mkdir -p "$dir"
    cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
http:
  addr: 127.0.0.1:$port
YAML
    docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
        sleep 0.1
    done
    echo "127.0.0.1:$port"
}

export HOME="$WORK/home" FERRY_KEY_PASSWORD=bench NO_COLOR=1
"$FERRY" key generate --output-dir "$WORK/keys" >/dev/null

printf '| layer | peak RSS |\n| ---: | ---: |\n'
for size in "${SIZES[@]}"; do
    src="$(start_registry "src-$size")"
    site="$(start_registry "site-$size")"
    layout="$WORK/layout-$size"
    # An OCI layout with one image: a SIZE MiB layer of random bytes.
    python3 - "$layout" "$size" <<'PY'
import hashlib, json, os, sys
root, size = sys.argv[1], int(sys.argv[2])
blobs = os.path.join(root, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return d
h, tmp = hashlib.sha256(), os.path.join(blobs, "tmp")
with open(tmp, "wb") as f:
    for _ in range(size):
        chunk = os.urandom(1 << 20)
        h.update(chunk)
        f.write(chunk)
layer = h.hexdigest()
os.rename(tmp, os.path.join(blobs, layer))
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer]}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + put(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + layer, "size": size << 20}]}).encode()
index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + put(manifest), "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "1"}}]}
json.dump(index, open(os.path.join(root, "index.json"), "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(root, "oci-layout"), "w"))
PY
    skopeo copy -q --dest-tls-verify=false "oci:$layout:1" "docker://$src/app/big:1"
    cat >"$WORK/release-$size.yaml" <<YAML
apiVersion: ferry.dev/v1
kind: Release
metadata: {name: big, version: "$size"}
spec:
  images:
    - $src/app/big:1
YAML
    "$FERRY" build "$WORK/release-$size.yaml" -o "$WORK/bundle-$size" --key "$WORK/keys/cosign.key" >/dev/null 2>&1
    mkdir -p "$WORK/site-$size-dir"
    cat >"$WORK/site-$size-dir/site.yaml" <<YAML
apiVersion: ferry.dev/v1
kind: Site
metadata: {name: bench}
spec:
  registry:
    host: $site/platform
YAML
    /usr/bin/time -f '%M' -o "$WORK/rss-$size" "$FERRY" import "$WORK/bundle-$size" \
        --site "$WORK/site-$size-dir/site.yaml" --key "$WORK/keys/cosign.pub" >/dev/null 2>"$WORK/import-$size.log" \
        || { cat "$WORK/import-$size.log" >&2; exit 1; }
    printf '| %s MiB | %s MiB |\n' "$size" "$(( $(tail -1 "$WORK/rss-$size") / 1024 ))"
    rm -rf "$layout" "$WORK/bundle-$size" "$WORK/src-$size" "$WORK/site-$size"
done

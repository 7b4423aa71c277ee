#!/usr/bin/env bash
# Carries a model store with one large file through lock, build, pack and `import trees`, and
# compares each step with what the disk does alone (cp, sha256sum), with peak memory.
#
#   scripts/bench_trees.sh [--size-mib N] [--dir DIR]
#
#   --size-mib N   size of the large file (default 2048: 2 GiB)
#   --dir DIR      where to work (default: a temporary directory; it needs about 5x the
#                  file's size free: the tree, the bundle, the volumes, the imported tree)
#
# Not part of scripts/test.sh. Prints a Markdown table for BENCHMARKS.md.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
if ! command -v cargo >/dev/null && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
step() { printf '\n==> %s\n' "$*" >&2; }

SIZE_MIB=2048 DIR=""
while (($#)); do
    case "$1" in
    --size-mib) SIZE_MIB="$2"; shift 2 ;;
    --dir) DIR="$2"; shift 2 ;;
    *) echo "bench_trees.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

# shellcheck source=scripts/lib/setup.sh
source scripts/lib/setup.sh
setup_packages time=time python3=python3
TIME_BIN="$(command -v time)"
[[ "$TIME_BIN" == /* ]] || TIME_BIN=/usr/bin/time

step "building ferry (release)"
cargo build --release --quiet
FERRY="$REPO_ROOT/target/release/ferry"

if [[ -n "$DIR" ]]; then
    mkdir -p "$DIR"
    WORK="$(mktemp -d "$DIR/bench-trees.XXXXXX")"
else
    WORK="$(mktemp -d)"
fi
trap 'rm -rf "$WORK"' EXIT
export HOME="$WORK/home" FERRY_KEY_PASSWORD=bench
mkdir -p "$HOME"

step "making the tree: a ${SIZE_MIB} MiB file (incompressible) and a few small ones"
mkdir -p "$WORK/models/llama/blobs" "$WORK/models/llama/snapshots/v1"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/models/llama/blobs/weights"
echo '{"layers": 32}' >"$WORK/models/llama/blobs/config"
ln -s ../../blobs/weights "$WORK/models/llama/snapshots/v1/model.safetensors"
cat >"$WORK/m.yaml" <<EOF
apiVersion: ferry.dev/v1
kind: Release
metadata: {name: bench, version: "1"}
spec:
  trees:
    - path: models/llama
EOF
"$FERRY" key generate --output-dir "$WORK/keys" >/dev/null
sync

# measure NAME COMMAND...: wall seconds and peak RSS (KiB) into $WORK/NAME.time.
measure() {
    local name="$1"
    shift
    sync
    echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
    "$TIME_BIN" -f '%e %M' -o "$WORK/$name.time" "$@" >/dev/null
}

step "disk alone: sha256sum, and cp of the file made durable (as ferry makes every file)"
measure sha256sum sha256sum "$WORK/models/llama/blobs/weights"
# shellcheck disable=SC2016
measure cp sh -c 'cp "$1" "$2" && sync "$2"' sh "$WORK/models/llama/blobs/weights" "$WORK/copy"
rm -f "$WORK/copy"

step "ferry lock (hash every file)"
measure lock "$FERRY" lock "$WORK/m.yaml"
step "ferry build (copy into the store, digest checked)"
measure build "$FERRY" build "$WORK/m.yaml" -o "$WORK/bundle" --locked --key "$WORK/keys/cosign.key"
step "ferry pack (volumes of 1 GiB)"
measure pack "$FERRY" pack "$WORK/bundle" -o "$WORK/usb/release" --volume-size 1G
rm -rf "$WORK/bundle"
step "ferry import trees (from the volumes, digest checked, atomic rename)"
measure import "$FERRY" import trees "$WORK/usb" --to "$WORK/site" --key "$WORK/keys/cosign.pub"
cmp "$WORK/models/llama/blobs/weights" "$WORK/site/llama/blobs/weights"

printf '\n| step (%s MiB file, cold cache) | seconds | MiB/s | peak RSS |\n| --- | ---: | ---: | ---: |\n' "$SIZE_MIB"
for name in sha256sum cp lock build pack import; do
    read -r secs rss <"$WORK/$name.time"
    python3 - "$name" "$secs" "$rss" "$SIZE_MIB" <<'EOF'
import sys
name, secs, rss, size = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
label = {"sha256sum": "`sha256sum` (floor of lock)", "cp": "`cp` + `sync` (floor of build, import)",
         "lock": "`ferry lock`", "build": "`ferry build`", "pack": "`ferry pack`",
         "import": "`ferry import trees`"}[name]
print(f"| {label} | {secs:.1f} | {size / max(secs, 0.01):.0f} | {rss / 1024:.0f} MiB |")
EOF
done

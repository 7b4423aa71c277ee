#!/usr/bin/env bash
# The OCI distribution-spec conformance suite against `ferry serve`, with Debian's
# docker-registry as the reference.
#
#   scripts/conformance.sh [--no-setup] DISTRIBUTION_SPEC_SOURCE
#
# DISTRIBUTION_SPEC_SOURCE (or FERRY_CONFORMANCE_SRC) is a checkout of
# opencontainers/distribution-spec (its conformance/ and specs-go/ directories are used), or a
# bare git directory of it (read at HEAD). The suite is not in Debian, so nothing here downloads
# it; its Go dependencies are: go-digest, image-spec and goccy/go-yaml from Debian's
# golang-*-dev packages, specs-go from the same checkout.
#
# What it does:
#  1. installs Go 1.23 (bookworm-backports) and those packages if missing (not with --no-setup);
#  2. builds the suite in a scratch GOPATH, without modules (GO111MODULE=off: Debian's packages
#     are GOPATH source trees, and there is no module proxy). The suite asks for Go 1.24; on an
#     older Go the scratch copy gets two stand-ins for Go 1.24 library calls (crypto/rand.Text,
#     strings.SplitSeq), nothing else changes;
#  3. pushes a small release into an upstream docker-registry with curl (a two-platform index, a
#     single-platform image, a cosign signature under its `sha256-<hex>.sig` tag, an SPDX SBOM
#     as an OCI 1.1 artifact with `subject` and the referrers tag schema index listing it);
#  4. ferry lock, build and `ferry serve` of that release;
#  5. runs the suite's read-only workflow (pull, tag list, referrers; OCI_API_PUSH=false and the
#     delete APIs off, content named through OCI_RO_DATA_*) against ferry serve and against the
#     upstream docker-registry, which holds the same content under its upstream name;
#  6. prints both results test by test and fails when a test passes on the reference and not on
#     ferry serve.
#
# With FERRY_CONFORMANCE_REGGIE (a checkout or bare git directory of bloodorangeio/reggie, the
# HTTP client the older suite uses; read at tag v0.6.1), it also runs the Ginkgo suite of
# distribution-spec v1.1.1 (that tag of the same checkout): OCI_TEST_PULL=1 and
# OCI_TEST_CONTENT_DISCOVERY=1 with OCI_TAG_NAME, OCI_MANIFEST_DIGEST, OCI_BLOB_DIGEST and
# OCI_TAG_LIST, push and management off. Its other dependencies come from Debian (ginkgo v2
# from bookworm-backports, gomega, resty, uuid, mapstructure, govalidator).
#
# Environment: FERRY_BIN (default: cargo build --bin ferry), GO (default: the newest Go found),
# FERRY_CONFORMANCE_WORK (keep the work directory there; default: a temporary one, removed).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() {
    echo "conformance: $*" >&2
    exit 1
}

SETUP=1
if [[ "${1:-}" == --no-setup ]]; then
    SETUP=""
    shift
fi
SRC="${1:-${FERRY_CONFORMANCE_SRC:-}}"
[[ -n "$SRC" ]] || die "usage: scripts/conformance.sh [--no-setup] DISTRIBUTION_SPEC_SOURCE (a checkout of opencontainers/distribution-spec)"

if [[ -n "${FERRY_CONFORMANCE_WORK:-}" ]]; then
    WORK="$FERRY_CONFORMANCE_WORK"
    rm -rf "$WORK"
    mkdir -p "$WORK"
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/ferry-conformance.XXXXXX")"
fi
mkdir -p "$WORK/run"
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local pidfile
    for pidfile in "$WORK"/run/*.pid; do
        [[ -e "$pidfile" ]] && stop_pidfile "$pidfile"
    done
    [[ -n "${FERRY_CONFORMANCE_WORK:-}" ]] || rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=scripts/lib/servers.sh
source "$REPO/scripts/lib/servers.sh"

# --- 1. Go and the suite's dependencies -----------------------------------------------------
DEB_DEPS=(golang-github-opencontainers-go-digest-dev golang-github-opencontainers-image-spec-dev
    golang-github-goccy-go-yaml-dev)
REGGIE="${FERRY_CONFORMANCE_REGGIE:-}"
if [[ -n "$REGGIE" ]]; then
    DEB_DEPS+=(golang-github-onsi-ginkgo-v2-dev golang-gomega-dev golang-github-go-resty-resty-dev
        golang-github-google-uuid-dev golang-github-mitchellh-mapstructure-dev
        golang-github-asaskevich-govalidator-dev)
fi
if [[ -n "$SETUP" ]]; then
    missing=()
    [[ -x /usr/lib/go-1.23/bin/go ]] || missing+=(golang-1.23-go)
    for p in "${DEB_DEPS[@]}"; do
        dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "installing ${missing[*]}"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -t bookworm-backports "${missing[@]}" >/dev/null
    fi
fi
if [[ -z "${GO:-}" ]]; then
    for candidate in /usr/lib/go-1.2[0-9]/bin/go; do
        [[ -x "$candidate" ]] && GO="$candidate"
    done
    GO="${GO:-$(command -v go || true)}"
fi
[[ -x "${GO:-}" ]] || die "no Go found: apt-get install -t bookworm-backports golang-1.23-go (or set GO)"

# --- 2. Build the suite ---------------------------------------------------------------------
GOPATH_DIR="$WORK/gopath"
SUITE="$GOPATH_DIR/src/github.com/opencontainers/distribution-spec"
mkdir -p "$SUITE"
if [[ -d "$SRC/conformance" ]]; then
    cp -r "$SRC/conformance" "$SRC/specs-go" "$SUITE/"
    COMMIT="$(git -C "$SRC" rev-parse HEAD 2>/dev/null || echo unknown)"
elif git --git-dir="$SRC" rev-parse --verify -q HEAD >/dev/null; then
    git --git-dir="$SRC" archive HEAD conformance specs-go | tar -x -C "$SUITE"
    COMMIT="$(git --git-dir="$SRC" rev-parse HEAD)"
else
    die "$SRC holds no conformance/ directory: give a checkout of opencontainers/distribution-spec"
fi
GO_VERSION="$("$GO" env GOVERSION)"
echo "suite: distribution-spec $COMMIT, built with $GO_VERSION"
(
    cd "$SUITE/conformance"
    if grep -q 'rand\.Text()' ./*.go && ! "$GO" doc crypto/rand.Text >/dev/null 2>&1; then
        echo "  $GO_VERSION lacks crypto/rand.Text and strings.SplitSeq (Go 1.24): stand-ins in the scratch copy"
        sed -i 's/rand\.Text()/randText()/g' ./*.go
        sed -i 's/for \([a-z]*\) := range strings\.SplitSeq(/for _, \1 := range strings.Split(/' ./*.go
        cat >compat_go123.go <<'EOF'
package main

import (
	"crypto/rand"
	"encoding/base32"
)

// randText stands in for crypto/rand.Text (Go 1.24): 26 random base32 characters.
func randText() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)[:26]
}
EOF
    fi
    # The suite's results.yaml writer dereferences a data test that read-only runs never
    # create (blobs-sha256) and panics before junit.xml is written: skip the missing entry.
    sed -i 's/results\.Data\[r\.State\.Data\[k\]\.name\] = v/if td := r.State.Data[k]; td != nil { results.Data[td.name] = v } else { results.Data[k] = v }/' run.go
    GO111MODULE=off GOPATH="$GOPATH_DIR:/usr/share/gocode" GOCACHE="$WORK/gocache" GOFLAGS='' \
        "$GO" build -o "$WORK/conformance" .
) || die "the suite did not build (see above)"

# The older Ginkgo suite (distribution-spec v1.1.1), when reggie's source is given.
LEGACY=""
if [[ -n "$REGGIE" ]]; then
    LEGACY_PATH="$WORK/gopath-legacy"
    LEGACY_SUITE="$LEGACY_PATH/src/github.com/opencontainers/distribution-spec"
    LEGACY_REGGIE="$LEGACY_PATH/src/github.com/bloodorangeio/reggie"
    mkdir -p "$LEGACY_SUITE" "$LEGACY_REGGIE"
    if [[ -d "$SRC/conformance" ]]; then
        git -C "$SRC" archive v1.1.1 conformance | tar -x -C "$LEGACY_SUITE"
    else
        git --git-dir="$SRC" archive v1.1.1 conformance | tar -x -C "$LEGACY_SUITE"
    fi || die "$SRC has no tag v1.1.1 (the Ginkgo suite)"
    if [[ -f "$REGGIE/go.mod" ]]; then
        git -C "$REGGIE" archive v0.6.1 2>/dev/null | tar -x -C "$LEGACY_REGGIE" ||
            cp -r "$REGGIE"/. "$LEGACY_REGGIE/"
    else
        git --git-dir="$REGGIE" archive v0.6.1 | tar -x -C "$LEGACY_REGGIE" ||
            die "$REGGIE is not a checkout of bloodorangeio/reggie"
    fi
    (
        cd "$LEGACY_SUITE/conformance"
        # GOPATH mode finds resty's /v2 import in Debian's tree through its go.mod (minimal
        # module compatibility).
        GO111MODULE=off GOPATH="$LEGACY_PATH:/usr/share/gocode" GOCACHE="$WORK/gocache" GOFLAGS='' \
            "$GO" test -c -o "$WORK/conformance-v1.1.1.test" .
    ) || die "the Ginkgo suite (v1.1.1) did not build (see above)"
    LEGACY="$WORK/conformance-v1.1.1.test"
    echo "suite: also distribution-spec v1.1.1 (Ginkgo), with reggie from $REGGIE"
fi

# --- 3. An upstream release, pushed with curl ------------------------------------------------
run_registry "$WORK/run" upstream "$WORK/run/upstream/data"
UP="127.0.0.1:$(cat "$WORK/run/upstream.port")"
NAME=app/web
C="$WORK/content"
mkdir -p "$C"

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
# push_blob FILE: a monolithic upload; prints the digest.
push_blob() {
    local digest location
    digest="sha256:$(sha "$1")"
    location="$(curl -fsS -o /dev/null -D - -X POST "http://$UP/v2/$NAME/blobs/uploads/" |
        sed -n 's/^[Ll]ocation: *\(.*\)\r$/\1/p')"
    [[ "$location" == http* ]] || location="http://$UP$location"
    curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
        --data-binary "@$1" "$location&digest=$digest"
    echo "$digest"
}
# push_manifest FILE MEDIA_TYPE REFERENCE: prints the digest.
push_manifest() {
    curl -fsS -o /dev/null -X PUT -H "Content-Type: $2" --data-binary "@$1" \
        "http://$UP/v2/$NAME/manifests/$3"
    echo "sha256:$(sha "$1")"
}
OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
OCI_INDEX=application/vnd.oci.image.index.v1+json

mkdir -p "$C/root"
echo "ferry conformance" >"$C/root/hello.txt"
tar -C "$C/root" --owner=0 --group=0 --mtime=@0 -cf "$C/layer.tar" hello.txt
gzip -n -c "$C/layer.tar" >"$C/layer.tar.gz"
LAYER="$(push_blob "$C/layer.tar.gz")"
BLOBS=("$LAYER")
declare -A PLATFORM_MANIFEST
for arch in amd64 arm64; do
    printf '{"architecture":"%s","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"config":{"Cmd":["/hello.txt"]}}' \
        "$arch" "$(sha "$C/layer.tar")" >"$C/config-$arch.json"
    config="$(push_blob "$C/config-$arch.json")"
    BLOBS+=("$config")
    printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}' \
        "$OCI_MANIFEST" "$config" "$(size "$C/config-$arch.json")" "$LAYER" "$(size "$C/layer.tar.gz")" \
        >"$C/manifest-$arch.json"
    PLATFORM_MANIFEST[$arch]="$(push_manifest "$C/manifest-$arch.json" "$OCI_MANIFEST" "$arch")"
done
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%d,"platform":{"architecture":"amd64","os":"linux"}},{"mediaType":"%s","digest":"%s","size":%d,"platform":{"architecture":"arm64","os":"linux"}}]}' \
    "$OCI_INDEX" "$OCI_MANIFEST" "${PLATFORM_MANIFEST[amd64]}" "$(size "$C/manifest-amd64.json")" \
    "$OCI_MANIFEST" "${PLATFORM_MANIFEST[arm64]}" "$(size "$C/manifest-arm64.json")" >"$C/index.json"
INDEX="$(push_manifest "$C/index.json" "$OCI_INDEX" v1)"

# A cosign signature of the index (simple signing payload, signed with openssl) at cosign's tag.
openssl ecparam -name prime256v1 -genkey -noout -out "$C/upstream.key" 2>/dev/null
printf '{"critical":{"identity":{"docker-reference":"%s/%s"},"image":{"docker-manifest-digest":"%s"},"type":"cosign container image signature"},"optional":null}' \
    "$UP" "$NAME" "$INDEX" >"$C/payload.json"
SIGNATURE="$(openssl dgst -sha256 -sign "$C/upstream.key" "$C/payload.json" | base64 -w0)"
PAYLOAD="$(push_blob "$C/payload.json")"
printf '{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["%s"]},"config":{}}' \
    "$PAYLOAD" >"$C/sig-config.json"
SIG_CONFIG="$(push_blob "$C/sig-config.json")"
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"%s","size":%d,"annotations":{"dev.cosignproject.cosign/signature":"%s"}}]}' \
    "$OCI_MANIFEST" "$SIG_CONFIG" "$(size "$C/sig-config.json")" "$PAYLOAD" "$(size "$C/payload.json")" \
    "$SIGNATURE" >"$C/sig.json"
SIG="$(push_manifest "$C/sig.json" "$OCI_MANIFEST" "$(tr : - <<<"$INDEX").sig")"
BLOBS+=("$PAYLOAD" "$SIG_CONFIG")

# An SPDX SBOM of the amd64 image as an OCI 1.1 artifact with `subject`, and the referrers tag
# schema's index listing it (docker-registry 2.8 has no referrers API).
printf '{}' >"$C/empty.json"
EMPTY="$(push_blob "$C/empty.json")"
printf '{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"web"}' >"$C/spdx.json"
SPDX="$(push_blob "$C/spdx.json")"
printf '{"schemaVersion":2,"mediaType":"%s","artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/spdx+json","digest":"%s","size":%d}],"subject":{"mediaType":"%s","digest":"%s","size":%d},"annotations":{"org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}' \
    "$OCI_MANIFEST" "$EMPTY" "$SPDX" "$(size "$C/spdx.json")" "$OCI_MANIFEST" "${PLATFORM_MANIFEST[amd64]}" \
    "$(size "$C/manifest-amd64.json")" >"$C/sbom.json"
SBOM="$(push_manifest "$C/sbom.json" "$OCI_MANIFEST" "sha256:$(sha "$C/sbom.json")")"
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%d,"artifactType":"application/spdx+json","annotations":{"org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}]}' \
    "$OCI_INDEX" "$OCI_MANIFEST" "$SBOM" "$(size "$C/sbom.json")" >"$C/referrers-amd64.json"
push_manifest "$C/referrers-amd64.json" "$OCI_INDEX" "$(tr : - <<<"${PLATFORM_MANIFEST[amd64]}")" >/dev/null
BLOBS+=("$EMPTY" "$SPDX")
echo "upstream: $UP/$NAME: index $INDEX, signature $SIG, SBOM $SBOM"

# --- 4. ferry lock, build, serve ---------------------------------------------------------------
if [[ -z "${FERRY_BIN:-}" ]]; then
    FERRY_BIN="$(cd "$REPO" && cargo build -q --bin ferry --message-format=json-render-diagnostics |
        sed -n 's/.*"executable":"\([^"]*\/ferry\)".*/\1/p' | tail -1)"
fi
[[ -x "$FERRY_BIN" ]] || die "no ferry binary (set FERRY_BIN)"
ferry() { FERRY_KEY_PASSWORD=conformance NO_COLOR=1 "$FERRY_BIN" "$@"; }
REL="$WORK/release"
mkdir -p "$REL"
ferry -q key generate --output-dir "$REL/keys" >/dev/null
cat >"$REL/release.yaml" <<EOF
apiVersion: ferry.dev/v1
kind: Release
metadata: {name: conformance, version: "1"}
spec:
  images:
    - {ref: $UP/$NAME:v1, platforms: [linux/amd64, linux/arm64], referrers: all}
    - {ref: $UP/$NAME:amd64, referrers: all}
EOF
ferry -q lock "$REL/release.yaml" >/dev/null
ferry -q build "$REL/release.yaml" -o "$REL/bundle" --key "$REL/keys/cosign.key" --locked >/dev/null
for _ in 1 2 3 4 5; do
    port="$(pick_port)"
    # The binary itself, not the ferry function: $! must be its process, which cleanup stops.
    NO_COLOR=1 "$FERRY_BIN" -q serve "$REL/bundle" --key "$REL/keys/cosign.pub" \
        --listen "127.0.0.1:$port" </dev/null >"$WORK/run/serve.log" 2>&1 &
    echo $! >"$WORK/run/serve.pid"
    wait_until 30 curl -fsS "http://127.0.0.1:$port/v2/" && break
    stop_pidfile "$WORK/run/serve.pid"
    port=""
done
[[ -n "$port" ]] || { cat "$WORK/run/serve.log" >&2; die "ferry serve did not start"; }
SERVE="127.0.0.1:$port"
SERVED_NAME="$(tr : _ <<<"$UP")/$NAME"
curl -fsS "http://$SERVE/v2/$SERVED_NAME/tags/list" >/dev/null ||
    die "ferry serve has no $SERVED_NAME"
echo "ferry serve: $SERVE/$SERVED_NAME"

# --- 5. The suite, read-only, against both -------------------------------------------------
run_suite() {
    local label="$1" registry="$2" name="$3" dir="$WORK/results/$1"
    mkdir -p "$dir"
    (
        cd "$dir"
        env OCI_REGISTRY="$registry" OCI_TLS=disabled OCI_REPO1="$name" OCI_REPO2="$name" \
            OCI_RESULTS_DIR="$dir" OCI_LOG=error OCI_VERSION=1.1 \
            OCI_API_PUSH=false OCI_API_BLOBS_DELETE=false OCI_API_MANIFESTS_DELETE=false \
            OCI_API_TAGS_DELETE=false OCI_API_BLOBS_MOUNT_ANONYMOUS=false \
            OCI_RO_DATA_TAGS="v1 amd64 $(tr : - <<<"$INDEX").sig" \
            OCI_RO_DATA_MANIFESTS="$INDEX ${PLATFORM_MANIFEST[amd64]} ${PLATFORM_MANIFEST[arm64]} $SIG $SBOM" \
            OCI_RO_DATA_BLOBS="${BLOBS[*]}" \
            OCI_RO_DATA_REFERRERS="${PLATFORM_MANIFEST[amd64]} $INDEX" \
            "$WORK/conformance" >"$dir/output.txt" 2>&1
    ) || true
    [[ -s "$dir/junit.xml" ]] || { cat "$dir/output.txt" >&2; die "the suite wrote no results for $label"; }
}
run_suite ferry "$SERVE" "$SERVED_NAME"
run_suite reference "$UP" "$NAME"

run_legacy() {
    local label="$1" registry="$2" name="$3" dir="$WORK/results/v1.1.1/$1"
    mkdir -p "$dir"
    (
        cd "$dir"
        env OCI_ROOT_URL="http://$registry" OCI_NAMESPACE="$name" OCI_CROSSMOUNT_NAMESPACE="$name" \
            OCI_TEST_PULL=1 OCI_TEST_PUSH=0 OCI_TEST_CONTENT_DISCOVERY=1 \
            OCI_TEST_CONTENT_MANAGEMENT=0 OCI_HIDE_SKIPPED_WORKFLOWS=0 OCI_REPORT_DIR="$dir" \
            OCI_TAG_NAME=amd64 OCI_MANIFEST_DIGEST="${PLATFORM_MANIFEST[amd64]}" \
            OCI_BLOB_DIGEST="$LAYER" OCI_TAG_LIST="amd64,$(tr : - <<<"$INDEX").sig,v1" \
            "$LEGACY" >"$dir/output.txt" 2>&1
    ) || true
    [[ -s "$dir/junit.xml" ]] || { cat "$dir/output.txt" >&2; die "the v1.1.1 suite wrote no results for $label"; }
}
if [[ -n "$LEGACY" ]]; then
    run_legacy ferry "$SERVE" "$SERVED_NAME"
    run_legacy reference "$UP" "$NAME"
fi

# --- 6. Results -----------------------------------------------------------------------------
status=0
# compare RESULTS TITLE: RESULTS/{ferry,reference}/junit.xml side by side; fails when a test
# passes on the reference and not on ferry serve.
compare() {
    python3 - "$1" "$2" <<'EOF' || status=1
import sys
import xml.etree.ElementTree as ET

results, title = sys.argv[1], sys.argv[2]
print(f"=== {title}")

def cases(label):
    """Test cases in order, keyed by name and occurrence (a suite may repeat a name)."""
    root = ET.parse(f"{results}/{label}/junit.xml").getroot()
    out, seen = {}, {}
    for case in root.iter("testcase"):
        name = case.get("name")
        seen[name] = seen.get(name, 0) + 1
        out[(name, seen[name])] = case.get("status")
    return out

ferry = cases("ferry")
ref = cases("reference")

def summary(name, cs):
    counts = {}
    for s in cs.values():
        counts[s] = counts.get(s, 0) + 1
    print(f"{name:10} " + ", ".join(f"{counts[k]} {k}" for k in sorted(counts)) + f" (of {len(cs)} test cases)")

summary("ferry", ferry)
summary("reference", ref)
worse = sorted(n for n, s in ref.items() if s == "passed" and ferry.get(n) != "passed")
better = sorted(n for n, s in ferry.items() if s == "passed" and ref.get(n) != "passed")
both_skipped = sorted({n[0] for n in set(ferry) | set(ref) if ferry.get(n) == ref.get(n) == "skipped"})
print(f"skipped by both: {len(both_skipped)} (disabled: push, delete and management on a read-only registry)")
if len(both_skipped) <= 12:
    for n in both_skipped:
        print(f"  {n}")
print("test cases where either did not pass (ferry, reference, name #occurrence):")
for n in sorted(set(ferry) | set(ref)):
    if ferry.get(n) == ref.get(n) == "skipped":
        continue
    if ferry.get(n) != "passed" or ref.get(n) != "passed":
        print(f"  {ferry.get(n, '-'):8} {ref.get(n, '-'):8} {n[0]} #{n[1]}")
print(f"passed by ferry serve and not by the reference: {len(better)}")
if worse:
    print(f"FAILED: {len(worse)} test cases pass on the reference and not on ferry serve:")
    for n in worse:
        print(f"  {n[0]} #{n[1]}")
    sys.exit(1)
print("ok: ferry serve passes every test the reference passes")
EOF
}
compare "$WORK/results" "distribution-spec $COMMIT"
for label in ferry reference; do
    echo "--- $label summary"
    sed -n '/^API conformance:/,$p' "$WORK/results/$label/output.txt"
done
if [[ -n "$LEGACY" ]]; then
    compare "$WORK/results/v1.1.1" "distribution-spec v1.1.1 (Ginkgo)"
fi
exit "$status"

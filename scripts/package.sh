#!/usr/bin/env bash
# Builds a self-contained release artifact: outpost-<version>-linux-<arch>.tar.gz with the built program and its
# production dependencies for that architecture (ONNX Runtime, sharp/libvips and lmdb binaries included, other
# platforms' binaries pruned). A board installs it offline: sudo scripts/install.sh --from FILE (the tarball
# carries install.sh too). Run from a checkout with npm ci done; the registry is needed here, not on the board.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/package.sh [--arch x64|arm64] [--out DIR] [--json]
  --arch A   the board's architecture (default: this machine's)
  --out DIR  where the tarball goes (default: ./release)
  --json     print {file, bytes, sha256, arch, version} on stdout instead of progress lines
USAGE
}

case "$(uname -m)" in x86_64) ARCH=x64 ;; aarch64 | arm64) ARCH=arm64 ;; *) ARCH=$(uname -m) ;; esac
OUT=release
JSON=0
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) ARCH=${2:?--arch needs x64 or arm64}; shift 2 ;;
    --arch=*) ARCH=${1#*=}; shift ;;
    --out) OUT=${2:?--out needs a folder}; shift 2 ;;
    --out=*) OUT=${1#*=}; shift ;;
    --json) JSON=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "package.sh: unknown option $1" >&2; usage >&2; exit 64 ;;
  esac
done
case "$ARCH" in x64 | arm64) ;; *) echo "package.sh: --arch $ARCH: onnxruntime-node ships linux x64 and arm64 only" >&2; exit 64 ;; esac

SRC=$(cd "$(dirname "$0")/.." && pwd)
step() { if [ "$JSON" = 0 ]; then echo "package.sh: $*" >&2; fi; }
for tool in node npm tar sha256sum; do command -v "$tool" >/dev/null || { echo "package.sh: $tool is needed" >&2; exit 69; }; done

VERSION=$(node -p "require('$SRC/package.json').version")
NAME=outpost-$VERSION-linux-$ARCH
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/$NAME

step "building dist/"
(cd "$SRC" && npm run build --silent)
step "staging $NAME"
mkdir -p "$ROOT"
cp -r "$SRC/dist" "$ROOT/dist"
find "$ROOT/dist" -name '*.map' -delete
for f in package.json package-lock.json README.md LICENSE config systemd scripts tools/lint/package.json; do
  [ -e "$SRC/$f" ] || continue
  mkdir -p "$ROOT/$(dirname "$f")"
  cp -r "$SRC/$f" "$ROOT/$f"
done
rm -f "$ROOT/scripts/package.sh"

step "production dependencies for linux-$ARCH (npm ci --omit=dev --cpu=$ARCH)"
(cd "$ROOT" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --os=linux --cpu="$ARCH" --loglevel=error >/dev/null)
rm -rf "$ROOT/tools"
# ORT ships every platform's binary (~250 MB): keep this one's
for d in "$ROOT"/node_modules/onnxruntime-node/bin/napi-v*/*; do case "$d" in */linux) ;; *) rm -rf "$d" ;; esac; done
for d in "$ROOT"/node_modules/onnxruntime-node/bin/napi-v*/linux/*; do case "$d" in */"$ARCH") ;; *) rm -rf "$d" ;; esac; done
[ -d "$ROOT/node_modules/onnxruntime-node/bin" ] && ls "$ROOT"/node_modules/onnxruntime-node/bin/napi-v*/linux/"$ARCH" >/dev/null ||
  { echo "package.sh: no onnxruntime-node binary for linux-$ARCH came with npm ci" >&2; exit 70; }
sha256sum "$ROOT/package-lock.json" | cut -d' ' -f1 >"$ROOT/node_modules/.outpost-lock-sha256"
echo "$ARCH" >"$ROOT/ARCH"

mkdir -p "$OUT"
FILE=$(cd "$OUT" && pwd)/$NAME.tar.gz
step "writing $FILE"
tar -C "$STAGE" --owner=0 --group=0 -czf "$FILE.tmp" "$NAME"
mv "$FILE.tmp" "$FILE"
BYTES=$(stat -c %s "$FILE")
SUM=$(sha256sum "$FILE" | cut -d' ' -f1)
if [ "$JSON" = 1 ]; then
  printf '{"file":"%s","bytes":%s,"sha256":"%s","arch":"%s","version":"%s"}\n' "$FILE" "$BYTES" "$SUM" "$ARCH" "$VERSION"
else
  echo "$FILE ($((BYTES / 1048576)) MiB, sha256 $SUM)"
fi

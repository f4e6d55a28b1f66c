#!/usr/bin/env bash
# Installs Outpost as a systemd service: the built program and its production dependencies under the prefix,
# the `outpost` user, /etc/outpost (a starter config, never overwritten), /var/lib/outpost with the node's
# keys (made here as the service user; never under DESTDIR), and the unit, enabled. Idempotent: a second run
# changes nothing. Run from a built checkout (npm ci && npm run build) as root. DESTDIR=DIR installs into DIR for packaging (no user, no systemctl
# but `systemctl --root`).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: sudo scripts/install.sh [--from FILE] [--prefix DIR] [--dry-run] [--no-enable]
  --from FILE    install a release artifact (npm run package: outpost-VERSION-linux-ARCH.tar.gz) offline:
                 no npm and no registry needed on the board
  --prefix DIR   where the program goes (default /opt/outpost)
  --dry-run      print what would be done, change nothing
  --no-enable    install the unit without enabling it
  DESTDIR=DIR    install into DIR (packaging): no user is created and nothing is started
EOF
}

PREFIX=/opt/outpost
FROM=
DRY_RUN=0
ENABLE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --from) FROM=${2:?--from needs a file}; shift 2 ;;
    --from=*) FROM=${1#*=}; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    --no-enable) ENABLE=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 64 ;;
  esac
done

SRC=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
ROOT=${DESTDIR%/}
CONF_DIR=/etc/outpost
STATE_DIR=/var/lib/outpost
UNIT_DIR=/etc/systemd/system
USER_NAME=outpost
CHANGED=0

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "$*"; }
run() { if [ "$DRY_RUN" = 1 ]; then echo "+ $*"; else "$@"; fi; }
changed() { CHANGED=$((CHANGED + 1)); say "  $*"; }
have_user() { [ -z "$DESTDIR" ] && getent passwd "$USER_NAME" >/dev/null 2>&1; }

# --- checks: everything is looked at before anything is changed -----------------------------------------
NODE=$(command -v node) || die "Node.js 20 or newer is needed (apt-get install nodejs, or https://nodejs.org)"
NODE=$(readlink -f "$NODE")
major=$("$NODE" -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "Node.js $("$NODE" --version) is too old: Outpost needs 20 or newer"
case "$(uname -m)" in
  x86_64) ARCH=x64 ;;
  aarch64|arm64) ARCH=arm64 ;;
  armv7l|armv6l) die "onnxruntime-node ships no 32-bit ARM build: install a 64-bit OS (Raspberry Pi OS 64-bit, Jetson L4T)" ;;
  *) die "unsupported architecture $(uname -m) (x86_64 and aarch64 are)" ;;
esac
need=(install cmp stat sha256sum sed find)
[ -n "$FROM" ] && need+=(tar)
[ -z "$DESTDIR" ] && need+=(getent useradd usermod runuser)
for tool in "${need[@]}"; do command -v "$tool" >/dev/null || die "$tool is needed and not installed (coreutils, passwd, util-linux, tar)"; done
if [ -z "$DESTDIR" ] && [ "$DRY_RUN" = 0 ] && [ "$(id -u)" -ne 0 ]; then die "run as root (sudo), or set DESTDIR"; fi
if [ -n "$FROM" ]; then
  [ -f "$FROM" ] || die "--from $FROM: no such file (build one with npm run package)"
  UNPACKED=$(mktemp -d)
  trap 'rm -rf "$UNPACKED"' EXIT
  tar -xzf "$FROM" -C "$UNPACKED" || die "--from $FROM: not a readable .tar.gz"
  SRC=$(find "$UNPACKED" -mindepth 1 -maxdepth 1 -type d | head -n1)
  [ -f "$SRC/ARCH" ] && [ -d "$SRC/node_modules" ] || die "--from $FROM: not an Outpost release (no ARCH or node_modules inside; build one with npm run package)"
  [ "$(cat "$SRC/ARCH")" = "$ARCH" ] || die "--from $FROM is for linux-$(cat "$SRC/ARCH"); this board is linux-$ARCH (npm run package -- --arch $ARCH)"
else
  command -v npm >/dev/null || die "npm is needed to install dependencies from a checkout; on a board without npm or internet use a release: scripts/install.sh --from outpost-VERSION-linux-$ARCH.tar.gz (npm run package)"
fi
[ -f "$SRC/dist/cli.js" ] || die "build first: cd $SRC && npm ci && npm run build"
say "Installing Outpost to ${ROOT}${PREFIX} (node $NODE, $ARCH)${FROM:+ from $FROM}${DESTDIR:+ under DESTDIR=$DESTDIR}"

# --- the program --------------------------------------------------------------------------------------
put() { # put SRC DEST MODE [quiet]: copy when the content or mode differs
  local src=$1 dest=$2 mode=$3
  if cmp -s "$src" "$dest" 2>/dev/null && [ "$(stat -c %a "$dest")" = "${mode#0}" ]; then return 1; fi
  run install -D -m "$mode" "$src" "$dest"
  if [ -z "${4:-}" ]; then changed "installed $dest"; fi
}

sync_tree() { # sync_tree SRC_DIR DEST_DIR: the files of SRC_DIR, and nothing else, under DEST_DIR
  local src=$1 dest=$2 f n=0
  while IFS= read -r -d '' f; do put "$src/$f" "$dest/$f" 0644 quiet && n=$((n + 1)); done < <(cd "$src" && find . -type f -printf '%P\0')
  if [ -d "$dest" ]; then
    while IFS= read -r -d '' f; do
      if [ ! -e "$src/$f" ]; then run rm -f "$dest/$f"; n=$((n + 1)); fi
    done < <(cd "$dest" && find . -type f -printf '%P\0')
  fi
  if [ "$n" -gt 0 ]; then changed "$dest: $n file(s) installed or removed"; fi
}

P=$ROOT$PREFIX
sync_tree "$SRC/dist" "$P/dist"
for f in package.json package-lock.json README.md config/outpost.yaml config/outpost.schema.json config/outpost.starter.yaml \
  systemd/outpost.service systemd/outpost-nvidia.conf scripts/uninstall.sh; do
  mode=0644; case "$f" in scripts/*) mode=0755 ;; esac
  put "$SRC/$f" "$P/$f" "$mode" || true
done

# production dependencies, once per package-lock.json: from the release as they are, or npm ci with other
# platforms' ORT binaries pruned (~250 MB)
stamp=$(sha256sum "$SRC/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$P/node_modules/.outpost-lock-sha256" 2>/dev/null || true)" != "$stamp" ]; then
  if [ -n "$FROM" ]; then
    say "  installing production dependencies from the release"
    run rm -rf "$P/node_modules.new"
    run mkdir -p "$P"
    run cp -a "$SRC/node_modules" "$P/node_modules.new"
    run rm -rf "$P/node_modules"
    run mv "$P/node_modules.new" "$P/node_modules"
  else
    say "  installing production dependencies (npm ci --omit=dev)"
    run sh -c "cd '$P' && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null"
    for d in "$P"/node_modules/onnxruntime-node/bin/napi-v*/*; do
      case "$d" in */linux) ;; *) [ -d "$d" ] && run rm -rf "$d" ;; esac
    done
    for d in "$P"/node_modules/onnxruntime-node/bin/napi-v*/linux/*; do
      case "$d" in */"$ARCH") ;; *) [ -d "$d" ] && run rm -rf "$d" ;; esac
    done
  fi
  if [ "$DRY_RUN" = 0 ]; then echo "$stamp" >"$P/node_modules/.outpost-lock-sha256"; fi
  changed "dependencies for package-lock.json ${stamp:0:12}"
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"; rm -rf "${UNPACKED:-}"' EXIT
printf '#!/bin/sh\nexec %s %s/dist/cli.js "$@"\n' "$NODE" "$PREFIX" >"$tmp"
put "$tmp" "$P/bin/outpost" 0755 || true
if [ "$(readlink "$ROOT/usr/local/bin/outpost" 2>/dev/null || true)" != "$PREFIX/bin/outpost" ]; then
  run mkdir -p "$ROOT/usr/local/bin"
  run ln -sfn "$PREFIX/bin/outpost" "$ROOT/usr/local/bin/outpost"
  changed "linked /usr/local/bin/outpost"
fi

# --- the user and its folders -------------------------------------------------------------------------
if [ -n "$DESTDIR" ]; then
  say "  DESTDIR: no user created (the package creates it: useradd --system --user-group --home-dir $STATE_DIR --shell /usr/sbin/nologin $USER_NAME; usermod -aG video $USER_NAME)"
elif ! getent passwd "$USER_NAME" >/dev/null 2>&1; then
  run useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin "$USER_NAME"
  changed "created the system user $USER_NAME"
fi
if have_user; then
  for g in video render gpio; do
    if getent group "$g" >/dev/null && ! id -nG "$USER_NAME" | tr ' ' '\n' | grep -qx "$g"; then
      run usermod -aG "$g" "$USER_NAME"
      changed "added $USER_NAME to $g"
    fi
  done
fi

folder() { # folder PATH MODE OWNER
  local path=$ROOT$1 mode=$2 owner=$3
  if [ ! -d "$path" ]; then run install -d -m "$mode" "$path"; changed "created $path"; fi
  if [ "$DRY_RUN" = 0 ] && [ "$(stat -c %a "$path")" != "${mode#0}" ]; then chmod "$mode" "$path"; changed "mode $mode on $path"; fi
  if have_user && [ "$(stat -c %U:%G "$path")" != "$owner" ]; then run chown "$owner" "$path"; changed "owner $owner on $path"; fi
}
folder "$CONF_DIR" 0750 "root:$USER_NAME"
folder "$STATE_DIR" 0750 "$USER_NAME:$USER_NAME"

if [ -e "$ROOT$CONF_DIR/outpost.yaml" ]; then
  say "  kept $CONF_DIR/outpost.yaml"
else
  sed "s/name: CHANGE-ME /name: $(hostname -s | tr -c 'A-Za-z0-9_\n-' '-') /" "$SRC/config/outpost.starter.yaml" >"$tmp"
  run install -m 0640 "$tmp" "$ROOT$CONF_DIR/outpost.yaml"
  if have_user; then run chown "root:$USER_NAME" "$ROOT$CONF_DIR/outpost.yaml"; fi
  changed "wrote a starter $CONF_DIR/outpost.yaml"
fi

# A board's identity is made on that board, as the service user: never in a package tree shared by many boards.
if [ -n "$DESTDIR" ]; then
  if [ -e "$ROOT$STATE_DIR/keys/secret.json" ]; then say "  WARNING: $ROOT$STATE_DIR/keys/secret.json is a node's secret key inside DESTDIR: remove it before packaging"; fi
  say "  DESTDIR: no keys written (each board makes its own: the daemon at first start, or outpost keys generate --dir $STATE_DIR/keys as $USER_NAME)"
elif [ -e "$STATE_DIR/keys/secret.json" ]; then
  say "  kept the node's keys in $STATE_DIR/keys"
else
  run runuser -u "$USER_NAME" -- "$NODE" "$P/dist/cli.js" keys generate --dir "$STATE_DIR/keys" --json >/dev/null
  changed "generated the node's keys in $STATE_DIR/keys as $USER_NAME (secret 0600)"
fi

# --- the unit -----------------------------------------------------------------------------------------
sed "s#/opt/outpost#$PREFIX#g" "$SRC/systemd/outpost.service" >"$tmp"
put "$tmp" "$ROOT$UNIT_DIR/outpost.service" 0644 || true
if [ -z "$DESTDIR" ] && { [ -e /dev/nvidia0 ] || [ -e /dev/nvhost-ctrl ] || [ -e /dev/nvmap ]; }; then
  put "$SRC/systemd/outpost-nvidia.conf" "$ROOT$UNIT_DIR/outpost.service.d/nvidia.conf" 0644 || true
fi
if [ "$ENABLE" = 1 ]; then
  if [ -n "$DESTDIR" ] && command -v systemctl >/dev/null; then
    if [ ! -L "$ROOT$UNIT_DIR/multi-user.target.wants/outpost.service" ]; then
      run systemctl --root="$ROOT" --quiet enable outpost.service
      changed "enabled outpost.service (in DESTDIR)"
    fi
  elif [ -d /run/systemd/system ]; then
    run systemctl daemon-reload
    if ! systemctl --quiet is-enabled outpost.service 2>/dev/null; then run systemctl --quiet enable outpost.service; changed "enabled outpost.service"; fi
    # an upgrade: config, keys and state stay where they are; the running service picks up the new program
    if [ "$CHANGED" -gt 0 ] && systemctl --quiet is-active outpost.service 2>/dev/null; then
      run systemctl restart outpost.service
      say "  restarted outpost.service on the new version"
    fi
  else
    say "  systemd is not running here: enable the unit where it is (systemctl enable outpost)"
  fi
fi

say "Done: $CHANGED change(s)."
cat <<EOF

Next:
  1. edit $CONF_DIR/outpost.yaml (cameras, models; outpost check-config --config $CONF_DIR/outpost.yaml)
  2. outpost keys show --dir $STATE_DIR/keys   (the keyring line the other nodes and the collector need)
  3. sudo systemctl start outpost && journalctl -u outpost -f
  4. outpost doctor --config $CONF_DIR/outpost.yaml   (checks the installed service too)
EOF

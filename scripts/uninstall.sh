#!/usr/bin/env bash
# Removes the Outpost service and program. Keeps /etc/outpost (config) and /var/lib/outpost (keys, outbox,
# model variants) unless --purge; --purge also removes the outpost user. DESTDIR and --prefix as install.sh.
set -euo pipefail

PREFIX=/opt/outpost
DRY_RUN=0
PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) echo "usage: sudo scripts/uninstall.sh [--prefix DIR] [--dry-run] [--purge]"; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
DESTDIR=${DESTDIR:-}
ROOT=${DESTDIR%/}
run() { if [ "$DRY_RUN" = 1 ]; then echo "+ $*"; else "$@"; fi; }
gone() { if [ -e "$1" ] || [ -L "$1" ]; then run rm -rf "$1"; echo "  removed $1"; fi; }

# LoadState, not `systemctl cat`: cat fails for a running unit whose drop-in was deleted, and the service kept running.
if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && [ "$(systemctl show -p LoadState --value outpost.service 2>/dev/null)" = loaded ]; then
  run systemctl disable --now outpost.service || true
elif [ -n "$DESTDIR" ] && [ -L "$ROOT/etc/systemd/system/multi-user.target.wants/outpost.service" ]; then
  run systemctl --root="$ROOT" --quiet disable outpost.service || gone "$ROOT/etc/systemd/system/multi-user.target.wants/outpost.service"
fi
gone "$ROOT/etc/systemd/system/outpost.service"
gone "$ROOT/etc/systemd/system/outpost.service.d"
[ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && run systemctl daemon-reload
if [ "$(readlink "$ROOT/usr/local/bin/outpost" 2>/dev/null || true)" = "$PREFIX/bin/outpost" ]; then gone "$ROOT/usr/local/bin/outpost"; fi
gone "$ROOT$PREFIX"

if [ "$PURGE" = 1 ]; then
  gone "$ROOT/etc/outpost"
  gone "$ROOT/var/lib/outpost"
  if [ -z "$DESTDIR" ] && getent passwd outpost >/dev/null 2>&1; then run userdel outpost; echo "  removed the user outpost"; fi
else
  echo "Kept /etc/outpost (config) and /var/lib/outpost (keys, outbox): remove them with --purge."
fi

#!/usr/bin/env bash
# Proves the service under a real systemd (252, Debian 12) booted with systemd-nspawn in its own root, the way
# ../shared/docs/REFERENCE.md §4 says (never `systemd --system` in this machine's namespaces): installs Outpost
# with scripts/install.sh inside, then checks READY, the watchdog, restart after SIGKILL, the camera child's
# environment, reload with a bad and a good config, and a clean stop. Prints a JSON report on stdout (progress
# on stderr); exits 0 when every check passed, 1 when one failed, 2 when the container could not be had.
# The root (mmdebstrap) and systemd-nspawn (dpkg -x) are built once and kept under the cache folder.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: sudo scripts/systemd-container.sh [--cache DIR] [--mirror URL] [--watchdog-sec N] [--keep-install]
  --cache DIR        where the root and systemd-nspawn are kept between runs (default /var/tmp/outpost-nspawn)
  --mirror URL       Debian mirror for the root (default: the first bookworm one in this machine's apt sources)
  --watchdog-sec N   WatchdogSec= of the test's drop-in (default 15; the unit ships 60)
  --keep-install     keep the previous run's install in the root (default: uninstall.sh --purge, then a fresh install)
Needs: root, mmdebstrap, apt-get, nsenter, a cgroup v1 host (systemd 252 runs on it), a built checkout.
EOF
}

CACHE=/var/tmp/outpost-nspawn
MIRROR=
WATCHDOG_SEC=15
FRESH=1
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) CACHE=${2:?--cache needs a folder}; shift 2 ;;
    --mirror) MIRROR=${2:?--mirror needs a URL}; shift 2 ;;
    --watchdog-sec) WATCHDOG_SEC=${2:?--watchdog-sec needs seconds}; shift 2 ;;
    --keep-install) FRESH=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "systemd-container.sh: unknown option $1" >&2; usage >&2; exit 64 ;;
  esac
done

SRC=$(cd "$(dirname "$0")/.." && pwd)
ROOT=$CACHE/root
NSPAWN=$CACHE/nspawn/usr/bin/systemd-nspawn
INCLUDE=systemd,systemd-sysv,dbus,perl-base,ca-certificates,procps,curl,fontconfig,fonts-dejavu-core,passwd,ffmpeg
RUN=$(mktemp -d /tmp/outpost-systemd.XXXXXX)
CG=outpost-nspawn-$$
NSPAWN_PID=
CPID=

say() { echo "systemd-container: $*" >&2; }
die() { say "$*"; exit 2; }

# --- prerequisites ----------------------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "run as root: systemd-nspawn and mmdebstrap need it"
for t in mmdebstrap apt-get dpkg nsenter node; do command -v "$t" >/dev/null || die "$t is missing (apt-get install mmdebstrap util-linux)"; done
[ -d /sys/fs/cgroup/systemd ] && [ -d /sys/fs/cgroup/unified ] || die "expected a cgroup v1 host with /sys/fs/cgroup/{systemd,unified} (REFERENCE.md §4)"
[ -f "$SRC/dist/cli.js" ] || die "build first: npm run build"
NODE_MODULES=$(readlink -f "$SRC/node_modules") || die "no node_modules in $SRC: npm ci"
if [ -z "$MIRROR" ]; then
  MIRROR=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)\/\?$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
  [ -n "$MIRROR" ] || MIRROR=$(sed -n 's/^deb \(\[[^]]*\] \)\?\(http[^ ]*\) bookworm .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n1)
  [ -n "$MIRROR" ] || die "no Debian mirror in /etc/apt/sources*: pass --mirror URL"
fi
mkdir -p "$CACHE"

# --- the root and nspawn, once --------------------------------------------------------------------------
stamp="bookworm minbase $INCLUDE"
if [ "$(cat "$ROOT/.outpost-root" 2>/dev/null || true)" != "$stamp" ]; then
  say "building the root with mmdebstrap from $MIRROR (once; minutes)"
  rm -rf "$ROOT" "$ROOT.tmp"
  mmdebstrap --variant=minbase --include="$INCLUDE" bookworm "$ROOT.tmp" "$MIRROR" >&2
  echo "$stamp" >"$ROOT.tmp/.outpost-root"
  mv "$ROOT.tmp" "$ROOT"
fi
if [ ! -x "$NSPAWN" ]; then
  say "getting systemd-nspawn (apt-get download systemd-container; dpkg -x)"
  (cd "$CACHE" && rm -f systemd-container_*.deb && apt-get download systemd-container >&2 && dpkg -x systemd-container_*.deb nspawn)
fi
# Node and npm from this machine (the root has none); cmp keeps reruns from copying again.
cmp -s "$(readlink -f "$(command -v node)")" "$ROOT/usr/bin/node" || install -m 0755 "$(readlink -f "$(command -v node)")" "$ROOT/usr/bin/node"
if [ ! -d "$ROOT/usr/lib/node_modules/npm" ]; then
  mkdir -p "$ROOT/usr/lib/node_modules" && cp -a /usr/lib/node_modules/npm "$ROOT/usr/lib/node_modules/"
  ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/bin/npm"
fi
# This machine's own CAs (a TLS-inspecting proxy's, say), so that npm ci inside reaches the registry as it does here.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  if ! diff -rq /usr/local/share/ca-certificates "$ROOT/usr/local/share/ca-certificates" >/dev/null 2>&1; then
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    chroot "$ROOT" update-ca-certificates >&2
  fi
fi
# The checkout and its node_modules (the link's target, at the same path) are bound read-only at boot.
mkdir -p "$ROOT/src" "$ROOT$NODE_MODULES"

# --- boot -----------------------------------------------------------------------------------------------
cleanup() {
  if [ -n "$CPID" ] && kill -0 "$CPID" 2>/dev/null; then inside 'systemctl poweroff' >/dev/null 2>&1 || true; fi
  if [ -n "$NSPAWN_PID" ]; then
    for _ in $(seq 60); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 1; done
    if kill -0 "$NSPAWN_PID" 2>/dev/null; then
      # $NSPAWN_PID is timeout(1): SIGTERM reaches nspawn through it, which then stops the container itself
      say "the container did not power off in 60 s: SIGTERM to nspawn"; kill -TERM "$NSPAWN_PID" 2>/dev/null || true
      for _ in $(seq 15); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 1; done
    fi
    wait "$NSPAWN_PID" 2>/dev/null || true
  fi
  rm -rf /run/systemd/nspawn # nspawn cannot remove it itself here (REFERENCE.md §4)
  for h in systemd unified; do
    [ -d "/sys/fs/cgroup/$h/$CG" ] && find "/sys/fs/cgroup/$h/$CG" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  rm -rf "$RUN"
}
trap cleanup EXIT

inside() { # inside 'SHELL COMMANDS': runs them in the container, as its root, with a clean environment
  nsenter -t "$CPID" -m -u -i -n -p -C -r -w env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 /bin/bash -c "$1"
}

say "booting systemd in $ROOT"
for h in systemd unified; do mkdir -p "/sys/fs/cgroup/$h/$CG"; done
(
  # nspawn with --keep-unit runs in the cgroup it is started in: one of its own, not this session's
  for h in systemd unified; do echo "$BASHPID" >"/sys/fs/cgroup/$h/$CG/cgroup.procs"; done
  exec env SYSTEMD_NSPAWN_LOCK=0 timeout 3600 "$NSPAWN" -D "$ROOT" --boot --register=no --keep-unit --link-journal=no \
    --console=pipe --bind-ro="$SRC:/src" --bind-ro="$NODE_MODULES:$NODE_MODULES" </dev/null >"$RUN/console.log" 2>&1
) &
NSPAWN_PID=$!

find_container_pid() { # the container's PID 1: a systemd whose NSpid ends in 1, in the cgroup nspawn was started in
  local p
  for p in $(ps -e -o pid=); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] || continue
    grep -q "^NSpid:.*[[:space:]]1$" "/proc/$p/status" 2>/dev/null || continue
    grep -qx "/$CG.*" <(sed -n 's/^[0-9]*:name=systemd://p' "/proc/$p/cgroup") && { echo "$p"; return; }
  done
}
for _ in $(seq 60); do
  CPID=$(find_container_pid || true)
  [ -n "$CPID" ] && break
  kill -0 "$NSPAWN_PID" 2>/dev/null || { cat "$RUN/console.log" >&2; die "systemd-nspawn exited before the container booted"; }
  sleep 1
done
[ -n "$CPID" ] || { cat "$RUN/console.log" >&2; die "no container systemd after 60 s"; }
# PID 1 exists before its bus does: wait for the socket systemctl talks to, then for the boot to finish.
for _ in $(seq 60); do inside 'test -S /run/systemd/private' && break; sleep 1; done
boot_state=$(inside 'timeout 120 systemctl is-system-running --wait' 2>&1 || true)
SYSTEMD_VERSION=$(inside 'systemctl --version | head -n1')
say "container systemd PID $CPID: $boot_state ($SYSTEMD_VERSION)"

# --- checks ---------------------------------------------------------------------------------------------
# Each check records its own failure; none may end the run before the report and the power-off.
set +e +o pipefail
check() { # check NAME OK DETAIL EVIDENCE-FILE
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RUN/checks.tsv"
  say "$1: $([ "$2" = true ] && echo ok || echo FAILED) - $3"
}
show() { inside "systemctl show outpost -p $1 --value"; }
journal() { inside 'journalctl -b -u outpost -o short-monotonic --no-pager' ; }
wait_for() { # wait_for SECONDS 'CONDITION (host shell)': true when it held within the time
  local deadline=$((SECONDS + $1))
  while [ $SECONDS -lt $deadline ]; do eval "$2" && return 0; sleep 1; done
  return 1
}
active_with_new_pid() { [ "$(show ActiveState)" = active ] && [ "$(show MainPID)" != "$1" ] && [ "$(show NRestarts)" -gt "$2" ]; }

service_checks() {
  # The starter config plus a file camera (ffmpeg) reading a clip made inside; a shorter watchdog for the run.
  inside "set -e
    ffmpeg -loglevel error -y -f lavfi -i testsrc=size=320x240:rate=5 -t 10 -c:v mjpeg /var/lib/outpost/clip.mkv
    chown outpost:outpost /var/lib/outpost/clip.mkv
    cp /etc/outpost/outpost.yaml /etc/outpost/good.yaml.orig 2>/dev/null || true
    sed -i 's/fps: 2 }/fps: 1 }/' /etc/outpost/outpost.yaml
    grep -q 'name: clip' /etc/outpost/outpost.yaml || sed -i '/^cameras:/a\\  - { name: clip, source: { type: file, path: /var/lib/outpost/clip.mkv, fps: 1 }, pipeline: text }' /etc/outpost/outpost.yaml
    cp /etc/outpost/outpost.yaml /var/tmp/good.yaml
    mkdir -p /etc/systemd/system/outpost.service.d
    printf '[Service]\nWatchdogSec=$WATCHDOG_SEC\n# a watchdog abort of a stopped Node would write a core of hundreds of MB\nLimitCORE=0\n' >/etc/systemd/system/outpost.service.d/test.conf
    systemctl daemon-reload
    outpost check-config --config /etc/outpost/outpost.yaml" >"$RUN/setup.log" 2>&1 || say "setup failed: $(cat "$RUN/setup.log")"

  # 1. start returns after READY=1: Type=notify keeps the unit activating until then; READY=1 and STATUS= go in
  # one datagram, so the status text is the daemon's own; the daemon logs "ready" right after sending it.
  # (With --keep-install this boot has started the unit an earlier run enabled.)
  inside 'systemctl stop outpost; systemctl reset-failed outpost' >/dev/null 2>&1
  seen=$(journal | wc -l)
  t0=$SECONDS
  start_rc=0; inside 'systemctl start outpost' >"$RUN/start.log" 2>&1 || start_rc=$?
  start_s=$((SECONDS - t0))
  { inside 'systemctl show outpost -p Type,NotifyAccess,ActiveState,SubState,MainPID,WatchdogUSec,StatusText,ExecMainStartTimestampMonotonic,ActiveEnterTimestampMonotonic'
    journal | tail -n +$((seen + 1)) | grep -E '"msg":"ready"|Started outpost|Starting outpost'; cat "$RUN/start.log"; } >"$RUN/ready.txt" 2>&1
  exec_us=$(sed -n 's/^ExecMainStartTimestampMonotonic=//p' "$RUN/ready.txt"); active_us=$(sed -n 's/^ActiveEnterTimestampMonotonic=//p' "$RUN/ready.txt")
  to_ready_ms=$(((${active_us:-0} - ${exec_us:-0}) / 1000))
  echo "from exec to active (READY=1): ${to_ready_ms} ms" >>"$RUN/ready.txt"
  if [ "$start_rc" = 0 ] && grep -qx 'ActiveState=active' "$RUN/ready.txt" && grep -qx 'StatusText=running (.*)' "$RUN/ready.txt" \
    && grep -q '"msg":"ready"' "$RUN/ready.txt"; then
    check ready true "systemctl start returned 0 after ${start_s} s, active ${to_ready_ms} ms after exec, with the daemon's READY status" "$RUN/ready.txt"
  else check ready false "start rc $start_rc after ${start_s} s; see the evidence" "$RUN/ready.txt"; fi

  # 2. the camera's ffmpeg has none of systemd's per-process variables (the daemon itself has them)
  MAIN=$(show MainPID)
  wait_for 60 "inside 'pgrep -P $MAIN -x ffmpeg' >/dev/null" || true
  inside "set +e
    f=\$(pgrep -P $MAIN -x ffmpeg | head -n1); h=\$(pgrep -P $MAIN -x perl | head -n1)
    echo \"daemon $MAIN: \$(tr '\\0' '\\n' </proc/$MAIN/environ | grep -E '^(NOTIFY_SOCKET|WATCHDOG_)' | tr '\\n' ' ')\"
    echo \"notify helper \$h: \$(tr '\\0' '\\n' </proc/\$h/environ | grep -E '^(NOTIFY_SOCKET|WATCHDOG_)' | tr '\\n' ' ')\"
    echo \"ffmpeg \$f: \$(tr '\\0' '\\n' </proc/\$f/environ | grep -E '^(NOTIFY_SOCKET|WATCHDOG_)' | tr '\\n' ' ')\"
    [ -n \"\$f\" ] && echo \"ffmpeg cmdline: \$(tr '\\0' ' ' </proc/\$f/cmdline)\"" >"$RUN/childenv.txt" 2>&1 || true
  if grep -q '^ffmpeg [0-9]*: *$' "$RUN/childenv.txt" && grep -q '^daemon .*NOTIFY_SOCKET=' "$RUN/childenv.txt" \
    && grep -q '^daemon .*WATCHDOG_USEC=' "$RUN/childenv.txt"; then
    check child-env true "ffmpeg (child of the daemon) has no NOTIFY_SOCKET/WATCHDOG_*; the daemon has both" "$RUN/childenv.txt"
  else check child-env false "ffmpeg missing, or it inherited systemd's variables" "$RUN/childenv.txt"; fi

  # 3. reload: an invalid config fails the reload and the daemon keeps its PID; a good one reloads
  MAIN=$(show MainPID)
  bad_rc=0; inside "printf 'cameras: [ { name: broken } ]\n' >>/etc/outpost/outpost.yaml; systemctl reload outpost" >"$RUN/reload.txt" 2>&1 || bad_rc=$?
  sleep 2
  after_bad=$(show MainPID); state_bad=$(show ActiveState)
  good_rc=0; inside 'cp /var/tmp/good.yaml /etc/outpost/outpost.yaml; systemctl reload outpost' >>"$RUN/reload.txt" 2>&1 || good_rc=$?
  wait_for 30 "journal | grep -q '\"msg\":\"configuration reloaded\"'" || true
  after_good=$(show MainPID); state_good=$(show ActiveState)
  { echo "bad reload rc=$bad_rc MainPID $MAIN -> $after_bad ActiveState=$state_bad"; echo "good reload rc=$good_rc MainPID -> $after_good ActiveState=$state_good"
    journal | grep -E 'Reload|reload|check-config|outpost.yaml:' | tail -n 12; } >>"$RUN/reload.txt" 2>&1
  if [ "$bad_rc" != 0 ] && [ "$after_bad" = "$MAIN" ] && [ "$state_bad" = active ] && [ "$good_rc" = 0 ] && [ "$after_good" = "$MAIN" ] \
    && grep -q '"msg":"configuration reloaded"' "$RUN/reload.txt"; then
    check reload true "bad config: reload rc $bad_rc, PID $MAIN kept, active; good config: reload rc 0, configuration reloaded" "$RUN/reload.txt"
  else check reload false "bad rc $bad_rc (PID $MAIN -> $after_bad, $state_bad); good rc $good_rc (PID $after_good, $state_good)" "$RUN/reload.txt"; fi

  # 4. the watchdog: a SIGSTOPped daemon is killed by systemd and restarted
  MAIN=$(show MainPID); n0=$(show NRestarts)
  inside "kill -STOP $MAIN"; stopped_at=$(cut -d' ' -f1 /proc/uptime) # the journal's monotonic clock
  t0=$SECONDS
  if wait_for $((WATCHDOG_SEC * 3 + 90)) "active_with_new_pid $MAIN $n0"; then wd_ok=true; else wd_ok=false; fi
  wd_s=$((SECONDS - t0))
  { echo "SIGSTOP $MAIN at [$stopped_at]; NRestarts $n0 -> $(show NRestarts); MainPID -> $(show MainPID); ActiveState=$(show ActiveState); ${wd_s} s"
    journal | grep -iE 'watchdog|Scheduled restart|Main process exited' | tail -n 6; } >"$RUN/watchdog.txt" 2>&1
  if $wd_ok && grep -qi 'watchdog timeout' "$RUN/watchdog.txt"; then
    check watchdog true "SIGSTOPped PID $MAIN: watchdog timeout, restarted as PID $(show MainPID) after ${wd_s} s (WatchdogSec=$WATCHDOG_SEC)" "$RUN/watchdog.txt"
  else check watchdog false "no watchdog restart of PID $MAIN within ${wd_s} s" "$RUN/watchdog.txt"; fi

  # 5. restart after SIGKILL
  MAIN=$(show MainPID); n0=$(show NRestarts)
  inside "kill -KILL $MAIN"; killed_at=$(cut -d' ' -f1 /proc/uptime)
  t0=$SECONDS
  if wait_for 90 "active_with_new_pid $MAIN $n0"; then kill_ok=true; else kill_ok=false; fi
  kill_s=$((SECONDS - t0))
  { echo "SIGKILL $MAIN at [$killed_at]; NRestarts $n0 -> $(show NRestarts); MainPID -> $(show MainPID); ActiveState=$(show ActiveState); ${kill_s} s"
    journal | grep -E 'status=9/KILL|Scheduled restart|"msg":"ready"' | tail -n 4; } >"$RUN/sigkill.txt" 2>&1
  if $kill_ok; then check sigkill true "SIGKILLed PID $MAIN: restarted as PID $(show MainPID) after ${kill_s} s" "$RUN/sigkill.txt"
  else check sigkill false "no restart of PID $MAIN within ${kill_s} s" "$RUN/sigkill.txt"; fi

  # 6. clean stop: SIGTERM, the daemon's own stop, result success, no escalation to SIGKILL
  seen=$(journal | wc -l)
  t0=$(date +%s%N)
  stop_rc=0; inside 'systemctl stop outpost' >"$RUN/stop.txt" 2>&1 || stop_rc=$?
  stop_ms=$((($(date +%s%N) - t0) / 1000000))
  { inside 'systemctl show outpost -p ActiveState,Result,ExecMainStatus,ExecMainCode'; journal | tail -n +$((seen + 1)) | grep -E '"msg":"stopped"|Stopping outpost|Stopped outpost|SIGKILL|timed out|Killing'; } >>"$RUN/stop.txt" 2>&1
  if [ "$stop_rc" = 0 ] && grep -qx 'ActiveState=inactive' "$RUN/stop.txt" && grep -qx 'Result=success' "$RUN/stop.txt" \
    && grep -q '"msg":"stopped"' "$RUN/stop.txt" && ! grep -qE 'SIGKILL|timed out' "$RUN/stop.txt"; then
    check stop true "systemctl stop returned in ${stop_ms} ms; the daemon logged stopped; Result=success" "$RUN/stop.txt"
  else check stop false "stop rc $stop_rc in ${stop_ms} ms" "$RUN/stop.txt"; fi
}

if [ "$FRESH" = 1 ]; then
  say "removing the previous run's install (uninstall.sh --purge)"
  inside '/src/scripts/uninstall.sh --purge' >"$RUN/uninstall.log" 2>&1 \
    || { tail -n 20 "$RUN/uninstall.log" >&2; die "uninstall.sh --purge failed in the container"; }
fi
say "installing with scripts/install.sh inside the container"
# Node keeps its own CA list: it is told about the system's, which now has this machine's CAs too.
install_cmd='cd /src && NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt scripts/install.sh'
if inside "$install_cmd" >"$RUN/install.log" 2>&1 && { echo '--- again:'; inside "$install_cmd"; } >>"$RUN/install.log" 2>&1 \
  && grep -q '^Done: 0 change(s)' "$RUN/install.log" && inside 'systemctl is-enabled outpost' >>"$RUN/install.log" 2>&1; then
  { [ "$FRESH" = 0 ] || { echo '--- uninstall.sh --purge first:'; cat "$RUN/uninstall.log"; echo '--- install.sh:'; }
    grep -vE '^(Next:|  [0-9]\. |$)' "$RUN/install.log"; } >"$RUN/install.txt"
  check install true "$([ "$FRESH" = 1 ] && echo 'a fresh' || echo 'an') install.sh: unit enabled; a second run changed nothing" "$RUN/install.txt"
  service_checks
else
  check install false "scripts/install.sh failed" "$RUN/install.log"
  tail -n 20 "$RUN/install.log" >&2
  for n in ready child-env reload watchdog sigkill stop; do check "$n" false "not run: the install failed" /dev/null; done
fi

# --- the report -----------------------------------------------------------------------------------------
node --input-type=module - "$RUN" "$SYSTEMD_VERSION" "$boot_state" "$WATCHDOG_SEC" <<'EOF'
import { readFileSync } from 'node:fs';
const [run, systemd, boot, watchdogSec] = process.argv.slice(2);
const clip = (line) => (line.length > 400 ? `${line.slice(0, 400)}…` : line);
const lines = (file) => { try { return readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(-40).map(clip); } catch { return []; } };
const checks = readFileSync(`${run}/checks.tsv`, 'utf8').trim().split('\n').map((row) => {
  const [name, ok, detail, evidence] = row.split('\t');
  return { name, ok: ok === 'true', detail, evidence: lines(evidence) };
});
const ok = checks.length === 7 && checks.every((c) => c.ok);
console.log(JSON.stringify({ ok, systemd, boot, watchdogSec: Number(watchdogSec), checks }, null, 2));
process.exitCode = ok ? 0 : 1;
EOF

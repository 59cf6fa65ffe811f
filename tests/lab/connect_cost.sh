#!/usr/bin/env bash
# What the opt-in connect rules of package/README/escape_to_host.rules cost on this host (docs/audit-rules.md): they
# alone are loaded for SECONDS, and the events, records and bytes they logged are counted per minute, with the
# commands and socket names that made them.
#
#   sudo tests/lab/connect_cost.sh [SECONDS]     # default 120; run it on a host doing its usual work
#
# Root; kernel audit must be free (no auditd running, no rules loaded). Exit 77 when it is not. Starts its own
# `auditd -n` (log in a temporary directory), and on exit deletes the rules, stops that auditd by pid and restores
# audit's enabled flag.
set -uo pipefail
SECONDS_TO_RUN=${1:-120}
HERE=$(cd "$(dirname "$0")" && pwd)
RULES="$HERE/../../package/README/escape_to_host.rules"
say() { echo "connect_cost: $*" >&2; }
[ "$(id -u)" = 0 ] || { say "SKIP: needs root"; exit 77; }
command -v auditctl >/dev/null || { say "SKIP: needs auditd (apt-get install auditd)"; exit 77; }
[ "$(auditctl -s | awk '/^pid/{print $2}')" = "0" ] || { say "SKIP: another process holds the audit socket"; exit 77; }
[ "$(auditctl -l 2>/dev/null)" = "No rules" ] || { say "SKIP: audit rules are already loaded"; exit 77; }

WORK=$(mktemp -d /tmp/connect-cost.XXXXXX)
ENABLED=$(auditctl -s | awk '/^enabled/{print $2}')
AUDITD_PID=""
teardown() {
  auditctl -D >/dev/null 2>&1
  if [ -n "$AUDITD_PID" ]; then
    kill "$AUDITD_PID" 2>/dev/null; for _ in $(seq 30); do kill -0 "$AUDITD_PID" 2>/dev/null || break; sleep 0.2; done
  fi
  auditctl -e "$ENABLED" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap teardown EXIT

sed -n 's/^#\(-a .* -S connect .*\)$/\1/p' "$RULES" > "$WORK/connect.rules"
[ -s "$WORK/connect.rules" ] || { say "no commented-out connect rule in $RULES"; exit 1; }
mkdir -p "$WORK/conf" "$WORK/log"
sed -e "s#^log_file.*#log_file = $WORK/log/audit.log#" -e 's#^log_format.*#log_format = ENRICHED#' \
    /etc/audit/auditd.conf > "$WORK/conf/auditd.conf"
chmod 0640 "$WORK/conf/auditd.conf"
auditd -n -c "$WORK/conf" > "$WORK/auditd.out" 2>&1 &
AUDITD_PID=$!
for _ in $(seq 50); do [ "$(auditctl -s | awk '/^pid/{print $2}')" = "$AUDITD_PID" ] && break; sleep 0.1; done
[ "$(auditctl -s | awk '/^pid/{print $2}')" = "$AUDITD_PID" ] || { say "auditd did not start"; exit 1; }
auditctl -e 1 >/dev/null
auditctl -R "$WORK/connect.rules" >/dev/null || { say "auditctl -R of the connect rules failed"; exit 1; }
START=$(date +%s.%N)
sleep "$SECONDS_TO_RUN"
auditctl -D >/dev/null
END=$(date +%s.%N)
sleep 1
LOG="$WORK/log/audit.log"
# Events are counted by their SYSCALL record (key escape_to_host_sock); records and bytes are all lines of those events.
python3 - "$LOG" "$START" "$END" <<'EOF'
import collections, re, sys
log, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
lines = open(log, "rb").read().split(b"\n")
serials, comms, socks = set(), collections.Counter(), collections.Counter()
for line in lines:
    if b"type=SYSCALL" in line and b'key="escape_to_host_sock"' in line:
        serials.add(re.search(rb"msg=audit\(([0-9.]+:[0-9]+)\)", line).group(1))
        comms[re.search(rb' comm="([^"]*)"', line).group(1).decode()] += 1
records = [l for l in lines if (m := re.search(rb"msg=audit\(([0-9.]+:[0-9]+)\)", l)) and m.group(1) in serials]
for line in records:
    if b"type=PATH" in line:
        m = re.search(rb' name="([^"]*)"', line)
        socks[m.group(1).decode() if m else "?"] += 1
minutes = (end - start) / 60.0
print("seconds %.0f  events %d (%.1f/min)  records %d (%.1f/min)  bytes %d (%.0f/min)" % (
    end - start, len(serials), len(serials) / minutes, len(records), len(records) / minutes,
    sum(len(r) + 1 for r in records), sum(len(r) + 1 for r in records) / minutes))
print("by command:", ", ".join("%s %d" % kv for kv in comms.most_common(8)))
print("by socket:", ", ".join("%s %d" % kv for kv in socks.most_common(8)))
EOF

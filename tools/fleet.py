"""The bench's fleet workload: one hour of `linux:audit` from many hosts, the lab's container activity beside the audit
traffic a production fleet carries besides (docs/performance.md, "The fleet workload").

Every record is a real record of tests/data with its stamp, serial, pids and a few values changed:
- container activity: a run of the lab's raw ENRICHED log (tests/data/lab-run1/audit-session1.log.gz) per host, from a
  host-dependent offset, its pids offset per host;
- a CIS-benchmark-style rule set's syscall events, built on the lab's own event shapes (SYSCALL, CWD, PATH, PROCTITLE):
  time changes (adjtimex, settimeofday, clock_settime; `-k time-change`), identity and /etc watches (openat of
  /etc/passwd, /etc/shadow, /etc/group, /etc/sudoers, /etc/hosts; `-k identity`, `scope`, `system-locale`),
  permission changes (fchmodat, fchownat; `-k perm_mod`), login records (openat of /var/log/lastlog; `-k logins`),
  privileged commands (execve of sudo, passwd, su; `-k privileged`) and kill signals (the rhel7 log's `kill_signals`);
- user-space records of tests/data/public/linux_auditd/go-libaudit_audit-rhel7.log: an ssh login's USER_AUTH,
  USER_ACCT, CRED_ACQ, LOGIN, USER_ROLE_CHANGE, USER_START, USER_LOGIN, CRED_DISP, USER_END, USER_LOGOUT, sudo's
  USER_CMD, cron sessions (the same PAM records with crond's exe and terminal, and the log's CRED_REFR of crond) and
  systemd's SERVICE_START / SERVICE_STOP for a set of units.
"""
import random
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from escape_engine.ground import Row
from tools.workload import DATA, _meta, audit_lines

HOSTS = 200
SPAN = 3600.0                # one fleet-hour
LAB_SHARE = 0.40             # share of records from the lab's container activity (the rest: other rules' traffic)
START = 1795923651.0         # the lab capture's first second
RHEL7 = DATA / "public" / "linux_auditd" / "go-libaudit_audit-rhel7.log"
SSH_SESSION = ("USER_AUTH", "USER_ACCT", "CRED_ACQ", "LOGIN", "USER_ROLE_CHANGE", "USER_START", "USER_LOGIN",
               "CRED_DISP", "USER_END", "USER_LOGOUT")
CRON_SESSION = ("USER_ACCT", "CRED_ACQ", "LOGIN", "USER_START", "CRED_REFR", "CRED_DISP", "USER_END")
UNITS = ("logrotate", "man-db", "apt-daily", "fstrim", "systemd-tmpfiles-clean", "sysstat-collect", "motd-news",
         "certbot", "unattended-upgrades", "node-exporter")
# (syscall number on x86_64, key, comm, exe, path) of the CIS-style rules' events
CIS_CALLS: Tuple[Tuple[int, str, str, str, str], ...] = (
    (159, "time-change", "chronyd", "/usr/sbin/chronyd", ""),
    (227, "time-change", "chronyd", "/usr/sbin/chronyd", ""),
    (164, "time-change", "hwclock", "/usr/sbin/hwclock", ""),
    (257, "identity", "sshd", "/usr/sbin/sshd", "/etc/passwd"),
    (257, "identity", "useradd", "/usr/sbin/useradd", "/etc/shadow"),
    (257, "identity", "groupadd", "/usr/sbin/groupadd", "/etc/group"),
    (257, "scope", "visudo", "/usr/sbin/visudo", "/etc/sudoers"),
    (257, "system-locale", "NetworkManager", "/usr/sbin/NetworkManager", "/etc/hosts"),
    (257, "logins", "sshd", "/usr/sbin/sshd", "/var/log/lastlog"),
    (268, "perm_mod", "chmod", "/usr/bin/chmod", "/var/lib/app/run.sock"),
    (260, "perm_mod", "chown", "/usr/bin/chown", "/var/lib/app/data"),
    (62, "kill_signals", "bash", "/usr/bin/bash", ""),
)
PRIVILEGED = (("sudo", "/usr/bin/sudo"), ("passwd", "/usr/bin/passwd"), ("su", "/usr/bin/su"))
PRIVILEGED_SHARE = 0.04      # of the CIS-style syscall events: privileged command executions (execve, kept)

_STAMP = re.compile(r"msg=audit\([^)]*\)")
_PID = re.compile(r" (p?pid)=(\d+)")


def _hex(text: str) -> str:
    return text.encode().hex().upper()


def _event(lines: List[str], stamp: float, serial: int) -> List[str]:
    header = "msg=audit(%.3f:%d)" % (stamp, serial)
    return [_STAMP.sub(header, line, count=1) for line in lines]


def _lab_event(serial: str) -> List[str]:
    """The records of one lab event, by its serial (a real event's shape)."""
    marker = ":%s)" % serial
    return [line.decode("utf-8", "replace") for line in audit_lines() if marker.encode() in line]


class Templates:
    """The real records the generator rewrites."""

    def __init__(self) -> None:
        rhel7 = [line for line in RHEL7.read_text(encoding="utf-8").split("\n") if line.startswith("type=")]
        self.user: Dict[str, str] = {}
        for line in rhel7:
            rtype = line[5:line.index(" ")]
            self.user.setdefault(rtype, line)
        self.kill = next(line for line in rhel7 if 'key="kill_signals"' in line)
        self.mount = _lab_event("8311")       # SYSCALL (mount, failed), CWD, 2 PATH, PROCTITLE
        self.execve = _lab_event("9722")      # SYSCALL (execve), EXECVE, CWD, 2 PATH, BPRM_FCAPS, PROCTITLE

    def session(self, kinds: Sequence[str], cron: bool) -> List[str]:
        out = []
        for kind in kinds:
            line = self.user[kind]
            if cron:
                line = line.replace('exe="/usr/sbin/sshd"', 'exe="/usr/sbin/crond"').replace(
                    "terminal=ssh", "terminal=cron").replace("sshd_t", "crond_t")
            out.append(line)
        return out

    def service(self, unit: str, start: bool) -> List[str]:
        return [self.user["SERVICE_START" if start else "SERVICE_STOP"].replace("unit=auditd", "unit=" + unit)
                .replace("unit=irqbalance", "unit=" + unit)]

    def cis_call(self, number: int, key: str, comm: str, exe: str, path: str) -> List[str]:
        if number == 62:
            return [self.kill]
        out = []
        for line in self.mount:
            if line.startswith("type=SYSCALL"):
                line = line.replace("syscall=165 success=no exit=-1", "syscall=%d success=yes exit=0" % number)
                line = line.replace('comm="mount"', 'comm="%s"' % comm).replace('exe="/usr/bin/mount"',
                                                                                'exe="%s"' % exe)
                line = line.replace('key="t1611"', 'key="%s"' % key).replace("SYSCALL=mount", "SYSCALL=%d" % number)
            elif line.startswith("type=PATH"):
                if not path or "item=1" in line:
                    continue
                line = line.replace('name="/mnt/hostdisk"', 'name="%s"' % path).replace("dev=00:27", "dev=fd:00")
            elif line.startswith("type=PROCTITLE"):
                line = "type=PROCTITLE msg=audit(0:0): proctitle=" + _hex(exe)
            out.append(line)
        return out

    def privileged(self, comm: str, exe: str) -> List[str]:
        out = []
        for line in self.execve:
            if line.startswith("type=SYSCALL"):
                line = line.replace('comm="nsenter"', 'comm="%s"' % comm).replace(
                    'exe="/usr/bin/nsenter"', 'exe="%s"' % exe).replace('key="t1611"', 'key="privileged"')
            elif line.startswith("type=EXECVE"):
                line = 'type=EXECVE msg=audit(0:0): argc=2 a0="%s" a1="-l"' % comm
            elif line.startswith("type=PATH") and "item=0" in line:
                line = line.replace('name="/usr/bin/nsenter"', 'name="%s"' % exe).replace("dev=00:27", "dev=fd:00")
            elif line.startswith("type=PROCTITLE"):
                line = "type=PROCTITLE msg=audit(0:0): proctitle=" + _hex(comm + "\0-l")
            out.append(line)
        return out


def _production_event(rng: random.Random, templates: Templates) -> List[str]:
    """One event of the other rules' traffic, by the mix of a production fleet's audit log."""
    roll = rng.random()
    if roll < 0.10:
        return templates.session(SSH_SESSION, cron=False)
    if roll < 0.35:
        return templates.session(CRON_SESSION, cron=True)
    if roll < 0.50:
        return templates.service(rng.choice(UNITS), rng.random() < 0.5)
    if roll < 0.52:
        return [templates.user["USER_CMD"]]
    if rng.random() < PRIVILEGED_SHARE:
        return templates.privileged(*rng.choice(PRIVILEGED))
    return templates.cis_call(*rng.choice(CIS_CALLS))


def _pid_shifter(offset: int) -> Callable[["re.Match[str]"], str]:
    return lambda m: " %s=%d" % (m.group(1), int(m.group(2)) + offset)


def generate_fleet(records: int, *, hosts: int = HOSTS, seed: int = 1611,
                   lines: Optional[List[bytes]] = None) -> List[Row]:
    """`records` linux:audit records of one fleet-hour over `hosts` hosts, newest first (see the module docstring)."""
    rng = random.Random(seed)
    templates = Templates()
    lab = [line.decode("utf-8", "replace") for line in (lines if lines is not None else audit_lines())]
    lab_stamps = [float(m.group(1)) for m in (re.search(r"msg=audit\(([\d.]+):", line) for line in lab) if m]
    lab_start = min(lab_stamps)
    per_host = records // hosts
    lab_per_host = int(per_host * LAB_SHARE)
    out: List[Row] = []
    for host_no in range(hosts):
        host = "fleet-node-%03d" % host_no
        serial = 1000 + host_no
        events: List[Tuple[float, List[str]]] = []
        # the lab's container activity: a run of its records, shifted into this host's hour, pids offset per host
        begin = (host_no * 7919) % len(lab)
        shift = START + rng.uniform(0, SPAN - 400) - lab_start
        offset = 1000 * (host_no % 60)
        for position in range(begin, begin + lab_per_host):
            line = lab[position % len(lab)]
            found = re.search(r"msg=audit\(([\d.]+):(\d+)\)", line)
            if found is None:
                continue
            when = float(found.group(1)) + shift
            text = _PID.sub(_pid_shifter(offset), line)
            events.append((when, [_STAMP.sub("msg=audit(%.3f:%s)" % (when, found.group(2)), text, count=1)]))
        count = sum(len(e[1]) for e in events)
        while count < per_host:
            event = _production_event(rng, templates)
            serial += 1
            when = START + rng.uniform(0, SPAN)
            events.append((when, _event(event, when, 10 ** 7 + serial)))
            count += len(event)
        for when, event_lines in events:
            for line in event_lines:
                row = _meta("linux:audit", "/var/log/audit/audit.log", host, when, len(out))
                row["_raw"] = line
                out.append(row)
    out.sort(key=lambda e: float(str(e["_time"])), reverse=True)
    return out


def other_rules_share(events: Sequence[Row]) -> float:
    """Share of records that no rule of this add-on wrote (its rules' key is t1611; user-space records have none)."""
    ours = sum(1 for e in events if 'key="t1611"' in str(e["_raw"]) or _lab_companion(str(e["_raw"])))
    return 1 - ours / len(events) if events else 0.0


def _lab_companion(raw: str) -> bool:
    """A companion record of a lab event (the lab's serials stay below 10**7; the generated events' are above)."""
    found = re.search(r"msg=audit\([\d.]+:(\d+)\)", raw)
    return found is not None and int(found.group(1)) < 10 ** 7

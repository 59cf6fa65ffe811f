"""Linux audit record parser: raw (`linux:audit`, ENRICHED or RAW format) and interpreted (`ausearch -i`, `auditd`).

One record per line: `[node=<host> ]type=<TYPE> msg=audit(<epoch>.<ms>:<serial>): <fields>`. ENRICHED records carry a
0x1D byte followed by interpreted fields; only the raw part is read (the interpreted tail is used for `SYSCALL=` when
the raw part has no number). `ausearch -i` prints names instead of numbers and a local time stamp; records of one event
share the text inside `msg=audit(...)`, which is the join key together with the serial.

Strings (`comm`, `exe`, `name`, `cwd`, `aN`, `proctitle`, `key`) are quoted, or bare upper-case hex when they hold a
space, a quote, a control or a non-ASCII byte. No regular expression runs per record: fields are split with
str.partition / str.split.
"""
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from escape_engine.scalars import is_ascii_digits

GS = "\x1d"

ARCH_NAMES = {"c000003e": "x86_64", "c00000b7": "aarch64", "40000003": "i386", "x86_64": "x86_64",
              "aarch64": "aarch64", "i386": "i386", "i686": "i386"}

# Syscall numbers of the calls the Linux analytic reads, per architecture (the kernel's syscall tables:
# arch/x86/entry/syscalls/syscall_64.tbl and _32.tbl, include/uapi/asm-generic/unistd.h for aarch64).
SYSCALL_NUMBERS: Dict[str, Dict[int, str]] = {
    "x86_64": {272: "unshare", 308: "setns", 165: "mount", 166: "umount2", 155: "pivot_root", 161: "chroot",
               250: "keyctl", 248: "add_key", 249: "request_key", 175: "init_module", 313: "finit_module",
               304: "open_by_handle_at", 101: "ptrace", 59: "execve", 322: "execveat", 257: "openat", 2: "open",
               42: "connect"},
    "aarch64": {97: "unshare", 268: "setns", 40: "mount", 39: "umount2", 41: "pivot_root", 51: "chroot",
                219: "keyctl", 217: "add_key", 218: "request_key", 105: "init_module", 273: "finit_module",
                265: "open_by_handle_at", 117: "ptrace", 221: "execve", 281: "execveat", 56: "openat",
                203: "connect"},
    "i386": {310: "unshare", 346: "setns", 21: "mount", 52: "umount2", 217: "pivot_root", 61: "chroot",
             288: "keyctl", 286: "add_key", 287: "request_key", 128: "init_module", 350: "finit_module",
             342: "open_by_handle_at", 26: "ptrace", 11: "execve", 358: "execveat", 295: "openat", 5: "open",
             362: "connect"},
}

# Fields whose value is an encoded string (quoted, or bare hex).
_STRING_FIELDS = frozenset(("comm", "exe", "name", "cwd", "proctitle", "key", "ocomm", "path", "cmd", "data"))
_HEX_DIGITS = "0123456789ABCDEF"


class AuditRecord:
    """One audit record line; its fields are split on first use (most records of a busy host are never read)."""

    __slots__ = ("_fields", "_interpreted", "_raw", "_tail", "node", "rtype", "serial", "stamp")

    def __init__(self, rtype: str, stamp: str, serial: str, node: str, raw: str, tail: str) -> None:
        self.rtype = rtype
        self.stamp = stamp
        self.serial = serial
        self.node = node
        self._raw = raw
        self._tail = tail
        self._fields: Optional[Dict[str, str]] = None
        self._interpreted: Optional[Dict[str, str]] = None

    @property
    def fields(self) -> Dict[str, str]:
        if self._fields is None:
            self._fields = split_fields(self._raw)
        return self._fields

    @property
    def interpreted(self) -> Dict[str, str]:
        if self._interpreted is None:
            self._interpreted = split_fields(self._tail) if self._tail else {}
        return self._interpreted

    @property
    def text(self) -> str:
        """The raw field text (before any 0x1D)."""
        return self._raw

    @property
    def body(self) -> str:
        """Everything after the header: the raw fields, then 0x1D and the interpreted ones when there are any."""
        return self._raw + GS + self._tail if self._tail else self._raw

    @property
    def epoch(self) -> Optional[float]:
        return stamp_epoch(self.stamp)


def stamp_epoch(stamp: str) -> Optional[float]:
    """Seconds since the epoch of a record's stamp, or None for `ausearch -i` stamps (local time text)."""
    try:
        return float(stamp)
    except ValueError:
        return None


def decode_string(value: str) -> str:
    """Decode an audit string value: strip quotes, or decode bare upper-case hex; `(null)` and `?` stay as they are."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    if value and len(value) % 2 == 0 and not value.strip(_HEX_DIGITS):
        try:
            return bytes.fromhex(value).decode("utf-8", "replace")
        except ValueError:
            return value
    return value


def split_fields(text: str) -> Dict[str, str]:
    """Split `k=v k2="v 2" k3='a b'` into a dict; values keep their quotes (decode with decode_string).

    Raw records quote only values without spaces (others are hex), so each space-separated token is one field; a
    token whose quoting does not close inside it sends the whole text to the character scanner."""
    fields: Dict[str, str] = {}
    for token in text.split(" "):
        key, eq, value = token.partition("=")
        if not eq:
            continue  # a bare word (ausearch prints e.g. 'config changed,') or an empty token
        if value and value[0] in "\"'" and (len(value) < 2 or value.find(value[0], 1) != len(value) - 1):
            return _scan_fields(text)
        if key not in fields:
            fields[key] = value
    return fields


def _scan_fields(text: str) -> Dict[str, str]:
    """split_fields for texts whose quoted values hold spaces (ausearch -i, USER records' msg='...')."""
    fields: Dict[str, str] = {}
    i = 0
    n = len(text)
    while i < n:
        while i < n and text[i] == " ":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0:
            break
        key = text[i:eq]
        if " " in key:  # a bare word (ausearch prints e.g. 'config changed,'): skip it
            i = text.find(" ", i)
            if i < 0:
                break
            continue
        j = eq + 1
        if j < n and text[j] in "\"'":
            close = text.find(text[j], j + 1)
            end = n if close < 0 else close + 1
        else:
            end = text.find(" ", j)
            if end < 0:
                end = n
        value = text[j:end]
        if key not in fields:
            fields[key] = value
        i = end
    return fields


def parse_line(line: str) -> Optional[AuditRecord]:
    """Parse one record line, raw or interpreted; None when the line is not an audit record."""
    line = line.rstrip("\r")
    node = ""
    if line.startswith("node="):
        node_field, _, line = line.partition(" ")
        node = node_field[5:]
    if not line.startswith("type="):
        return None
    type_field, _, rest = line.partition(" ")
    rtype = type_field[5:]
    if not rest.startswith("msg=audit("):
        return None
    header, sep, body = rest[10:].partition(")")
    if not sep:
        return None
    stamp, _, serial = header.rpartition(":")
    if not is_ascii_digits(serial):
        return None
    body = body.lstrip(":").lstrip(" ")
    body = body.removeprefix(": ")  # ausearch -i: 'msg=audit(<time>:<serial>) : fields'
    raw, _, tail = body.partition(GS)
    return AuditRecord(rtype, stamp, serial, node, raw, tail)


def arch_name(fields: Mapping[str, str]) -> str:
    return ARCH_NAMES.get(fields.get("arch", "").lower(), fields.get("arch", ""))


def syscall_name(record: AuditRecord) -> str:
    """Name of the syscall of a SYSCALL record: numeric per architecture, or the interpreted name."""
    value = record.fields.get("syscall", "")
    if is_ascii_digits(value):
        table = SYSCALL_NUMBERS.get(arch_name(record.fields))
        if table is None:
            return record.interpreted.get("SYSCALL", "syscall_" + value)
        name = table.get(int(value))
        return name if name is not None else record.interpreted.get("SYSCALL", "syscall_" + value)
    return value or record.interpreted.get("SYSCALL", "")


def execve_argv(records: Union[AuditRecord, Sequence[AuditRecord]]) -> List[str]:
    """argv of an execve from all of its EXECVE records, hex decoded.

    The kernel (kernel/auditsc.c, audit_log_execve_info) writes at most about 7.5 KB of arguments per EXECVE record and
    continues in further EXECVE records of the same event; only the first carries `argc`. An argument that does not fit
    is written as `aN_len=<length>` and parts `aN[0]=`, `aN[1]=`, ... (each quoted or hex on its own), possibly spread
    over records. Records are read in any order (Splunk hands records of one time stamp in no fixed order): arguments
    and parts are placed by their index. argv ends at the first argument that is missing (a lost record).

    Raw values never hold a space (quoted or hex), so each field is one token. In the interpreted `ausearch -i` form
    arguments are printed as they are, spaces included: each runs from its marker to the next expected one.
    """
    if isinstance(records, AuditRecord):
        records = [records]
    argc = -1
    whole: Dict[int, bytes] = {}
    parts: Dict[int, Dict[int, bytes]] = {}
    for record in records:
        count = record.fields.get("argc", "")
        if argc < 0 and is_ascii_digits(count) and len(count) < 8:
            argc = int(count)
        interpreted = record.epoch is None
        pieces = _interpreted_pieces(record.text) if interpreted else [
            (key, value) for key, value in record.fields.items() if key[:1] == "a"]
        for key, value in pieces:
            name, bracket, rest = key.partition("[")
            index = name[1:]
            if not is_ascii_digits(index) or len(index) > 7:
                continue
            if bracket:
                part = rest[:-1]
                if rest.endswith("]") and is_ascii_digits(part) and len(part) < 8:
                    parts.setdefault(int(index), {}).setdefault(int(part), _string_bytes(value, interpreted))
            else:
                whole.setdefault(int(index), _string_bytes(value, interpreted))
    argv: List[str] = []
    for number in range(max(argc, 0)):
        if number in whole:
            argv.append(whole[number].decode("utf-8", "replace"))
            continue
        pieces_of = parts.get(number)
        if not pieces_of or 0 not in pieces_of:
            break
        joined = []
        piece = 0
        while piece in pieces_of:
            joined.append(pieces_of[piece])
            piece += 1
        argv.append(b"".join(joined).decode("utf-8", "replace"))
    return argv


def _string_bytes(value: str, interpreted: bool = False) -> bytes:
    """The bytes of an audit string value (quoted, or bare upper-case hex; as printed when interpreted)."""
    if interpreted:
        return value.encode("utf-8", "surrogateescape")
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].encode("utf-8", "surrogateescape")
    if value and len(value) % 2 == 0 and not value.strip(_HEX_DIGITS):
        return bytes.fromhex(value)
    return value.encode("utf-8", "surrogateescape")


def _marker_at(text: str, position: int) -> str:
    """The argument marker (`a3`, `a3_len`, `a3[1]`) whose ` <marker>=` starts at `position`, else ""."""
    end = position + 2
    while end < len(text) and text[end].isascii() and text[end].isdigit():
        end += 1
    if end == position + 2:
        return ""
    if text.startswith("=", end):
        return text[position + 1:end]
    if text.startswith("_len=", end):
        return text[position + 1:end + 4]
    if text.startswith("[", end):
        close = text.find("]=", end)
        if close > end + 1 and is_ascii_digits(text[end + 1:close]):
            return text[position + 1:close + 1]
    return ""


def _follows(previous: str, marker: str) -> bool:
    """Whether `marker` may come right after `previous` in an EXECVE record (kernel order)."""
    if not previous:
        return True
    name, bracket, part = previous.partition("[")
    if name.endswith("_len"):
        return marker == name[:-4] + "[0]"
    following = "a%d" % (int(name[1:]) + 1)
    if marker in (following, following + "_len"):
        return True
    return bool(bracket) and marker == "%s[%d]" % (name, int(part[:-1]) + 1)


def _interpreted_pieces(text: str) -> List[Tuple[str, str]]:
    """(marker, value) of an `ausearch -i` EXECVE record: each value runs to the next marker that may follow."""
    text = " " + text.rstrip()
    found: List[Tuple[str, int]] = []
    position = text.find(" a")
    while position >= 0:
        marker = _marker_at(text, position)
        if marker and _follows(found[-1][0] if found else "", marker):
            found.append((marker, position))
        position = text.find(" a", position + 1)
    pieces = []
    for number, (marker, start) in enumerate(found):
        end = found[number + 1][1] if number + 1 < len(found) else len(text)
        if not marker.endswith("_len"):
            pieces.append((marker, text[start + len(marker) + 2:end].strip()))
    return pieces


def proctitle(record: AuditRecord) -> List[str]:
    """Command line of a PROCTITLE record: NUL-separated hex, one quoted word, or (ausearch -i) spaced text."""
    value = record.fields.get("proctitle", "")
    if len(value) >= 2 and value[0] == '"':
        return [value[1:-1]]
    if value and len(value) % 2 == 0 and not value.strip(_HEX_DIGITS):
        return [p.decode("utf-8", "replace") for p in bytes.fromhex(value).split(b"\x00") if p]
    _, found, rest = record.text.partition("proctitle=")
    return rest.split() if found else []


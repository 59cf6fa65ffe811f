"""The evasion corpus' transforms of host event logs: Linux audit records, Windows event XML and text, ESXi shell
history (the container-spec transforms and the registry are in tests/integration/evasion.py). Each transform rewrites
events a REAL sample holds and returns None when nothing of what it changes is there."""
import re
from typing import List, Optional

PAD = "A" * 8000  # longer than the kernel's 7,500-byte EXECVE piece and dockerd's 4 KiB debug body limit
RUNTIME_EXE = "/usr/local/bin/runc"
SHELL_LEGAL_DIR = "/tmp/<Event><EventID>1</EventID>"


def _lines(text: str) -> List[str]:
    return text.split("\n")


def _changed(before: str, after: str) -> Optional[str]:
    return after if after != before else None


# ------------------------------------------------------------------------------------ Linux audit (linux:audit)
_EXE = re.compile(r' exe="([^"]*)"')
_COMM = re.compile(r' comm="([^"]*)"')
_SERIAL = re.compile(r"msg=audit\(([0-9.]+:[0-9]+)\)")
_SHIM_COMM = ("containerd-shim", "containerd-shim-runc-v2", "conmon")
TOOLS = ("nsenter", "unshare", "chroot", "mount", "debugfs", "keyctl", "docker")


def _audit(sourcetype: str) -> bool:
    return sourcetype == "linux:audit"


def runtime_named(text: str, sourcetype: str) -> Optional[str]:
    """Every process whose parent is a container shim (a container's first process) renamed to the runtime's name:
    exe and comm say runc, as after `cp /bin/sh /usr/local/bin/runc` inside the container."""
    if not _audit(sourcetype):
        return None
    shims = set()
    for line in _lines(text):
        comm = _COMM.search(line)
        if line.startswith("type=SYSCALL") and comm and comm.group(1) in _SHIM_COMM:
            shims.add(re.search(r" pid=(\d+)", line).group(1))  # type: ignore[union-attr]
    renamed = set()
    out = []
    for line in _lines(text):
        ppid = re.search(r" ppid=(\d+)", line)
        exe = _EXE.search(line)
        if line.startswith("type=SYSCALL") and ppid and ppid.group(1) in shims and exe and \
                not exe.group(1).endswith(("/runc", "containerd-shim-runc-v2")):
            line = _COMM.sub(' comm="runc"', _EXE.sub(' exe="{}"'.format(RUNTIME_EXE), line, 1), 1)
            serial = _SERIAL.search(line)
            if serial:
                renamed.add(serial.group(1))
        out.append(line)
    final = []
    for line in out:
        serial = _SERIAL.search(line)
        if line.startswith("type=PATH") and serial and serial.group(1) in renamed and " item=0 " in line:
            line = re.sub(r' name="[^"]*"', ' name="{}"'.format(RUNTIME_EXE), line, 1)
        final.append(line)
    return _changed(text, "\n".join(final))


def shell_legal_paths(text: str, sourcetype: str) -> Optional[str]:
    """Escape tools copied into a directory named with `<`, `>` (the kernel logs such paths as they are) and run from
    there: the tools' exe and the executable's PATH record under /tmp/<Event><EventID>1</EventID>/. (Working
    directories stay: a relative path's meaning depends on them.)"""
    if not _audit(sourcetype):
        return None
    moved = {}
    out = []
    for line in _lines(text):
        exe = _EXE.search(line)
        if line.startswith("type=SYSCALL") and exe and exe.group(1).rsplit("/", 1)[-1] in TOOLS:
            new = SHELL_LEGAL_DIR + "/" + exe.group(1).rsplit("/", 1)[-1]
            line = line[:exe.start(1)] + new + line[exe.end(1):]
            serial = _SERIAL.search(line)
            if serial:
                moved[serial.group(1)] = new
        out.append(line)
    final = []
    for line in out:
        serial = _SERIAL.search(line)
        if line.startswith("type=PATH") and serial and serial.group(1) in moved and " item=0 " in line:
            line = re.sub(r' name="[^"]*"', ' name="{}"'.format(moved[serial.group(1)]), line, 1)
        final.append(line)
    return _changed(text, "\n".join(final))


_ARG = re.compile(r' a(\d+)=("(?:[^"]*)"|[0-9A-Fa-f]+|\(null\))')


def _execve_records(header: str, args: List[str], pad_at: int) -> List[str]:
    """The kernel's multi-record EXECVE form: `argc=` in the first record only, an argument over 7,500 bytes as
    a<n>_len=<bytes> a<n>[0]=... a<n>[1]=..., a new EXECVE record whenever one would pass 7,500 bytes."""
    records: List[str] = []
    current = header + " argc={}".format(len(args))
    for index, arg in enumerate(args):
        if index == pad_at:
            pieces = [arg[i:i + 7000] for i in range(0, len(arg), 7000)]
            for number, piece in enumerate(pieces):
                item = (" a{}_len={}".format(index, len(arg)) if number == 0 else "") + \
                    ' a{}[{}]="{}"'.format(index, number, piece)
                records.append(current)
                current = header + item
            continue
        item = ' a{}="{}"'.format(index, arg)
        if len(current) + len(item) > 7500:
            records.append(current)
            current = header
        current += item
    records.append(current)
    return records


def split_argv(text: str, sourcetype: str) -> Optional[str]:
    """The escape tools' argv padded past 7,500 bytes, so the kernel splits it over several EXECVE records: docker
    run/create gets `-e PAD=<8 KB>` before its other options (valid docker CLI), other tools a trailing argument."""
    if not _audit(sourcetype):
        return None
    out = []
    for line in _lines(text):
        if line.startswith("type=EXECVE") and " argc=" in line:
            args = [m.group(2) for m in _ARG.finditer(line)]
            quoted = all(a.startswith('"') for a in args)
            names = [a.strip('"') for a in args]
            if args and quoted and names[0].rsplit("/", 1)[-1] in TOOLS:
                header = line[:line.index(" argc=")]
                if names[0].rsplit("/", 1)[-1] == "docker" and len(names) > 1 and names[1] in ("run", "create"):
                    names[2:2] = ["-e", "PAD=" + PAD]
                    pad_at = 3
                else:
                    names.append(PAD)
                    pad_at = len(names) - 1
                out.extend(_execve_records(header, names, pad_at))
                continue
        out.append(line)
    return _changed(text, "\n".join(out))


# ------------------------------------------------------------------------------------------- Windows and ESXi
def windows_path_tricks(text: str, sourcetype: str) -> Optional[str]:
    """Image, ParentImage and TargetFilename under C:\\Windows written as C:\\Windows\\.\\X, C:/Windows/../Windows
    and \\\\?\\C:\\... (the kernel resolves them all to the same file)."""
    if not sourcetype.startswith(("XmlWinEventLog", "WinEventLog")):
        return None

    def trick(match: "re.Match[str]") -> str:
        return match.group(1) + "\\\\?\\C:\\Windows\\.\\System32\\..\\"

    return _changed(text, re.sub(r"(<Data Name='(?:Image|TargetFilename)'>)C:\\Windows\\(?!System32\\CExecSvc)",
                                 trick, text))


def windows_padded_command_line(text: str, sourcetype: str) -> Optional[str]:
    """Every command line padded to over 8,000 characters after the command (a cmd `rem` or a PowerShell comment)."""
    if not sourcetype.startswith(("XmlWinEventLog", "WinEventLog")):
        return None

    def pad(match: "re.Match[str]") -> str:
        value = match.group(2)
        tail = " ; #" + PAD if re.search(r"powershell|pwsh", value, re.IGNORECASE) else " &amp; rem " + PAD
        return match.group(1) + value + tail + match.group(3)

    text2 = re.sub(r"(<Data Name='CommandLine'>)([^<]*)(</Data>)", pad, text)
    text2 = re.sub(r"(Process Command Line:\t)([^\n]*)(\n)", lambda m: m.group(1) + m.group(2) + " & rem " + PAD
                   + m.group(3), text2)
    return _changed(text, text2)


def esxi_padded_shell(text: str, sourcetype: str) -> Optional[str]:
    """Each ESXi shell command run with an 8 KB environment assignment in front (PAD=... esxcli ...)."""
    if not sourcetype.startswith("vm"):
        return None
    return _changed(text, re.sub(r"(shell\[\d+\]:\s*(?:\[[^\]\n]*\]:\s*)?)(\S)", r"\g<1>PAD=" + PAD + r" \2", text))


def esxi_extra_whitespace(text: str, sourcetype: str) -> Optional[str]:
    """Shell commands with runs of spaces and tabs between their words."""
    if not sourcetype.startswith("vm"):
        return None
    out = []
    for line in _lines(text):
        match = re.search(r"shell\[\d+\]:\s*(?:\[[^\]\n]*\]:\s*)?", line)
        if match:
            line = line[:match.end()] + line[match.end():].replace(" ", " \t  ")
        out.append(line)
    return _changed(text, "\n".join(out))

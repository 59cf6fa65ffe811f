"""Windows path normalisation for the Windows analytic (AN0614): one canonical form to compare paths in.

Event logs write the same file many ways: any case, NT and Win32 prefixes (\\??\\, \\\\?\\, \\\\.\\), kernel device
names (\\Device\\HarddiskVolume3\\...), forward slashes, environment variables (%SystemRoot%), trailing separators,
. and .. components and 8.3 short names (C:\\PROGRA~1). `normalise` reduces them to lower-case components with a
volume; `under` tells whether a path lies below one of the restricted directories.

Volumes:
- ``drive``: a drive letter (``c:``);
- ``device``: ``\\Device\\HarddiskVolumeN`` or ``\\\\?\\Volume{GUID}``, a host volume whose letter the event does not
  say; it is compared with restricted directories on any drive (conservative);
- ``container``: a container's own storage (``\\Device\\VhdHardDisk{...}``, docker's ``windowsfilter`` and
  containerd's snapshot folders): never a host directory;
- ``unc``: ``\\\\server\\share``; ``relative``: no volume at all (never under a restricted directory).
"""
import functools
import re
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

# Variables whose value is fixed on a default Windows install. Per-user ones (%TEMP%, %USERPROFILE%) are not.
DEFAULT_ENVIRONMENT: Dict[str, str] = {
    "systemroot": "C:\\Windows",
    "windir": "C:\\Windows",
    "systemdrive": "C:",
    "programdata": "C:\\ProgramData",
    "allusersprofile": "C:\\ProgramData",
    "programfiles": "C:\\Program Files",
    "programw6432": "C:\\Program Files",
    "programfiles(x86)": "C:\\Program Files (x86)",
    "commonprogramfiles": "C:\\Program Files\\Common Files",
    "commonprogramw6432": "C:\\Program Files\\Common Files",
    "commonprogramfiles(x86)": "C:\\Program Files (x86)\\Common Files",
    "public": "C:\\Users\\Public",
}

# 8.3 names Windows gives the root folders of a default install (creation order decides the ~N).
DEFAULT_SHORT_NAMES: Dict[str, str] = {
    "progra~1": "program files",
    "progra~2": "program files (x86)",
    "progra~3": "programdata",
}

_ENV_VAR = re.compile(r"%([A-Za-z0-9_()]+)%")
_DRIVE = re.compile(r"^([A-Za-z]):(?:[\\/]|$)")
_HARDDISK_VOLUME = re.compile(r"^[\\/]device[\\/](harddiskvolume\d+)(?=[\\/]|$)", re.IGNORECASE)
_VHD_DISK = re.compile(r"^[\\/]device[\\/](vhdharddisk\{[0-9a-f-]+\})(?=[\\/]|$)", re.IGNORECASE)
_VOLUME_GUID = re.compile(r"^(volume\{[0-9a-f-]+\})(?=[\\/]|$)", re.IGNORECASE)
_SHORT_NAME = re.compile(r"^([^~.\s]{1,6})~(\d+)(\.[^.]{0,3})?$")
_SEPARATORS = re.compile(r"[\\/]+")
_SHORT_NAME_DROPPED = re.compile(r"[\s.+,;=\[\]]")  # characters an 8.3 short name leaves out of its stem
_NT_PREFIXES = ("\\\\?\\", "\\??\\", "\\\\.\\", "//?/", "//./")
# Where container runtimes keep a container's files on the host: writes there are the container's own layer.
_CONTAINER_LAYER_ROOTS: Tuple[Tuple[str, ...], ...] = (
    ("programdata", "docker", "windowsfilter"),
    ("programdata", "containerd", "root", "io.containerd.snapshotter.v1.windows", "snapshots"),
)


class WinPath(NamedTuple):
    """A normalised path: `volume_kind` (drive, device, container, unc, relative), `volume` and lower-case parts."""

    volume_kind: str
    volume: str
    parts: Tuple[str, ...]
    short_name_guess: bool = False

    def text(self) -> str:
        """Forward-slash form, e.g. ``c:/windows/system32``; device volumes as ``<harddiskvolume3>``."""
        if self.volume_kind == "drive":
            head = self.volume
        elif self.volume_kind == "unc":
            head = "//" + self.volume
        elif self.volume_kind == "relative":
            return "/".join(self.parts)
        else:
            head = "<" + self.volume + ">"
        return head + "/" + "/".join(self.parts) if self.parts else head + "/"


def expand_environment(path: str, environment: Mapping[str, str] = DEFAULT_ENVIRONMENT) -> Tuple[str, bool]:
    """Replace %VAR% with its default value; the flag says whether an unknown variable is left in the path."""
    unknown = False

    def replace(match: "re.Match[str]") -> str:
        nonlocal unknown
        value = environment.get(match.group(1).lower())
        if value is None:
            unknown = True
            return match.group(0)
        return value

    return _ENV_VAR.sub(replace, path), unknown


def _strip_quotes(path: str) -> str:
    text = path.strip()
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def normalise(path: str, environment: Mapping[str, str] = DEFAULT_ENVIRONMENT) -> WinPath:
    """Canonical form of a Windows path as event logs write it. Never raises: odd input becomes a relative path."""
    if environment is DEFAULT_ENVIRONMENT:  # the same images and targets recur in every chunk: remember them
        return _normalise_default(path)
    return _normalise(path, environment)


@functools.lru_cache(maxsize=8192)
def _normalise_default(path: str) -> WinPath:
    return _normalise(path, DEFAULT_ENVIRONMENT)  # a WinPath is immutable, so sharing the cached one is safe


def _normalise(path: str, environment: Mapping[str, str]) -> WinPath:
    text, _ = expand_environment(_strip_quotes(path), environment)
    lowered = text.lower()
    if lowered.startswith("\\systemroot\\") or lowered == "\\systemroot":  # kernel form used for drivers
        text = environment.get("systemroot", "C:\\Windows") + text[len("\\systemroot"):]
    for prefix in _NT_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix):]
            if text[:4].lower() in ("unc\\", "unc/"):
                text = "\\\\" + text[4:]
            elif text[:11].lower() in ("globalroot\\", "globalroot/"):
                text = text[10:]  # \\?\GLOBALROOT\Device\... is the kernel device path
            break
    volume_kind, volume, rest = _split_volume(text)
    parts: List[str] = []
    for part in _SEPARATORS.split(rest):
        part = part.strip().rstrip(".").strip().lower() if part not in (".", "..") else part
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    guess = False
    if volume_kind in ("drive", "device", "unc") and parts and parts[0] in DEFAULT_SHORT_NAMES:
        parts[0] = DEFAULT_SHORT_NAMES[parts[0]]
    if any(_SHORT_NAME.match(p) for p in parts):
        guess = True
    if volume_kind in ("drive", "device") and _is_container_layer(tuple(parts)):
        volume_kind, volume = "container", "layer"
    return WinPath(volume_kind, volume, tuple(parts), guess)


def _split_volume(text: str) -> Tuple[str, str, str]:
    drive = _DRIVE.match(text)
    if drive:
        return "drive", drive.group(1).lower() + ":", text[2:]
    vhd = _VHD_DISK.match(text)
    if vhd:
        return "container", vhd.group(1).lower(), text[vhd.end():]
    harddisk = _HARDDISK_VOLUME.match(text)
    if harddisk:
        return "device", harddisk.group(1).lower(), text[harddisk.end():]
    guid = _VOLUME_GUID.match(text)
    if guid:
        return "device", guid.group(1).lower(), text[guid.end():]
    if text.startswith(("\\\\", "//")):
        pieces = [p for p in _SEPARATORS.split(text) if p]
        if len(pieces) >= 2:
            return "unc", (pieces[0] + "/" + pieces[1]).lower(), "/".join(pieces[2:])
    return "relative", "", text


def _is_container_layer(parts: Tuple[str, ...]) -> bool:
    return any(parts[:len(root)] == root and len(parts) > len(root) for root in _CONTAINER_LAYER_ROOTS)


def is_container_volume(path: str) -> bool:
    """True when the path is a container's own storage (VHD disk or a runtime's layer folder)."""
    return normalise(path).volume_kind == "container"


def parse_dir_list(value: str) -> List[WinPath]:
    """Parse the escape_restricted_host_dirs value ("C:/Windows,C:/ProgramData", backslashes accepted too)."""
    dirs: List[WinPath] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        path = normalise(item)
        if path.volume_kind not in ("drive", "unc"):
            raise ValueError("restricted directory {!r} needs a drive letter (C:/Windows) or a UNC share "
                             "(//server/share/dir)".format(item))
        dirs.append(path)
    return dirs


def _component_matches(actual: str, wanted: str) -> bool:
    if actual == wanted:
        return True
    short = _SHORT_NAME.match(actual)
    if not short:
        return False
    # An unresolved 8.3 name (PROGRA~4, DOCUME~1) matches a long name whose short stem it is; a name that is
    # already valid 8.3 (windows) has no short alias.
    base, _, extension = wanted.rpartition(".") if "." in wanted else (wanted, "", "")
    if len(base) <= 8 and len(extension) <= 3 and " " not in wanted and wanted.count(".") <= 1:
        return False
    stem = _SHORT_NAME_DROPPED.sub("", wanted)[:6]
    return bool(stem) and short.group(1) == stem


def under(path: WinPath, directories: Sequence[WinPath]) -> Optional[WinPath]:
    """The first restricted directory that contains `path` (or is it), else None. Whole components only."""
    if path.volume_kind in ("container", "relative"):
        return None
    for directory in directories:
        if path.volume_kind == "drive" and directory.volume_kind == "drive" and path.volume != directory.volume:
            continue
        if path.volume_kind == "unc" and (directory.volume_kind != "unc" or path.volume != directory.volume):
            continue
        if path.volume_kind in ("drive", "device") and directory.volume_kind == "unc":
            continue
        if len(path.parts) < len(directory.parts):
            continue
        if all(_component_matches(a, w) for a, w in zip(path.parts, directory.parts)):
            return directory
    return None

"""Windows path normalisation and the restricted-directory match: the traps a Windows path can set."""
import pytest

from escape_engine import winpath

DEFAULT_DIRS = "C:/Windows,C:/ProgramData,C:/Program Files,C:/Program Files (x86)"
DIRS = winpath.parse_dir_list(DEFAULT_DIRS)


@pytest.mark.parametrize("path, expected", [
    ("C:\\Windows\\System32\\cmd.exe", "c:/windows/system32/cmd.exe"),
    ("c:\\WINDOWS\\SyStEm32\\CMD.EXE", "c:/windows/system32/cmd.exe"),
    ("\\\\?\\C:\\Windows\\x.dll", "c:/windows/x.dll"),
    ("\\??\\C:\\Windows\\x.dll", "c:/windows/x.dll"),
    ("\\\\.\\C:\\Windows\\x.dll", "c:/windows/x.dll"),
    ("C:/Windows/System32/", "c:/windows/system32"),
    ("C:\\Windows\\\\System32\\\\", "c:/windows/system32"),
    ("%SystemRoot%\\System32\\x", "c:/windows/system32/x"),
    ("%windir%\\Temp\\x", "c:/windows/temp/x"),
    ("%ProgramData%\\Microsoft\\x", "c:/programdata/microsoft/x"),
    ("%ProgramFiles(x86)%\\App\\a.exe", "c:/program files (x86)/app/a.exe"),
    ("\\SystemRoot\\System32\\drivers\\x.sys", "c:/windows/system32/drivers/x.sys"),
    ("C:\\PROGRA~1\\App\\a.exe", "c:/program files/app/a.exe"),
    ("C:\\PROGRA~2\\App\\a.exe", "c:/program files (x86)/app/a.exe"),
    ("C:\\PROGRA~3\\App\\a.exe", "c:/programdata/app/a.exe"),
    ("C:\\Users\\..\\Windows\\x", "c:/windows/x"),
    ("C:\\Windows\\.\\x", "c:/windows/x"),
    ("C:\\Windows. \\x", "c:/windows/x"),
    ('"C:\\Windows\\x.exe"', "c:/windows/x.exe"),
    ("\\Device\\HarddiskVolume3\\Windows\\x", "<harddiskvolume3>/windows/x"),
    ("\\\\?\\GLOBALROOT\\Device\\HarddiskVolume2\\Windows", "<harddiskvolume2>/windows"),
    ("\\\\server\\share\\dir\\", "//server/share/dir"),
    ("\\\\?\\UNC\\server\\share\\dir", "//server/share/dir"),
])
def test_normalise_writes_every_spelling_one_way(path: str, expected: str) -> None:
    assert winpath.normalise(path).text() == expected


@pytest.mark.parametrize("path", [
    "C:\\Windows\\System32\\evil.dll",
    "c:/windows",
    "\\\\?\\C:\\WINDOWS\\system32\\x",
    "\\??\\C:\\ProgramData\\x",
    "%SystemRoot%\\Tasks\\x.job",
    "%ALLUSERSPROFILE%\\Start Menu\\x",
    "C:\\PROGRA~1\\Common Files\\x.dll",
    "C:\\PROGRA~2\\x",
    "C:\\PROGRA~4\\x",  # an unresolved short name of "Program Files*" is matched conservatively
    "C:\\Users\\Public\\..\\..\\Windows\\x",
    "\\Device\\HarddiskVolume2\\Windows\\x",  # host volume of unknown letter: compared on any drive
    "\\\\?\\Volume{0a1b2c3d-0000-0000-0000-000000000000}\\ProgramData\\x",
])
def test_paths_under_restricted_dirs_match(path: str) -> None:
    assert winpath.under(winpath.normalise(path), DIRS) is not None


@pytest.mark.parametrize("path", [
    "C:\\Windows2\\x",               # prefix of a component is not the component
    "C:\\WindowsApps\\x",
    "C:\\ProgramDataBackup\\x",
    "D:\\Windows\\x",                # another drive letter
    "C:\\Users\\admin\\Windows\\x",  # the name deeper down
    "C:\\WINDOW~1\\x",               # Windows is valid 8.3 itself: it has no short alias
    "%TEMP%\\x",                     # unknown variable: not resolved, not matched
    "Windows\\System32\\x",          # relative
    "\\Device\\VhdHardDisk{7d3c1a52-4b1e-4c8a-9f0e-2a6b5c9d8e11}\\Windows\\x",  # a container's own disk
    "C:\\ProgramData\\Docker\\windowsfilter\\4f2a9c\\Files\\Windows\\x",          # a container's layer on the host
    "C:\\ProgramData\\containerd\\root\\io.containerd.snapshotter.v1.windows\\snapshots\\12\\Files\\Windows\\x",
    "\\\\server\\share\\Windows\\x",
])
def test_paths_outside_restricted_dirs_do_not_match(path: str) -> None:
    assert winpath.under(winpath.normalise(path), DIRS) is None


def test_the_tunable_rendering_with_forward_slashes_and_backslashes_both_parse() -> None:
    forward = winpath.parse_dir_list("C:/Windows,//fs01/share/tools")
    backward = winpath.parse_dir_list("C:\\Windows, \\\\fs01\\share\\tools\\")
    assert forward == backward
    assert winpath.under(winpath.normalise("\\\\FS01\\Share\\Tools\\x.exe"), forward) is not None


def test_a_restricted_dir_without_a_drive_is_refused() -> None:
    with pytest.raises(ValueError, match="drive letter"):
        winpath.parse_dir_list("Windows")


def test_unknown_variable_is_reported() -> None:
    assert winpath.expand_environment("%TEMP%\\x") == ("%TEMP%\\x", True)
    assert winpath.expand_environment("%WinDir%\\x") == ("C:\\Windows\\x", False)


from hypothesis import given, settings
from hypothesis import strategies as st

_PATH_ALPHABET = st.sampled_from(list("Cc:\\/.?~%$ {}()-_1WindowsProgramDat\"'") + ["\\Device\\HarddiskVolume2",
                                                                                       "%SystemRoot%", "PROGRA~1", ".."])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PATH_ALPHABET, max_size=12).map("".join))
def test_normalise_never_raises_and_is_stable(path: str) -> None:
    first = winpath.normalise(path)
    assert all(part and part not in (".", "..") and "/" not in part and "\\" not in part for part in first.parts)
    if first.volume_kind == "drive":
        again = winpath.normalise(first.text())
        assert again.parts == first.parts and again.volume == first.volume
    winpath.under(first, DIRS)  # never raises either

"""The tunable schema: what each kind accepts, how it normalises, and that rendered SPL is one literal."""
import pytest

from escape_setup import tunables
from tools.content import tunable_specs

SPECS = tunable_specs()


def spec(macro: str) -> tunables.TunableSpec:
    return SPECS[macro]


@pytest.mark.parametrize("value, rendered", [
    ("/var/log", '"/var/log"'),
    ("/var/log/, /etc//localtime", '"/var/log,/etc/localtime"'),
    ("/var/./log/../lib", '"/var/lib"'),
    ("//run/containerd", '"/run/containerd"'),
    ("/var/log,/var/log", '"/var/log"'),
    ("", '""'),
])
def test_host_paths_are_normalised(value: str, rendered: str) -> None:
    assert tunables.render(spec("escape_allowed_host_paths"), value) == rendered


@pytest.mark.parametrize("value, message", [
    ("var/log", "absolute Unix path"),
    ('/var/log"', "character '\"' is not allowed"),
    ("/var/log|delete", "character '|' is not allowed"),
    ("/var/`escape_auditd`", "character '`' is not allowed"),
    ("/var/log\n| delete", "character '\\n' is not allowed"),
    ("/var/[x]", "character '[' is not allowed"),
    ("/var/l\u00f6g", "is not allowed"),
    ("/a" * 3000, "at most 4096"),
])
def test_host_paths_reject_with_what_is_allowed(value: str, message: str) -> None:
    with pytest.raises(ValueError, match="Allowed host paths") as err:
        tunables.render(spec("escape_allowed_host_paths"), value)
    assert message in str(err.value)


@pytest.mark.parametrize("macro, value, rendered", [
    ("escape_privileged_threshold", "0", "0"),
    ("escape_privileged_threshold", "100000", "100000"),
    ("escape_privileged_threshold", "007", "7"),
    ("escape_time_window", "1", "1"),
    ("escape_time_window", "86400", "86400"),
])
def test_numbers_render_bare(macro: str, value: str, rendered: str) -> None:
    assert tunables.render(spec(macro), value) == rendered


@pytest.mark.parametrize("macro, value", [
    ("escape_privileged_threshold", "100001"),
    ("escape_privileged_threshold", "-1"),
    ("escape_privileged_threshold", "5 OR 1=1"),
    ("escape_time_window", "0"),
    ("escape_time_window", "86401"),
    ("escape_time_window", ""),
])
def test_numbers_out_of_range_or_not_numbers_are_rejected(macro: str, value: str) -> None:
    with pytest.raises(ValueError):
        tunables.render(spec(macro), value)


def test_syscall_allowlist_accepts_only_inspected_syscalls() -> None:
    assert tunables.render(spec("escape_syscall_allowlist"), "keyctl, mount") == '"keyctl,mount"'
    with pytest.raises(ValueError, match="not one of the inspected syscalls"):
        tunables.render(spec("escape_syscall_allowlist"), "execve")


@pytest.mark.parametrize("value, rendered", [
    ("C:\\Windows", '"C:/Windows"'),
    ("c:/windows/, C:\\Program Files (x86)\\", '"c:/windows,C:/Program Files (x86)"'),
    ("\\\\fileserver\\share\\dir", '"//fileserver/share/dir"'),
    ("%SystemRoot%\\System32", None),
])
def test_restricted_dirs_need_a_drive_or_unc(value: str, rendered: str) -> None:
    target = spec("escape_restricted_host_dirs")
    if rendered is None:
        with pytest.raises(ValueError, match="drive letter"):
            tunables.render(target, value)
    else:
        assert tunables.render(target, value) == rendered


def test_module_names() -> None:
    assert tunables.render(spec("escape_allowed_kernel_modules"), "nvme_pcie, lsi_mr3") == '"nvme_pcie,lsi_mr3"'
    with pytest.raises(ValueError):
        tunables.render(spec("escape_allowed_kernel_modules"), "evil mod")


@pytest.mark.parametrize("macro", sorted(SPECS))
def test_every_default_is_valid_and_round_trips(macro: str) -> None:
    target = spec(macro)
    definition = tunables.render(target, target.default)
    assert tunables.parse_definition(target, definition) == tunables.normalise(target, target.default)


def test_render_all_is_all_or_nothing() -> None:
    values = {"escape_time_window": "60", "escape_allowed_host_paths": "relative/path"}
    with pytest.raises(ValueError):
        tunables.render_all(list(SPECS.values()), values)

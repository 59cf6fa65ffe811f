"""The facts every part of the add-on shares, each defined here once and imported everywhere else.

The engines, the setup page, the build's renderer and the tools all read these; a unit test
(tests/unit/test_one_owner.py) fails when a second definition of one of them appears.
"""
from typing import Dict, List, Mapping, Tuple, Union

# A Splunk field value: a string, or a list of strings for a multivalue field (no `|` unions: Python 3.9).
Value = Union[str, List[str]]
# An event as a command receives it, and a result row as it emits one.
Record = Mapping[str, Value]
Row = Dict[str, Value]

# Alert severities, lowest first. `escape_severity` holds one of these names.
SEVERITIES: Tuple[str, ...] = ("informational", "low", "medium", "high", "critical")
SEVERITY_RANK: Dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}

# The syscalls the Linux analytic treats as escape primitives (unshare, setns, mounts, keyrings, root changes,
# handle opens, module loads). The setup page's allowlist may name only these; the audit rules and the eventtype
# select them.
ESCAPE_SYSCALLS: Tuple[str, ...] = (
    "unshare", "setns", "mount", "umount2", "keyctl", "add_key", "request_key", "pivot_root", "chroot",
    "open_by_handle_at", "init_module", "finit_module",
)

# The fields of a Linux alert row that say which container it is about (escape_engine.chains fills them from the
# lineage): the container's full id ("" when nothing named it), and how the container was known, one of
# CONTAINER_IDENTITIES, strongest first: "exact" (its runtime's own arguments named it, or the kernel's audit
# container id), "device" (its processes ran from the overlay device a known container started on, and no other
# container had started on that device since), "uncertain" (a weaker sign: an anonymous device with no known owner,
# an LSM label, a stale `runc init` title, a pod's shim; such a container never shares a chain with another one).
CONTAINER_ID_FIELD = "escape_container_id"
IDENTITY_FIELD = "escape_identity"
CONTAINER_IDENTITIES: Tuple[str, ...] = ("exact", "device", "uncertain")

# Splunk object names derived from a detection's title and slug.
SAVED_SEARCH_FORMAT = "Escape to Host - {} - Rule"
FILTER_MACRO_FORMAT = "escape_{}_filter"


def saved_search_name(title: str) -> str:
    """The savedsearches.conf stanza of a detection with this title."""
    return SAVED_SEARCH_FORMAT.format(title)


def filter_macro_name(slug: str) -> str:
    """The empty per-detection hook (`search *`) that every detection search ends with."""
    return FILTER_MACRO_FORMAT.format(slug)

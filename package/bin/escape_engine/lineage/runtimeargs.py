"""What a container runtime's own command line says: the container a runtime call (runc, crun) works on, and the
container or pod a monitor (a containerd shim, conmon) runs.

These are facts only about a process that lineage.attribution already knows, by what the kernel says, to be the
runtime (`is_runtime`: a runtime binary on a host device, or a re-exec of its runtime parent): any process can give
itself these names and arguments.
"""
from typing import List, NamedTuple

from .table import basename

SHIMS = ("containerd-shim", "containerd-shim-runc-v2", "containerd-shim-runc-v1", "conmon")
RUNTIME_CLIS = ("runc", "crun")
# The runtime calls that start a process in the container: its first process (create, run) or another one (exec).
STARTING_VERBS = ("create", "run", "exec")
# runc's and crun's options (global and per verb) whose value is the next argument unless written `--option=value`;
# every other option is a switch. The first argument after the verb that is no option is the container id.
VALUE_OPTIONS = frozenset((
    "--log", "--log-format", "--log-level", "--root", "--criu", "--rootless", "--cgroup-manager",
    "--bundle", "-b", "--console-socket", "--pid-file", "--preserve-fds", "--cwd", "--env", "-e", "--user", "-u",
    "--additional-gids", "-g", "--process", "-p", "--process-label", "--apparmor", "--cap", "-c", "--cgroup",
    "--config", "-f", "--signal", "-s",
))
# The containerd namespace whose shims each run a whole pod (the CRI plugin's: Kubernetes groups a pod's containers
# under its sandbox's shim); docker's (moby), ctr's (default) and the others start one shim per container.
POD_NAMESPACES = ("k8s.io",)


class RuntimeCall(NamedTuple):
    """A runc / crun call: its verb and the container id it names ("" when it names none)."""
    verb: str
    container_id: str


class ShimArgs(NamedTuple):
    """A monitor's command line: the id it names, and whether it runs exactly one container (conmon, docker's
    containerd shim) rather than a pod's (a Kubernetes containerd shim names the pod's sandbox)."""
    container_id: str
    one_container: bool


def runtime_call(argv: List[str]) -> RuntimeCall:
    """The verb and container id of a runc / crun command line (argv[0] is the program)."""
    verb = ""
    takes_value = False
    for arg in argv[1:]:
        if takes_value:
            takes_value = False
            continue
        if arg.startswith("-"):
            takes_value = "=" not in arg and arg in VALUE_OPTIONS
            continue
        if not verb:
            verb = arg
            continue
        return RuntimeCall(verb, arg)
    return RuntimeCall(verb, "")


def _flag_value(argv: List[str], flags: List[str]) -> str:
    for position, arg in enumerate(argv):
        for flag in flags:
            if arg == flag and position + 1 < len(argv):
                return argv[position + 1]
            if arg.startswith(flag + "="):
                return arg[len(flag) + 1:]
    return ""


def shim_args(program: str, argv: List[str]) -> ShimArgs:
    """What a monitor's command line names; `program` is the basename of its executable."""
    if program == "conmon":
        cid = _flag_value(argv, ["-c", "--cid"])
        return ShimArgs(cid, bool(cid))
    cid = _flag_value(argv, ["-id", "--id"])
    namespace = _flag_value(argv, ["-namespace", "--namespace"])
    return ShimArgs(cid, bool(cid) and namespace not in POD_NAMESPACES)


def container_id_from_argv(argv: List[str]) -> str:
    """Container id from a shim (`-id <id>`), conmon (`-c <id>` / `--cid`) or runc/crun (`exec|create|run|...
    <id>`) argv, by the program argv[0] names (callers vouch for the process)."""
    program = basename(argv[0]) if argv else ""
    if program in SHIMS:
        return shim_args(program, argv).container_id
    if program in RUNTIME_CLIS:
        return runtime_call(argv).container_id
    return ""

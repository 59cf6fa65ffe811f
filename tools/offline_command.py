"""Run one of the add-on's command scripts offline, its persisted state kept in a folder instead of the KV store.

    argv(script, state_dir)     the command line; then SCP v2 on stdin/stdout, exactly as `python SCRIPT`

In Splunk a stateful command keeps its state in the app's KV store (escape_io.store.KVStore). The replay, the tests
and the benchmark have no splunkd, so they start the script through this launcher: it loads the script with runpy
under a module name other than __main__ (its own module-level `dispatch(...)` then does nothing), hands the command
class a file store with the KV store's limits (tools/kvstandin.py over STATE_DIR) and calls splunklib's dispatch itself. Nothing in the
add-on reads where its state lives from the environment; the choice is made here, outside the package.
"""
import runpy
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence

STANDIN = Path(__file__).resolve().with_name("kvstandin.py")  # read now: main() points __file__ at the script
RUN_NAME = "escape_offline_command"  # anything but __main__: the script's own dispatch(...) does nothing


# Started with `python -c`, the launcher puts the working folder (the search's empty dispatch folder) first on the
# import path, not tools/: the script's own folder comes first on PYTHONPATH, which every caller sets, as `python SCRIPT`
# would have it. No sys.path edit is needed.
_BOOT = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"


def argv(script: Path, state_dir: Path, python: str = sys.executable) -> List[str]:
    """The command line that runs `script` with its state in `state_dir` (its folder must lead PYTHONPATH)."""
    return [python, "-c", _BOOT, str(Path(__file__).resolve()), str(Path(state_dir).absolute()),
            str(Path(script).absolute())]


def command_class(namespace: Dict[str, Any], script: Path) -> type:
    """The one search command class the script defines."""
    from splunklib.searchcommands.search_command import SearchCommand  # the built lib/, on the path by now
    found = [v for v in namespace.values()
             if isinstance(v, type) and issubclass(v, SearchCommand) and v.__module__ == RUN_NAME]
    if len(found) != 1:
        raise SystemExit("{}: expected one search command class, found {}".format(script, len(found)))
    return found[0]


def main(args: Sequence[str]) -> None:
    if len(args) != 2:
        raise SystemExit("usage: through offline_command.argv(SCRIPT, STATE_DIR)")
    state_dir, script = Path(args[0]).absolute(), Path(args[1]).absolute()
    # As `python SCRIPT` would have it: the script as argv[0] and as __main__'s file (splunklib's environment finds the
    # app's folder from it).
    sys.argv = [str(script)]
    sys.modules["__main__"].__file__ = str(script)
    namespace = runpy.run_path(str(script), run_name=RUN_NAME)
    from splunklib.searchcommands import dispatch

    # The stand-in subclasses the script's own escape_io.store (its bin/ leads the path): loaded from this folder by
    # path, as the script is, because tools/ is not on a command's import path.
    standin = runpy.run_path(str(STANDIN), run_name="escape_kvstandin")
    command: Any = command_class(namespace, script)
    command.state_store = standin["LimitedStore"](str(state_dir))
    dispatch(command, [str(script)], sys.stdin, sys.stdout, "__main__")  # no further argv: SCP v2, as splunkd


if __name__ == "__main__":
    main(sys.argv[-2:])

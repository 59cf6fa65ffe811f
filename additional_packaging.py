"""ucc-gen hook, run after ucc-gen has copied package/: renders the generated conf files into output/ (macros.conf and
savedsearches.conf from content/, searchbnf.conf from the command wrappers) and the setup manifest."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tools.commands import write_searchbnf  # noqa: E402
from tools.content import write_generated  # noqa: E402
from tools.setup_manifest import write_manifest  # noqa: E402


def additional_packaging(ta_name: str) -> None:
    write_generated(Path(__file__).resolve().parent / "output" / ta_name)
    write_searchbnf(Path(__file__).resolve().parent / "output" / ta_name)
    write_manifest(Path(__file__).resolve().parent / "output" / ta_name)

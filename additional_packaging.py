"""ucc-gen hook, run after ucc-gen has copied package/: renders the generated conf files into output/ (macros.conf and
savedsearches.conf from content/, searchbnf.conf from the command wrappers) and the setup manifest.

The repository root and package/bin reach it on PYTHONPATH: build.sh exports them before it runs ucc-gen.
"""
from pathlib import Path

from tools.commands import write_searchbnf
from tools.content import write_generated
from tools.setup_manifest import write_manifest


def additional_packaging(ta_name: str) -> None:
    write_generated(Path(__file__).resolve().parent / "output" / ta_name)
    write_searchbnf(Path(__file__).resolve().parent / "output" / ta_name)
    write_manifest(Path(__file__).resolve().parent / "output" / ta_name)

"""ucc-gen hook: renders the conf files that content/ owns (macros.conf, later savedsearches.conf) into output/.

The repository root and package/bin reach it on PYTHONPATH: build.sh exports them before it runs ucc-gen.
"""
from pathlib import Path

from tools.content import write_generated
from tools.setup_manifest import write_manifest


def additional_packaging(ta_name: str) -> None:
    write_generated(Path(__file__).resolve().parent / "output" / ta_name)
    write_manifest(Path(__file__).resolve().parent / "output" / ta_name)

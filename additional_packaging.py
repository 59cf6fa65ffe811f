"""ucc-gen hook: renders the conf files that content/ owns (macros.conf, later savedsearches.conf) into output/."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tools.content import write_generated  # noqa: E402
from tools.setup_manifest import write_manifest  # noqa: E402


def additional_packaging(ta_name: str) -> None:
    write_generated(Path(__file__).resolve().parent / "output" / ta_name)
    write_manifest(Path(__file__).resolve().parent / "output" / ta_name)

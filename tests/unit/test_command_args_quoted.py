"""Every comma list in an argument of one of our commands is quoted (finding="privileged,host_process"), in the
detection searches and in the dashboards, with the shipped macros expanded: SPL reads an unquoted comma as a
separator in several commands' argument syntax, and a quoted list is what the macros the setup page writes hold."""
import re
from typing import Dict, List

import pytest

from tests.conftest import ROOT
from tools import content, replay, spl

VIEWS = ROOT / "package" / "default" / "data" / "ui" / "views"
# name=value where the value is neither quoted nor a macro reference and holds a comma
UNQUOTED_LIST = re.compile(r"(?:^|\s)([a-z_]+)=((?![\"`])[^\s\"`]*,[^\s]*)")


def _macros() -> Dict[str, spl.Macro]:
    return replay.macro_table(content.CONTENT, {})   # the shipped macros and every detection's filter macro


def unquoted_lists(search: str) -> List[str]:
    found = []
    for pipe in spl.split_pipes(spl.expand_macros(spl.strip_comments(search), _macros())):
        name, _, arguments = pipe.strip().partition(" ")
        if name.startswith("escape"):
            found += ["{} {}={}".format(name, k, v) for k, v in UNQUOTED_LIST.findall(arguments)]
    return found


def searches() -> List[tuple]:
    items = [(d.slug, d.search) for d in content.detections()]
    for view in sorted(VIEWS.glob("*.xml")):
        for i, query in enumerate(re.findall(r"<query>(.*?)</query>", view.read_text(), flags=re.DOTALL)):
            items.append(("{}#{}".format(view.name, i), query.replace("&lt;", "<").replace("&gt;", ">")
                          .replace("&quot;", '"').replace("&amp;", "&")))
    return items


@pytest.mark.parametrize("name, search", searches(), ids=lambda v: v if isinstance(v, str) and "\n" not in v else "")
def test_comma_lists_in_command_arguments_are_quoted(name: str, search: str) -> None:
    assert unquoted_lists(search) == [], name


def test_the_check_sees_an_unquoted_list() -> None:
    assert unquoted_lists("search x | escapeinspect allowed=/ finding=privileged,host_process") == [
        "escapeinspect finding=privileged,host_process"]
    assert unquoted_lists('search x | escapeinspect allowed=/ finding="privileged,host_process"') == []

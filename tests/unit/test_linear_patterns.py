"""Every regular expression of the engine runs in time linear in its input: the attacker writes the event text.

The patterns are found by introspection (every re.Pattern among the globals of every escape_engine module, inside
tuples, lists and dicts too), so a new pattern is covered without being listed here; a pattern compiled anywhere else
(inline in a function) fails `test_every_engine_pattern_is_a_module_global`. For each pattern, the adversarial inputs
of tests/unit/adversarial.py are timed at 1x and 16x their length: linear is a ratio of about 16, quadratic 256. The
check is a ratio, not a wall-clock limit (best of several runs, re-measured before it fails), so a loaded machine
slows both sides alike.
"""
import ast
import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest

import escape_engine
from tests.unit import adversarial

LIMIT = 100  # linear is 16, quadratic 256, cubic 4,096: well under quadratic, with room for a loaded machine
REGEX_CALLS = {"compile", "search", "match", "fullmatch", "sub", "subn", "split", "findall", "finditer"}


def _engine_modules() -> List[Any]:
    modules = [escape_engine]
    for info in pkgutil.walk_packages(escape_engine.__path__, escape_engine.__name__ + "."):
        modules.append(importlib.import_module(info.name))
    return modules


def _patterns_in(value: Any, name: str, depth: int = 0) -> Iterator[Tuple[str, "re.Pattern[str]"]]:
    if isinstance(value, re.Pattern):
        if isinstance(value.pattern, str):
            yield name, value
    elif depth < 4 and isinstance(value, (tuple, list, frozenset, set)):
        for index, item in enumerate(value):
            yield from _patterns_in(item, "{}[{}]".format(name, index), depth + 1)
    elif depth < 4 and isinstance(value, dict):
        for key, item in value.items():
            yield from _patterns_in(item, "{}[{!r}]".format(name, key), depth + 1)


def engine_patterns() -> List[Tuple[str, "re.Pattern[str]"]]:
    found = {}
    for module in _engine_modules():
        for attribute, value in vars(module).items():
            for name, pattern in _patterns_in(value, attribute):
                found.setdefault(id(pattern), ("{}.{}".format(module.__name__, name), pattern))
    return sorted(found.values(), key=lambda item: item[0])


PATTERNS = engine_patterns()


def test_the_patterns_are_found() -> None:
    names = {name for name, _ in PATTERNS}
    assert len(PATTERNS) >= 40
    assert {"escape_engine.esxi._SHELL", "escape_engine.winsymlink._NEW_ITEM", "escape_engine.winevent._DATA",
            "escape_engine.docker._CALL"} <= names


def worst_growth(pattern: "re.Pattern[str]", tries: int = 5) -> Tuple[float, Tuple[str, str, str]]:
    """Screen every adversarial shape quickly (128 -> 2,048 characters, one run), then measure the suspects with
    care (512 -> 8,192, best of five, up to `tries` times): the worst confirmed ratio and its shape (the first one
    confirmed over the limit ends the search)."""
    screened = []
    for shape in adversarial.units(pattern):
        ratio, _ = adversarial.growth(pattern, shape, length=128, rounds=1, floor=0.0005)
        screened.append((ratio, shape))
    screened.sort(key=lambda item: -item[0])
    suspects = [s for r, s in screened if r > LIMIT / 2][:6] or [s for _, s in screened[:2]]
    worst: Tuple[float, Tuple[str, str, str]] = (0.0, ("", "", ""))
    for shape in suspects:
        ratio = adversarial.growth(pattern, shape, length=512)[0]
        done = 1
        while ratio >= LIMIT and done < tries:  # a busy machine slowed one side: measure again, keep the best
            ratio = min(ratio, adversarial.growth(pattern, shape, length=512)[0])
            done += 1
        worst = max(worst, (ratio, shape))
        if ratio >= LIMIT:
            break
    return worst


@pytest.mark.parametrize("name, pattern", PATTERNS, ids=[n for n, _ in PATTERNS])
def test_every_engine_pattern_runs_in_linear_time(name: str, pattern: "re.Pattern[str]") -> None:
    ratio, (head, unit, tail) = worst_growth(pattern)
    assert ratio < LIMIT, "{} grows {:.0f}x from 1x to 16x input on {!r} + {!r} * n + {!r}: nested or overlapping " \
        "unbounded quantifiers".format(name, ratio, head[:40], unit[:40], tail)


def test_the_check_catches_quadratic_and_cubic_patterns() -> None:
    """The measure itself: a known quadratic and a known cubic pattern fail, their linear rewrites pass."""
    for bad in (r"\bni\b[^|;]*?-itemtype\s+symboliclink", r"\besxcli\b.*\bsystem\s+module\s+load\b.*?-m\s+(\w+)",
                r"(?m)^ComputerName=(.*?)\s*$", r"(?s)<Data Name='([^']+)'>(.*?)</Data>"):
        assert worst_growth(re.compile(bad), tries=1)[0] > LIMIT, bad
    assert worst_growth(re.compile(r"\bni\b"))[0] < LIMIT


def _regex_calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                isinstance(node.func.value, ast.Name) and node.func.value.id == "re" and node.func.attr in REGEX_CALLS:
            yield node


def test_every_engine_pattern_is_a_module_global() -> None:
    """A pattern compiled inside a function, or a pattern string handed to re.search & co., escapes the timing check:
    every pattern is compiled once into a module global (or a tuple / dict of them) the introspection finds."""
    root = Path(escape_engine.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = set()
        for statement in tree.body:
            if isinstance(statement, (ast.Assign, ast.AnnAssign)):
                top_level.update(id(n) for n in ast.walk(statement))
        for call in _regex_calls(tree):
            if call.func.attr != "compile" or id(call) not in top_level:  # type: ignore[attr-defined]
                offenders.append("{}:{} re.{}".format(path.relative_to(root), call.lineno,
                                                      call.func.attr))  # type: ignore[attr-defined]
    assert offenders == []

"""Adversarial inputs for a regular expression, built from its own parse tree, and a growth measure.

An attacker writes the text the engine's patterns read (command lines, paths, file names, JSON). A pattern with nested
or overlapping unbounded quantifiers backtracks: its time grows with the square or the cube of the input. The inputs
below repeat what the pattern's quantified parts accept, the shapes that make such backtracking show:
- ``prefix``: what the pattern needs up to each of its top-level items, repeated ("kill 0 kill 0 ..."): every
  repetition is a new start for a search that then scans to the end;
- ``pump``: what the pattern needs before one quantifier, then one character its body accepts, repeated, then a
  character that makes the match fail (``"ComputerName=" + " " * n + "x"``), or the two together repeated
  (``"<Data Name='a'> " * n``: every repetition a new start that scans on to the end);
- ``classes``: every character the quantified parts accept, in one unit, repeated.

`growth` times a pattern's finditer over an input at 1x and at 16x its length (best of several runs, each run long
enough to measure) and returns the ratio: about 16 for a linear pattern, 256 for a quadratic one, 4,096 for a cubic.
"""
import gc
import re
import time
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

try:  # Python 3.11 moved the parser; sre_parse still imports there, with a DeprecationWarning
    import re._parser as sre  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_parse as sre  # type: ignore[no-redef,unused-ignore]

SAMPLE_CHARS = " a0-_/\\<>\"'=:.;|[](){}\n\tZ~%&,!x"
Node = Tuple[Any, Any]


def _name(op: Any) -> str:
    return str(op)


def _class_chars(items: Sequence[Node]) -> List[str]:
    """Characters an IN set accepts, a few of each kind (or, for a negated set, a few it does not exclude)."""
    negate = any(_name(op) == "NEGATE" for op, _ in items)
    members: List[str] = []
    for op, av in items:
        name = _name(op)
        if name == "LITERAL":
            members.append(chr(av))
        elif name == "RANGE":
            members.extend([chr(av[0]), chr(av[1])])
        elif name == "CATEGORY":
            members.extend(_category_chars(_name(av)))
    if not negate:
        return list(dict.fromkeys(members))
    probe = re.compile("[" + "".join(re.escape(m) for m in members) + "]") if members else None
    outside = [c for c in SAMPLE_CHARS if probe is None or not probe.match(c)]
    return outside[:6]


def _category_chars(name: str) -> List[str]:
    table = {"CATEGORY_DIGIT": ["0", "9"], "CATEGORY_SPACE": [" ", "\t"], "CATEGORY_WORD": ["a", "_", "0"],
             "CATEGORY_NOT_DIGIT": ["a", " "], "CATEGORY_NOT_SPACE": ["a", "-", "/"],
             "CATEGORY_NOT_WORD": [" ", "-", "/"]}
    return table.get(name, ["a"])


def chars(node: Node) -> List[str]:
    """Characters one item accepts (several for a class), [] for zero-width items."""
    op, av = node
    name = _name(op)
    if name == "LITERAL":
        return [chr(av)]
    if name == "NOT_LITERAL":
        return [c for c in SAMPLE_CHARS if ord(c) != av][:6]
    if name == "ANY":
        return [" ", "a", "-"]
    if name == "IN":
        return _class_chars(av)
    if name == "CATEGORY":
        return _category_chars(_name(av))
    return []


class Builder:
    """Example strings for a parsed pattern: `example(seq)` is one string the items match in order."""

    def __init__(self, pattern: "re.Pattern[str]") -> None:
        self.tree = sre.parse(pattern.pattern, pattern.flags)
        self.groups: dict = {}  # type: ignore[type-arg]

    def example(self, items: Sequence[Node]) -> str:
        return "".join(self.one(item) for item in items)

    def one(self, node: Node) -> str:
        op, av = node
        name = _name(op)
        found = chars(node)
        if found:
            return found[0]
        if name == "SUBPATTERN":
            text = self.example(av[-1])
            if av[0]:
                self.groups[av[0]] = text
            return text
        if name == "BRANCH":
            return self.example(av[1][0])
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _high, body = av
            return self.example(body) * max(low, 1)
        if name == "GROUPREF":
            return str(self.groups.get(av, ""))
        if name == "ATOMIC_GROUP":
            return self.example(av)
        return ""  # AT anchors, lookarounds

    def walk(self, items: Sequence[Node], before: str) -> Iterator[Tuple[str, Node]]:
        """Every quantifier anywhere in `items`, with an example of what the pattern needs before it."""
        prefix = before
        for node in items:
            op, av = node
            name = _name(op)
            if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                yield prefix, node
                yield from self.walk(av[2], prefix)
            elif name == "SUBPATTERN":
                yield from self.walk(av[-1], prefix)
            elif name == "BRANCH":
                for alternative in av[1]:
                    yield from self.walk(alternative, prefix)
            elif name in ("ASSERT", "ASSERT_NOT"):
                yield from self.walk(av[1], prefix)
            elif name == "ATOMIC_GROUP":
                yield from self.walk(av, prefix)
            prefix += self.one(node)

    def alternatives(self) -> List[List[Node]]:
        items = list(self.tree)
        if len(items) == 1 and _name(items[0][0]) == "BRANCH":
            return [list(a) for a in items[0][1][1]]
        return [items]


def units(pattern: "re.Pattern[str]") -> List[Tuple[str, str, str]]:
    """The adversarial shapes of a pattern as (head, unit, tail): the input is head + unit * n + tail."""
    builder = Builder(pattern)
    shapes: List[Tuple[str, str, str]] = []
    for alternative in builder.alternatives():
        for k in range(1, len(alternative) + 1):
            text = builder.example(alternative[:k])
            if text:
                shapes.append(("", text, ""))
                shapes.append(("", text + " ", ""))
    every: List[str] = []
    for prefix, node in builder.walk(list(builder.tree), ""):
        body = node[1][2]
        pumps: List[str] = []
        for item in body:
            pumps.extend(chars(item))
        if not pumps:
            pumps = [builder.example(body)]
        distinct = list(dict.fromkeys(p for p in pumps if p))
        for pump in distinct:
            every.append(pump)
            for tail in ("", "\x00", "x"):
                shapes.append((prefix, pump, tail))
            other = next((p for p in distinct if p != pump), "x")
            shapes.append((prefix + other, pump, "x"))  # a run the quantifier before it cannot take
            shapes.append(("", prefix + pump, ""))  # every repetition a new start that reaches this quantifier
            shapes.append(("", prefix + pump + "\n", ""))
    if every:
        shapes.append(("", "".join(dict.fromkeys(every)), ""))
    return list(dict.fromkeys(shapes))


def build(shape: Tuple[str, str, str], length: int) -> str:
    head, unit, tail = shape
    return head + unit * max(1, length // len(unit)) + tail


def _per_call(run: Callable[[], Any], number: int, rounds: int) -> float:
    best = float("inf")
    collecting = gc.isenabled()
    gc.disable()  # a collection inside one side of the ratio is noise, not growth
    try:
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(number):
                run()
            best = min(best, (time.perf_counter() - start) / number)
    finally:
        if collecting:
            gc.enable()
    return best


def _calibrate(run: Callable[[], Any], floor: float = 0.002) -> int:
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            run()
        if time.perf_counter() - start >= floor or number >= 1 << 16:
            return number
        number *= 4


def growth(pattern: "re.Pattern[str]", shape: Tuple[str, str, str], length: int = 512, factor: int = 16,
           rounds: int = 5, budget: Optional[float] = 2.0, floor: float = 0.004) -> Tuple[float, float]:
    """(ratio of the per-call time at `factor` x `length` to that at `length`, seconds per call at 1x).

    Stops early (returning the 4x ratio scaled by 4 ** its exponent) when a 4x input already grows faster than
    quadratic would allow within `budget` seconds per call at 16x, so a cubic pattern does not stall the test."""
    small, large = build(shape, length), build(shape, length * factor)

    def scan(text: str) -> Callable[[], Any]:
        return lambda: sum(1 for _ in pattern.finditer(text))

    number = _calibrate(scan(small), floor)
    base = _per_call(scan(small), number, rounds)
    if budget is not None:
        middle = build(shape, length * 4)
        t4 = _per_call(scan(middle), max(1, number // 4), min(2, rounds))
        if t4 / base > 4 and t4 * (t4 / base) ** 2 > budget:  # 16x would take too long: extrapolate
            return (t4 / base) ** 2, base
    t16 = _per_call(scan(large), max(1, number // factor), rounds)
    return t16 / base, base

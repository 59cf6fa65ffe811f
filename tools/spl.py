"""SPL structure, as the project's tools read it: ``` comments, quotes / parentheses / brackets, top-level pipes,
macro calls and their expansion, and the split of a detection's search into what the replay runs and what follows.

This is the bottom layer of the tools (docs/development.md): it imports nothing of the project. The lint
(tools/spllint.py), the content renderer (tools/content.py), the replay and the bench read searches through it.
"""
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple


class SplError(ValueError):
    """SPL the tools cannot read, or refuse because they do not implement it; the message says which."""


@dataclass
class Macro:
    name: str
    definition: str
    args: Tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return "{}({})".format(self.name, len(self.args)) if self.args else self.name


def macro_table(macros: Sequence[Macro]) -> Dict[str, Macro]:
    return {m.key: m for m in macros}


# ---------------------------------------------------------------- structure
def strip_comments(spl: str) -> str:
    """Remove ``` comments ``` (Splunk 8.1+); an unclosed one is an error."""
    parts = spl.split("```")
    if len(parts) % 2 == 0:
        raise SplError("unclosed ``` comment")
    return "".join(parts[0::2])


def split_top(text: str, separator: str) -> List[str]:
    """Split on `separator` outside double quotes, parentheses and brackets."""
    parts: List[str] = []
    current: List[str] = []
    depth, quoted, i = 0, False, 0
    while i < len(text):
        char = text[i]
        if quoted and char == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "([":
            depth += 1
        elif not quoted and char in ")]":
            depth -= 1
        if char == separator and not quoted and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def check_balance(spl: str) -> None:
    stack: List[Tuple[str, int]] = []
    quoted_at: Optional[int] = None
    i = 0
    while i < len(spl):
        char = spl[i]
        if quoted_at is not None:
            if char == "\\":
                i += 2
                continue
            if char == '"':
                quoted_at = None
        elif char == '"':
            quoted_at = i
        elif char in "([":
            stack.append((char, i))
        elif char in ")]":
            want = "(" if char == ")" else "["
            if not stack or stack[-1][0] != want:
                raise SplError("unbalanced {!r} at offset {}: {!r}".format(char, i, spl[max(0, i - 30):i + 1]))
            stack.pop()
        i += 1
    if quoted_at is not None:
        raise SplError("unclosed double quote at offset {}: {!r}".format(quoted_at, spl[quoted_at:quoted_at + 40]))
    if stack:
        char, at = stack[-1]
        raise SplError("unclosed {!r} at offset {}: {!r}".format(char, at, spl[at:at + 40]))


def split_pipes(spl: str) -> List[str]:
    """Top-level pipes only: never inside quotes, parentheses or a [subsearch]."""
    return [p.strip() for p in split_top(spl, "|")]


def command_name(pipe: str) -> Tuple[str, str]:
    """(lowercase command name, its argument text) of one pipe."""
    match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*(.*)", pipe, re.DOTALL)
    if not match:
        raise SplError("empty or malformed pipe {!r}".format(pipe[:60]))
    return match.group(1).lower(), match.group(2)


def outside_quotes(text: str) -> str:
    """`text` with every double-quoted string emptied (so a check never looks inside a literal)."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)


# ---------------------------------------------------------------- macros
_MACRO_CALL = re.compile(r"\s*([A-Za-z0-9_.-]+)\s*(?:\((.*)\))?\s*", re.DOTALL)


def macro_references(spl: str) -> List[str]:
    """Names (with arity, `name(N)`) of the macros `spl` calls directly."""
    refs = []
    for inner in re.findall(r"`([^`]*)`", strip_comments(spl)):
        match = _MACRO_CALL.fullmatch(inner)
        if not match:
            raise SplError("malformed macro call `{}`".format(inner))
        args = _macro_args(match.group(2)) if match.group(2) is not None else []
        refs.append("{}({})".format(match.group(1), len(args)) if args else match.group(1))
    return refs


def _macro_args(text: str) -> List[str]:
    return [a.strip() for a in split_top(text, ",")] if text.strip() else []


def expand_macros(spl: str, macros: Mapping[str, Macro], external: Sequence[str] = (), _depth: int = 0) -> str:
    """Expand every `macro` / `macro(a, b)` (arguments replace $name$), recursively; unknown ones are errors."""
    if _depth > 20:
        raise SplError("macro expansion deeper than 20 levels (a macro that calls itself?)")
    spl = strip_comments(spl)
    if spl.count("`") % 2:
        raise SplError("unbalanced backtick: {!r}".format(spl[:80]))

    def substitute(match: "re.Match[str]") -> str:
        call = _MACRO_CALL.fullmatch(match.group(1))
        if not call:
            raise SplError("malformed macro call `{}`".format(match.group(1)))
        args = _macro_args(call.group(2)) if call.group(2) is not None else []
        key = "{}({})".format(call.group(1), len(args)) if args else call.group(1)
        if key not in macros:
            if key in external:
                return match.group(0)
            raise SplError("unknown macro `{}`".format(key))
        macro = macros[key]
        text = macro.definition
        for name, value in zip(macro.args, args):
            text = text.replace("$" + name + "$", value)
        return expand_macros(text, macros, external, _depth + 1)

    return re.sub(r"`([^`]*)`", substitute, spl)


# ---------------------------------------------------------------- a detection's search
def replay_plan(search: str, replay_pipes: int, macros: Mapping[str, Macro],
                filtered: bool = True) -> Tuple[str, List[str], List[str]]:
    """Split a detection's search into (expanded base search, replayed pipes, pipes after them, unexpanded).
    `filtered=False` for a maintenance search, which ends with its commands (no filter macro)."""
    pipes = split_pipes(strip_comments(search).strip())
    if pipes and pipes[0] == "":
        raise SplError("a detection starts from its data-scope macro, not from a leading pipe")
    base = expand_macros(pipes[0], macros)
    if len(pipes) < (2 if filtered else 1) + replay_pipes:
        raise SplError("replay_pipes = {} but the search has only {} pipe(s) between its base search and its "
                       "filter macro".format(replay_pipes, max(0, len(pipes) - 2)))
    return base, pipes[1:1 + replay_pipes], pipes[1 + replay_pipes:]

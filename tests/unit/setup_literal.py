"""Strict checks that a rendered definition cannot change a search beyond its value.

Used until the project's SPL lint (tools/spllint.py) lands on main. A tunable definition must be ONE literal: a
bare whole number, or one double-quoted string holding no quote, backslash, backtick, pipe, bracket or line break
(so it cannot end the string, call a macro or start a command). A data-scope definition must be a boolean
combination (parentheses, implicit AND, OR) of field="literal" terms on index, sourcetype and source only.
"""
import re

_LITERAL = re.compile(r'[0-9]+|"[^"\\`|\[\]\r\n]*"')
_TERM = re.compile(r'(?:index|sourcetype|source)="[^"\\`|\[\]\r\n]*"')
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def is_single_literal(definition: str) -> bool:
    return bool(_LITERAL.fullmatch(definition))


def is_scope_expression(definition: str) -> bool:
    rest = _TERM.sub("T", definition)
    if not re.fullmatch(r"[T() ]*(?: OR [T() ]*)*", rest) or "T" not in rest:
        return False
    depth = 0
    for char in rest:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0 and not any(pair in rest for pair in ("TT", "T(", ")T", "()"))


def is_field_name(definition: str) -> bool:
    return bool(_FIELD.fullmatch(definition))

"""Checks, with the project's SPL lint (tools/spllint.py), that a rendered definition cannot change a search beyond
its value.

A tunable definition must parse as ONE literal: a single term that is a bare number or one quoted string, with no
field, operator, pipe, backtick, bracket or newline. A data-scope definition must parse as a pure search-term
expression whose every term is a quoted index, sourcetype or source comparison, joined by AND / OR only.
"""
import re

from tools import spllint

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def is_single_literal(definition: str) -> bool:
    try:
        node = spllint.check_pure_definition(definition)
    except spllint.LintError:
        return False
    return (isinstance(node, spllint.Term) and node.field is None
            and (node.quoted or node.value.isdigit()) and definition == definition.strip())


def is_scope_expression(definition: str) -> bool:
    try:
        node = spllint.check_pure_definition(definition)
    except spllint.LintError:
        return False

    def allowed(n: "spllint.Node") -> bool:
        if isinstance(n, spllint.Term):
            return n.field in ("index", "sourcetype", "source") and n.quoted
        return n.op in ("AND", "OR") and all(allowed(c) for c in n.children)

    return allowed(node)


def is_field_name(definition: str) -> bool:
    return bool(_FIELD.fullmatch(definition))

"""Checks, with the project's search-term parser (tools/searchterms.py), that a rendered definition cannot change a search beyond
its value.

A tunable definition must parse as ONE literal: a single term that is a bare number or one quoted string, with no
field, operator, pipe, backtick, bracket or newline. A data-scope definition must parse as a pure search-term
expression whose every term is a quoted index, sourcetype or source comparison, joined by AND / OR only.
"""
import re

from tools import searchterms
from tools.spl import SplError

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def is_single_literal(definition: str) -> bool:
    try:
        node = searchterms.check_pure_definition(definition)
    except SplError:
        return False
    return (isinstance(node, searchterms.Term) and node.field is None
            and (node.quoted or node.value.isdigit()) and definition == definition.strip())


def is_scope_expression(definition: str) -> bool:
    try:
        node = searchterms.check_pure_definition(definition)
    except SplError:
        return False

    def allowed(n: "searchterms.Node") -> bool:
        if isinstance(n, searchterms.Term):
            return n.field in ("index", "sourcetype", "source") and n.quoted
        return n.op in ("AND", "OR") and all(allowed(c) for c in n.children)

    return allowed(node)


def is_field_name(definition: str) -> bool:
    return bool(_FIELD.fullmatch(definition))
